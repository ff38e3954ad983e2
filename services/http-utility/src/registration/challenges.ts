import { randomBytes, randomInt, randomUUID, scrypt, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import type { PoolClient } from "pg";
import type { DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { inTransaction } from "#common/db/transaction.ts";
import type { Jid } from "#common/users/jid.ts";
import { openToken, sealToken } from "./retry-token.ts";

/**
 * Registration sessions in `registration_challenges` (one row per domain and number). A session is the chain
 * of codes sent to a number; it ends when its current code expires. Every limit is enforced by one
 * conditional statement (INSERT … ON CONFLICT DO UPDATE … WHERE, UPDATE … WHERE … RETURNING), so concurrent
 * requests on any number of processes cannot send more codes or try more answers than allowed. The clock is
 * the database's `now()`, the same for every process.
 *
 * A code is single-use: the right answer consumes it (`used_at`) in the statement that compares its hash, and
 * only a retry of that same request carrying the app's session nonce gets the same token back, for
 * retryWindowSeconds (the token sealed under the nonce, retry-token.ts). Wrong answers count per client address
 * (`client_checks`) and per number (`checks`).
 *
 * Sending a code takes three steps, none of which holds a lock while the SMS goes out: `claimSend` marks the
 * row as sending (if a code may be sent now), `commitSend` stores the new code once the provider accepted it,
 * `releaseSend` gives the claim back when it did not (the send is not counted, the previous code stays).
 */

export type Limits = Pick<
  DomainConfig["registration"],
  | "codeTtlSeconds"
  | "resendAfterSeconds"
  | "maxSends"
  | "maxChecks"
  | "maxChecksPerNumber"
  | "retryWindowSeconds"
>;

/** Longest a claim holds the row: above any sender timeout (MAX_SEND_TIMEOUT_MS), and a crashed claimer's row frees itself. */
const CLAIM_SECONDS = 60;

/**
 * scrypt (Node's default cost, about 50 ms): a 6-digit code has a million values, so a fast hash would give
 * every live code away within a second to someone holding a copy of the table; at this cost, trying them
 * all takes hours of CPU per row, far beyond the life of a code.
 */
const hash = promisify(scrypt) as (code: string, salt: Buffer, length: number) => Promise<Buffer>;
const HASH_BYTES = 32;

/** 6 digits from the CSPRNG, uniformly (randomInt rejects biased draws). */
export function newCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, "0");
}

export async function hashCode(code: string): Promise<{ salt: Buffer; hash: Buffer }> {
  const salt = randomBytes(16);
  return { salt, hash: await hash(code, salt, HASH_BYTES) };
}

/** The wait after the n-th code of a session (n ≥ 1): resendAfterSeconds[n-1], the last value repeating. */
export function resendWait(limits: Limits, sends: number): number {
  const waits = limits.resendAfterSeconds;
  return waits[Math.min(Math.max(sends, 1), waits.length) - 1] as number;
}

const seconds = (s: number | string | null) => Math.max(1, Math.ceil(Number(s ?? 1)));

// the wait before the next code, in SQL: $waits is resendAfterSeconds as int[] (1-based, last repeating)
const WAIT = (waits: string) =>
  `make_interval(secs => (${waits}::int[])[LEAST(GREATEST(c.sends, 1), cardinality(${waits}::int[]))])`;
const LIVE = "(c.code_expires_at IS NOT NULL AND c.code_expires_at > now())";

export type Claim =
  | { ok: true; claimId: string }
  | { ok: false; reason: "resend_too_soon" | "too_many_codes"; retryAfterS: number };

