import { createHash, timingSafeEqual } from "node:crypto";
import DataLoader from "dataloader";
import type { Pool } from "#common/db/pool.ts";
import { inTransaction } from "#common/db/transaction.ts";
import type { PushService } from "./senders/sender.ts";

/**
 * Device tokens (`push_tokens`) and channel subscriptions. A token is unique per service. It moves from one
 * user to another (a phone changes hands, an app is reinstalled under another number) only with the proof
 * of the same device, the `deviceSecret` its app registered it with, or once the old registration is older
 * than `moveAfterDays` (docs/push.md "Tokens"); otherwise anyone who learnt a token could take over another
 * user's notifications. A user keeps at most `max` devices per app, the least recently registered going first.
 */

export interface TokenRow {
  service: PushService;
  token: string;
  app: string;
  domain: string;
  node: string;
  badge: number;
}

export interface Owner {
  domain: string;
  node: string;
}

/**
 * What registering a token did: `new` token, `refreshed` (the owner's already), `moved` from another user,
 * `refused` (another user's, without the device's proof and not old enough: nothing changed). Only `new` and
 * `refreshed` may reach a caller: the others tell that the token was somebody's.
 */
export interface Registration {
  outcome: "new" | "refreshed" | "moved" | "refused";
  /** The user it was taken from, when `moved`: for a debug log line, never for an answer. */
  from?: Owner;
  /** The owner's tokens of that app forgotten to stay within `max`. */
  evicted: number;
}

/** When a token registered to another user may move to the caller. */
export interface MoveRule {
  /** A registration older than this many days moves without proof. */
  moveAfterDays: number;
  /** The secret the caller's app keeps for this install; proves the same device when it matches the stored one. */
  deviceSecret?: string | undefined;
}

const secretHash = (secret: string) => createHash("sha256").update(secret, "utf8").digest();

function sameDevice(storedHex: string | null, secret: string | undefined): boolean {
  if (storedHex === null || secret === undefined) return false;
  const stored = Buffer.from(storedHex, "hex");
  const given = secretHash(secret);
  return stored.length === given.length && timingSafeEqual(stored, given);
}

/** registerToken's upsert (also EXPLAINed by test/bench/scale-plans.ts): $1–$6 the row, $7 whether the token may move to another user */
export const REGISTER_TOKEN_SQL = `INSERT INTO push_tokens AS p (service, token, app, domain, node, device_secret_sha256)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (service, token) DO UPDATE SET app = EXCLUDED.app, domain = EXCLUDED.domain,
         node = EXCLUDED.node, updated_at = now(),
         badge = CASE WHEN p.domain = EXCLUDED.domain AND p.node = EXCLUDED.node THEN p.badge ELSE 0 END,
         device_secret_sha256 = CASE WHEN p.domain = EXCLUDED.domain AND p.node = EXCLUDED.node
           THEN COALESCE(EXCLUDED.device_secret_sha256, p.device_secret_sha256)
           ELSE EXCLUDED.device_secret_sha256 END
       WHERE (p.domain = EXCLUDED.domain AND p.node = EXCLUDED.node) OR $7::boolean
       RETURNING (xmax = 0) AS inserted`;

/**
 * Registers (or re-registers) a token for `owner` and forgets their least recently registered tokens of that
 * app beyond `max`; the token just registered is always kept. With a `rule`, a token of another user moves
 * only as the rule allows; without one (seeding, tests) it always moves. One transaction: a concurrent
 * registration never sees the owner over the cap, and a failure or a refusal stores nothing.
 */
export async function registerToken(
  pool: Pool,
  t: Owner & { service: PushService; token: string; app: string },
  max: number,
  rule?: MoveRule,
): Promise<Registration> {
  return inTransaction(pool, async (client) => {
    const { rows: before } = await client.query<{
      domain: string;
      node: string;
      secret: string | null;
      stale: boolean;
    }>(
      `SELECT domain, node, device_secret_sha256 AS secret,
         updated_at < now() - make_interval(secs => $3::float8 * 86400) AS stale
       FROM push_tokens WHERE service = $1 AND token = $2 FOR UPDATE`,
      [t.service, t.token, rule?.moveAfterDays ?? 0],
    );
    const previous = before[0];
    const other = previous !== undefined && (previous.domain !== t.domain || previous.node !== t.node);
    const mayMove =
      rule === undefined || (other && (previous.stale || sameDevice(previous.secret, rule.deviceSecret)));
    if (other && !mayMove) return { outcome: "refused", evicted: 0 };
    const secret = rule?.deviceSecret === undefined ? null : secretHash(rule.deviceSecret).toString("hex");
    // the conflict's update is guarded too: a row another registration inserted since our read moves only
    // when the rule lets any registration move (no rule)
    const { rows } = await client.query<{ inserted: boolean }>(REGISTER_TOKEN_SQL, [
      t.service,
      t.token,
      t.app,
      t.domain,
      t.node,
      secret,
      mayMove,
    ]);
    const row = rows[0];
    if (!row) return { outcome: "refused", evicted: 0 };
    const evicted = await client.query(
      `DELETE FROM push_tokens WHERE (service, token) IN (
         SELECT service, token FROM push_tokens WHERE domain = $1 AND node = $2 AND app = $3
         ORDER BY (service = $5 AND token = $6) DESC, updated_at DESC, created_at DESC, token
         OFFSET $4)`,
      [t.domain, t.node, t.app, max, t.service, t.token],
    );
    return {
      outcome: row.inserted ? "new" : other ? "moved" : "refreshed",
      ...(other ? { from: { domain: previous.domain, node: previous.node } } : {}),
      evicted: evicted.rowCount ?? 0,
    };
  });
}

