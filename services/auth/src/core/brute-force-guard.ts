import { RateLimiterPostgres, type RateLimiterRes } from "rate-limiter-flexible";
import type { Config } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Jid } from "#common/users/jid.ts";

type GuardConfig = Config["services"]["auth"]["guard"];

/**
 * Failed password checks, counted so that online guessing stays bounded while no stranger can lock anyone
 * out (docs/security.md "Logins: no lockout by strangers"; the same idea as Prosody's mod_limit_auth and
 * ejabberd's mod_fail2ban, which count per client address, never per account):
 *
 * - An app login carries the client's address. Failures count per (JID, address) and per address; an address
 *   over either budget is refused before any password is checked, for `lockSeconds`. Other addresses, the
 *   rightful user's among them, are never affected.
 * - MongooseIM and ejabberd send no client address. Failures count per JID and only slow that JID's wrong
 *   answers down (doubling up to `maxDelayMs`); a right password is answered at once, always.
 *
 * The counters live in PostgreSQL (`rate_limits`, through rate-limiter-flexible) so every process and machine
 * shares them; `clearLoginFailures` forgets a user's at once, everywhere. Keys are hashes: a JID may be
 * 1 KiB long, the key column is 255 characters, and a table dump shows no phone number.
 */
export class BruteForceGuard {
  private readonly perUserAndAddress: RateLimiterPostgres;
  private readonly perAddress: RateLimiterPostgres;
  private readonly perUser: RateLimiterPostgres;
  private readonly config: GuardConfig;

  constructor(pool: Pool, config: GuardConfig) {
    this.config = config;
    const limiter = (keyPrefix: string, points: number) =>
      new RateLimiterPostgres({
        storeClient: pool,
        storeType: "pool",
        tableName: "rate_limits",
        tableCreated: true,
        keyPrefix,
        points,
        duration: config.windowSeconds,
      });
    this.perUserAndAddress = limiter(USER_AND_ADDRESS, config.maxFailures);
    this.perAddress = limiter(ADDRESS, config.maxFailuresPerAddress);
    this.perUser = limiter(USER, Number.MAX_SAFE_INTEGER);
  }

  /** Whether an app login from `client` may be checked now; else the seconds until it may. */
  async appAllowed(jid: Jid, client: string): Promise<{ ok: true } | { ok: false; retryAfterS: number }> {
    const [pair, address] = await Promise.all([
      this.perUserAndAddress.get(pairKey(jid, client)),
      this.perAddress.get(addressKey(client)),
    ]);
    const waits = [
      spent(pair, this.config.maxFailures),
      spent(address, this.config.maxFailuresPerAddress),
    ].filter((ms): ms is number => ms !== undefined);
    if (waits.length === 0) return { ok: true };
    return { ok: false, retryAfterS: Math.max(1, Math.ceil(Math.max(...waits) / 1000)) };
  }

  /** A wrong app login: counted for the pair and the address; a budget used up blocks for lockSeconds. */
  async appFailed(jid: Jid, client: string): Promise<void> {
    await Promise.all([
      this.countAndBlock(this.perUserAndAddress, pairKey(jid, client), this.config.maxFailures),
      this.countAndBlock(this.perAddress, addressKey(client), this.config.maxFailuresPerAddress),
    ]);
  }

  /** A right app login forgives that address its failures for this JID (not the address's total). */
  async appSucceeded(jid: Jid, client: string): Promise<void> {
    await this.perUserAndAddress.delete(pairKey(jid, client));
  }

  /**
   * A wrong password from MongooseIM or ejabberd: counted for the JID within the window. Answers how long to
   * hold the "no" back: nothing for the first `delayAfterFailures`, then 250 ms doubling up to `maxDelayMs`.
   */
  async serverFailed(jid: Jid): Promise<number> {
    const res = await this.perUser.penalty(userKey(jid), 1);
    const over = res.consumedPoints - this.config.delayAfterFailures;
    if (over <= 0) return 0;
    return Math.min(this.config.maxDelayMs, 250 * 2 ** Math.min(over - 1, 16));
  }

  private async countAndBlock(limiter: RateLimiterPostgres, key: string, max: number): Promise<void> {
    const res = await limiter.penalty(key, 1);
    if (res.consumedPoints >= max) await limiter.block(key, this.config.lockSeconds);
  }
}

const USER_AND_ADDRESS = "loginFailures";
const ADDRESS = "loginFailuresFrom";
const USER = "loginDelay";

const short = (text: string) => hashBytes("sha256", text).subarray(0, 16).toString("hex");
const jidHash = (jid: Jid) => short(`${jid.domain}\u0000${jid.node}`);
const pairKey = (jid: Jid, client: string) => `${jidHash(jid)}:${short(client)}`;
const addressKey = (client: string) => short(client);
const userKey = (jid: Jid) => jidHash(jid);