/** Reserves the sending of a code, or says why none may be sent now and when one may. */
export async function claimSend(
  pool: Pool,
  jid: Jid,
  app: { name: string; version: string; platform: string | undefined },
  limits: Limits,
): Promise<Claim> {
  const claimId = randomUUID();
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await pool.query(
      `INSERT INTO registration_challenges AS c
              (domain, node, app_name, app_version, platform, sending_id, sending_until)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
       ON CONFLICT (domain, node) DO UPDATE SET
              sending_id = EXCLUDED.sending_id, sending_until = EXCLUDED.sending_until,
              app_name = EXCLUDED.app_name, app_version = EXCLUDED.app_version, platform = EXCLUDED.platform
        WHERE (c.sending_until IS NULL OR c.sending_until <= now())
          AND (NOT ${LIVE} OR (c.sends < $8 AND c.last_sent_at + ${WAIT("$9")} <= now()))
       RETURNING 1`,
      [
        jid.domain,
        jid.node,
        app.name,
        app.version,
        app.platform ?? null,
        claimId,
        CLAIM_SECONDS,
        limits.maxSends,
        limits.resendAfterSeconds,
      ],
    );
    if (r.rowCount === 1) return { ok: true, claimId };

    // refused: read why (the row may have changed since; then try again)
    const why = await pool.query<{
      sending_s: string | null;
      live_s: string | null;
      wait_s: string | null;
      sends: number;
    }>(
      `SELECT EXTRACT(EPOCH FROM c.sending_until - now()) AS sending_s,
              CASE WHEN ${LIVE} THEN EXTRACT(EPOCH FROM c.code_expires_at - now()) END AS live_s,
              EXTRACT(EPOCH FROM c.last_sent_at + ${WAIT("$3")} - now()) AS wait_s, c.sends
         FROM registration_challenges c WHERE c.domain = $1 AND c.node = $2`,
      [jid.domain, jid.node, limits.resendAfterSeconds],
    );
    const row = why.rows[0];
    if (!row) continue;
    if (row.sending_s !== null && Number(row.sending_s) > 0) {
      return { ok: false, reason: "resend_too_soon", retryAfterS: seconds(row.sending_s) };
    }
    if (row.live_s === null) continue;
    if (row.sends >= limits.maxSends) {
      return { ok: false, reason: "too_many_codes", retryAfterS: seconds(row.live_s) };
    }
    if (row.wait_s !== null && Number(row.wait_s) > 0) {
      const s = Math.min(Number(row.wait_s), Number(row.live_s));
      return { ok: false, reason: "resend_too_soon", retryAfterS: seconds(s) };
    }
  }
  return { ok: false, reason: "resend_too_soon", retryAfterS: 1 };
}

/** Gives a claim back: nothing was sent. */
export async function releaseSend(pool: Pool, jid: Jid, claimId: string): Promise<void> {
  await pool.query(
    `UPDATE registration_challenges SET sending_id = NULL, sending_until = NULL
      WHERE domain = $1 AND node = $2 AND sending_id = $3`,
    [jid.domain, jid.node, claimId],
  );
}

export interface Sent {
  /** codes sent in this session, this one included */
  sends: number;
  expiresInS: number;
  /** when the next code may be asked for: the resend wait, or the end of the session after the last code */
  resendAfterS: number;
}

/**
 * Stores the code that went out: counted, checks back to 0. A session whose code had expired starts anew.
 * Undefined when the claim was lost (held past CLAIM_SECONDS and taken by another request).
 */
export async function commitSend(
  pool: Pool,
  jid: Jid,
  claimId: string,
  code: string,
  limits: Limits,
): Promise<Sent | undefined> {
  const { salt, hash: digest } = await hashCode(code);
  const r = await pool.query<{ sends: number }>(
    `UPDATE registration_challenges c SET
            sends = CASE WHEN ${LIVE} THEN c.sends + 1 ELSE 1 END,
            created_at = CASE WHEN ${LIVE} THEN c.created_at ELSE now() END,
            verified_at = CASE WHEN ${LIVE} THEN c.verified_at END,
            code_salt = $4, code_hash = $5, code_expires_at = now() + make_interval(secs => $6),
            last_sent_at = now(), checks = 0, client_checks = '{}'::jsonb, used_at = NULL,
            retry_nonce_hash = NULL, retry_salt = NULL, retry_box = NULL, retry_until = NULL,
            sending_id = NULL, sending_until = NULL
      WHERE c.domain = $1 AND c.node = $2 AND c.sending_id = $3
      RETURNING c.sends`,
    [jid.domain, jid.node, claimId, salt, digest, limits.codeTtlSeconds],
  );
  const sends = r.rows[0]?.sends;
  if (sends === undefined) return undefined;
  const resendAfterS =
    sends < limits.maxSends
      ? Math.min(resendWait(limits, sends), limits.codeTtlSeconds)
      : limits.codeTtlSeconds;
  return { sends, expiresInS: limits.codeTtlSeconds, resendAfterS };
}