/** Registers (or re-registers) a token for `owner`, moving it from anyone; true when new or moved. */
export async function storeToken(
  pool: Pool,
  t: Owner & { service: PushService; token: string; app: string },
  max: number,
): Promise<boolean> {
  return (await registerToken(pool, t, max)).outcome !== "refreshed";
}

/** Forgets one of the caller's tokens (whatever its service); the number forgotten. */
export async function deleteToken(pool: Pool, owner: Owner, token: string): Promise<number> {
  const r = await pool.query("DELETE FROM push_tokens WHERE domain = $1 AND node = $2 AND token = $3", [
    owner.domain,
    owner.node,
    token,
  ]);
  return r.rowCount ?? 0;
}

export async function deleteAllTokens(pool: Pool, owner: Owner): Promise<number> {
  const r = await pool.query("DELETE FROM push_tokens WHERE domain = $1 AND node = $2", [
    owner.domain,
    owner.node,
  ]);
  return r.rowCount ?? 0;
}

/** A user's tokens (or the one named), most recent first. */
export async function tokensOf(pool: Pool, owner: Owner, token?: string): Promise<TokenRow[]> {
  const { rows } = await pool.query<TokenRow>(
    `SELECT service, token, app, domain, node, badge FROM push_tokens
     WHERE domain = $1 AND node = $2 AND ($3::text IS NULL OR token = $3) ORDER BY updated_at DESC`,
    [owner.domain, owner.node, token ?? null],
  );
  return rows;
}

/** The row of a token whoever owns it (MongoosePush API: MongooseIM names the device only). */
export async function findToken(
  pool: Pool,
  service: PushService,
  token: string,
): Promise<TokenRow | undefined> {
  const { rows } = await pool.query<TokenRow>(
    "SELECT service, token, app, domain, node, badge FROM push_tokens WHERE service = $1 AND token = $2",
    [service, token],
  );
  return rows[0];
}

/** A token the provider says is dead. */
export async function forgetToken(pool: Pool, service: PushService, token: string): Promise<void> {
  await pool.query("DELETE FROM push_tokens WHERE service = $1 AND token = $2", [service, token]);
}

/** The badge the next alert shows: the given count, or one more than the last. */
export async function nextBadge(
  pool: Pool,
  service: PushService,
  token: string,
  given?: number,
): Promise<number> {
  const { rows } = await pool.query<{ badge: number }>(
    `UPDATE push_tokens SET badge = COALESCE($3::int, badge + 1) WHERE service = $1 AND token = $2
     RETURNING badge`,
    [service, token, given ?? null],
  );
  return rows[0]?.badge ?? given ?? 1;
}

export interface BadgeRequest {
  service: PushService;
  token: string;
  given?: number | undefined;
}

/**
 * `nextBadge` for many pushes at once: the calls made in the same tick (a fan-out has dozens in flight)
 * become one `UPDATE … FROM unnest(…)` instead of one round trip each, which was most of a fan-out's cost
 * (docs/push.md "Performance"). DataLoader does the gathering; a token asked twice in one batch is counted
 * twice, in order.
 */
export function createBadgeCounter(pool: Pool): { next(r: BadgeRequest): Promise<number> } {
  const loader = new DataLoader<BadgeRequest, number>(
    async (requests) => {
      // one row per distinct token and per repeat: repeats are applied by a second statement
      const first = new Map<string, number>();
      const answers: number[] = new Array(requests.length);
      const repeats: number[] = [];
      requests.forEach((r, i) => {
        const key = `${r.service}\u0000${r.token}`;
        if (first.has(key)) repeats.push(i);
        else first.set(key, i);
      });
      const firstIdx = [...first.values()];
      const pick = (idx: number[]) => idx.map((i) => requests[i] as BadgeRequest);
      const { rows } = await pool.query<{ i: number; badge: number }>(
        `UPDATE push_tokens p SET badge = COALESCE(k.given, p.badge + 1)
         FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS k(service, token, given, i)
         WHERE p.service = k.service AND p.token = k.token RETURNING k.i, p.badge`,
        [
          pick(firstIdx).map((r) => r.service),
          pick(firstIdx).map((r) => r.token),
          pick(firstIdx).map((r) => r.given ?? null),
          firstIdx,
        ],
      );
      for (const row of rows) answers[row.i] = row.badge;
      for (const i of repeats) {
        const r = requests[i] as BadgeRequest;
        answers[i] = await nextBadge(pool, r.service, r.token, r.given);
      }
      // a token gone from the table (deleted meanwhile) still gets a sensible count
      return requests.map((r, i) => answers[i] ?? r.given ?? 1);
    },
    { cache: false, maxBatchSize: 1000 },
  );
  return { next: (r) => loader.load(r) };
}

/** Badge back to 0 for one of the caller's tokens; the rows reset. */
export async function resetBadge(pool: Pool, owner: Owner, token: string): Promise<TokenRow[]> {
  const { rows } = await pool.query<TokenRow>(
    `UPDATE push_tokens SET badge = 0 WHERE domain = $1 AND node = $2 AND token = $3
     RETURNING service, token, app, domain, node, badge`,
    [owner.domain, owner.node, token],
  );
  return rows;
}

export async function subscribe(pool: Pool, owner: Owner, channel: string): Promise<boolean> {
  const r = await pool.query(
    "INSERT INTO push_channel_subscriptions (domain, channel, node) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    [owner.domain, channel, owner.node],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function unsubscribe(pool: Pool, owner: Owner, channel: string): Promise<boolean> {
  const r = await pool.query(
    "DELETE FROM push_channel_subscriptions WHERE domain = $1 AND channel = $2 AND node = $3",
    [owner.domain, channel, owner.node],
  );
  return (r.rowCount ?? 0) > 0;
}