/** The milliseconds left while a counter is at or over its budget; undefined while it is not. */
function spent(res: RateLimiterRes | null, max: number): number | undefined {
  return res && res.consumedPoints >= max ? Math.max(res.msBeforeNext, 1) : undefined;
}

/** What the failure counters hold now (the operator console's lockouts; counters are hashes, never names). */
export interface LoginFailureSummary {
  /** (user, address) pairs refused until `until`: an address that guessed one user's password too often */
  blockedPairs: number;
  /** addresses refused for every user: they guessed too often overall */
  blockedAddresses: number;
  /** users MongooseIM or ejabberd got wrong passwords for in the window (answers slowed, never refused) */
  slowedUsers: number;
  /** when the last block now in force ends */
  lastBlockEnds: Date | null;
}

/** A user's own counters: the addresses refused for them, and the server-side failures in the window. */
export interface UserLoginFailures {
  blockedAddresses: number;
  failingAddresses: number;
  serverFailures: number;
  blockedUntil: Date | null;
}

/**
 * The counters in force, by kind. A pair or an address is refused once its points reach its budget
 * (`guard.maxFailures`, `guard.maxFailuresPerAddress`); rate-limiter-flexible's `expire` is when it ends.
 */
export async function loginFailureSummary(
  pool: Pool,
  guard: Pick<GuardConfig, "maxFailures" | "maxFailuresPerAddress">,
): Promise<LoginFailureSummary> {
  const r = await pool.query<{ pairs: number; addresses: number; slowed: number; last: string | null }>(
    `SELECT count(*) FILTER (WHERE key LIKE $1 AND points >= $4)::int AS pairs,
            count(*) FILTER (WHERE key LIKE $2 AND points >= $5)::int AS addresses,
            count(*) FILTER (WHERE key LIKE $3 AND points > 0)::int AS slowed,
            max(expire) FILTER (WHERE (key LIKE $1 AND points >= $4) OR (key LIKE $2 AND points >= $5))::text AS last
       FROM rate_limits
      WHERE (key LIKE $1 OR key LIKE $2 OR key LIKE $3) AND (expire IS NULL OR expire > $6)`,
    [
      `${USER_AND_ADDRESS}:%`,
      `${ADDRESS}:%`,
      `${USER}:%`,
      guard.maxFailures,
      guard.maxFailuresPerAddress,
      Date.now(),
    ],
  );
  const row = r.rows[0];
  return {
    blockedPairs: row?.pairs ?? 0,
    blockedAddresses: row?.addresses ?? 0,
    slowedUsers: row?.slowed ?? 0,
    lastBlockEnds: row?.last ? new Date(Number(row.last)) : null,
  };
}

/** One user's counters in force (what `sidecars users unlock` would forget). */
export async function loginFailuresOf(
  pool: Pool,
  jid: Jid,
  guard: Pick<GuardConfig, "maxFailures">,
): Promise<UserLoginFailures> {
  const r = await pool.query<{ blocked: number; failing: number; server: number; until: string | null }>(
    `SELECT count(*) FILTER (WHERE key LIKE $1 AND points >= $3)::int AS blocked,
            count(*) FILTER (WHERE key LIKE $1 AND points > 0)::int AS failing,
            coalesce(max(points) FILTER (WHERE key = $2), 0)::int AS server,
            max(expire) FILTER (WHERE key LIKE $1 AND points >= $3)::text AS until
       FROM rate_limits
      WHERE (key LIKE $1 OR key = $2) AND (expire IS NULL OR expire > $4)`,
    [`${USER_AND_ADDRESS}:${jidHash(jid)}:%`, `${USER}:${userKey(jid)}`, guard.maxFailures, Date.now()],
  );
  const row = r.rows[0];
  return {
    blockedAddresses: row?.blocked ?? 0,
    failingAddresses: row?.failing ?? 0,
    serverFailures: row?.server ?? 0,
    blockedUntil: row?.until ? new Date(Number(row.until)) : null,
  };
}

/**
 * Forgets every failure counted for a user, on every path and from every address, at once for every process
 * (`sidecars users unlock`). Answers how many counters went. The per-address totals stay: they belong to the
 * addresses, not to the user.
 */
export async function clearLoginFailures(pool: Pool, jid: Jid): Promise<number> {
  const r = await pool.query("DELETE FROM rate_limits WHERE key LIKE $1 OR key = $2", [
    `${USER_AND_ADDRESS}:${jidHash(jid)}:%`,
    `${USER}:${userKey(jid)}`,
  ]);
  return r.rowCount ?? 0;
}