export type Check =
  /** the token the account now has; `replayed`: the answer of an earlier right answer, for a lost answer */
  | { ok: true; token: string; replayed: boolean }
  | { ok: false; reason: "no_challenge" }
  | { ok: false; reason: "challenge_expired" }
  /** a right answer consumed this code already (and this is not a retry with its nonce) */
  | { ok: false; reason: "code_used" }
  | { ok: false; reason: "wrong_code"; attemptsLeft: number }
  /** the code is void for this address (or for all, past maxChecksPerNumber); a new one after retryAfterS */
  | { ok: false; reason: "too_many_attempts"; retryAfterS: number };

export interface Answer {
  code: string;
  /** the client address, as counted (clientKey) */
  client: string;
  /** the app's session nonce: a retry carrying it gets the same token back within retryWindowSeconds */
  nonce: string | undefined;
}

/**
 * Stores the account's new password, in the transaction that consumes the code: a code is never spent
 * without the account getting the token it answers, nor the account changed by a code that was not spent.
 */
export type SaveAccount = (client: PoolClient, token: string) => Promise<void>;

const CLIENT = "COALESCE((c.client_checks ->> $3::text)::int, 0)";
const aadOf = (jid: Jid) => `${jid.domain}\u0000${jid.node}`;

/**
 * Checks an answer and, when it is right, consumes the code and has the account saved with `token`.
 *
 * A wrong answer counts for its client address (maxChecks) and for the number (maxChecksPerNumber): a
 * stranger's guesses void the code for the stranger's address only, while guessing from many addresses stays
 * bounded. The attempt is counted before the comparison, so that many answers sent at once cannot be compared
 * beyond the caps. The right answer is consumed by one conditional UPDATE that compares the stored hash and
 * requires the code unused: of two right answers sent at once, one gets the token and the other `code_used`.
 */
export async function checkCode(
  pool: Pool,
  jid: Jid,
  answer: Answer,
  limits: Limits,
  token: string,
  save: SaveAccount,
): Promise<Check> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await pool.query<{
      code_salt: Buffer;
      code_hash: Buffer;
      checks: number;
      client_checks: number;
    }>(
      `UPDATE registration_challenges c SET checks = c.checks + 1,
              client_checks = jsonb_set(c.client_checks, ARRAY[$3::text], to_jsonb(${CLIENT} + 1))
        WHERE c.domain = $1 AND c.node = $2 AND c.code_hash IS NOT NULL AND ${LIVE} AND c.used_at IS NULL
          AND c.checks < $5 AND ${CLIENT} < $4
        RETURNING c.code_salt, c.code_hash, c.checks, ${CLIENT} AS client_checks`,
      [jid.domain, jid.node, answer.client, limits.maxChecks, limits.maxChecksPerNumber],
    );
    const row = r.rows[0];
    if (row) {
      const presented = await hash(answer.code, row.code_salt, HASH_BYTES);
      if (presented.length === row.code_hash.length && timingSafeEqual(presented, row.code_hash)) {
        return (await consume(pool, jid, presented, answer, limits, token, save))
          ? { ok: true, token, replayed: false }
          : { ok: false, reason: "code_used" };
      }
      const left = Math.min(limits.maxChecks - row.client_checks, limits.maxChecksPerNumber - row.checks);
      if (left > 0) return { ok: false, reason: "wrong_code", attemptsLeft: left };
      return { ok: false, reason: "too_many_attempts", retryAfterS: await nextCodeIn(pool, jid, limits) };
    }

    const why = await pool.query<
      RetryState & { has_code: boolean; live: boolean; used: boolean; checks: number; client_checks: number }
    >(
      `SELECT c.code_hash IS NOT NULL AS has_code, ${LIVE} AS live, c.used_at IS NOT NULL AS used, c.checks,
              ${CLIENT} AS client_checks, c.code_salt, c.code_hash,
              COALESCE(c.retry_until > now(), false) AS retry_open,
              c.retry_nonce_hash, c.retry_salt, c.retry_box
         FROM registration_challenges c WHERE c.domain = $1 AND c.node = $2`,
      [jid.domain, jid.node, answer.client],
    );
    const state = why.rows[0];
    if (!state?.has_code) return { ok: false, reason: "no_challenge" };
    if (state.used) {
      const replayed = await replay(state, jid, answer);
      return replayed === undefined
        ? { ok: false, reason: "code_used" }
        : { ok: true, token: replayed, replayed: true };
    }
    if (!state.live) return { ok: false, reason: "challenge_expired" };
    if (state.checks >= limits.maxChecksPerNumber || state.client_checks >= limits.maxChecks) {
      return { ok: false, reason: "too_many_attempts", retryAfterS: await nextCodeIn(pool, jid, limits) };
    }
  }
  return { ok: false, reason: "too_many_attempts", retryAfterS: 1 };
}

/**
 * Consumes the code whose hash is `presented` (unused, live) and saves the account, in one transaction; with a
 * nonce, keeps the token sealed under it for the retry window. False when another answer consumed it first
 * (or a new code replaced it meanwhile).
 */
async function consume(
  pool: Pool,
  jid: Jid,
  presented: Buffer,
  answer: Answer,
  limits: Limits,
  token: string,
  save: SaveAccount,
): Promise<boolean> {
  const sealed = answer.nonce === undefined ? undefined : sealToken(token, answer.nonce, aadOf(jid));
  return inTransaction(pool, async (client) => {
    const r = await client.query(
      `UPDATE registration_challenges c SET used_at = now(), verified_at = now(),
              checks = GREATEST(c.checks - 1, 0),
              client_checks = jsonb_set(c.client_checks, ARRAY[$3::text], to_jsonb(GREATEST(${CLIENT} - 1, 0))),
              retry_nonce_hash = $5, retry_salt = $6, retry_box = $7,
              retry_until = CASE WHEN $5::bytea IS NULL THEN NULL ELSE now() + make_interval(secs => $8) END
        WHERE c.domain = $1 AND c.node = $2 AND c.code_hash = $4 AND c.used_at IS NULL AND ${LIVE}
        RETURNING 1`,
      [
        jid.domain,
        jid.node,
        answer.client,
        presented,
        sealed?.nonceHash ?? null,
        sealed?.salt ?? null,
        sealed?.box ?? null,
        limits.retryWindowSeconds,
      ],
    );
    if (r.rowCount !== 1) return false;
    await save(client, token);
    return true;
  });
}

/** What a row keeps of its code and of the token sealed for a retry. */
interface RetryState {
  code_salt: Buffer | null;
  code_hash: Buffer | null;
  retry_open: boolean;
  retry_nonce_hash: Buffer | null;
  retry_salt: Buffer | null;
  retry_box: Buffer | null;
}

/** The sealed token of a consumed code, for a retry with the same code and nonce within the window. */
async function replay(state: RetryState, jid: Jid, answer: Answer): Promise<string | undefined> {
  const { code_salt, code_hash, retry_nonce_hash, retry_salt, retry_box } = state;
  if (answer.nonce === undefined || !state.retry_open) return undefined;
  if (!code_salt || !code_hash || !retry_nonce_hash || !retry_salt || !retry_box) return undefined;
  const sealed = { nonceHash: retry_nonce_hash, salt: retry_salt, box: retry_box };
  const token = openToken(sealed, answer.nonce, aadOf(jid));
  if (token === undefined) return undefined;
  // the same request: the same code too
  const presented = await hash(answer.code, code_salt, HASH_BYTES);
  return presented.length === code_hash.length && timingSafeEqual(presented, code_hash) ? token : undefined;
}

/** Clears the sealed tokens whose retry window has ended; the number cleared. */
export async function clearEndedRetries(pool: Pool): Promise<number> {
  const r = await pool.query(
    `UPDATE registration_challenges
        SET retry_nonce_hash = NULL, retry_salt = NULL, retry_box = NULL, retry_until = NULL
      WHERE retry_until IS NOT NULL AND retry_until <= now()`,
  );
  return r.rowCount ?? 0;
}

/** Seconds until a new code may be asked for: the resend wait, or the end of the session after the last code. */
async function nextCodeIn(pool: Pool, jid: Jid, limits: Limits): Promise<number> {
  const r = await pool.query<{ s: string | null }>(
    `SELECT CASE WHEN c.sends >= $3 THEN EXTRACT(EPOCH FROM c.code_expires_at - now())
                 ELSE LEAST(EXTRACT(EPOCH FROM c.last_sent_at + ${WAIT("$4")} - now()),
                            EXTRACT(EPOCH FROM c.code_expires_at - now())) END AS s
       FROM registration_challenges c WHERE c.domain = $1 AND c.node = $2`,
    [jid.domain, jid.node, limits.maxSends, limits.resendAfterSeconds],
  );
  return seconds(r.rows[0]?.s ?? 1);
}
