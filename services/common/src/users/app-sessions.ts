import { randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";
import { hashBytes } from "../credentials/hmac.ts";
import type { Pool } from "../db/pool.ts";
import { inTransaction } from "../db/transaction.ts";
import type { Jid } from "./jid.ts";

/**
 * App sessions (docs/api.md "Sessions", migration 1764680000500): what is stored of them. An app logs in once
 * with the user's password and gets an access token (signed with a key of `app_session_keys`: http-utility's
 * sessions/tokens.ts) and a refresh token, stored here only as its SHA-256. Each refresh gives a new refresh
 * token and marks the old one used; a used one presented again is a stolen copy (or a copy the thief already
 * used): the whole session is revoked. Revoking writes `revoked_at` and NOTIFYs `app_sessions_revoked` with the
 * session's id, so every process refuses that session's access tokens at once. Shared by http-utility, the CLI
 * (`sidecars sessions`) and the user lifecycle (password change, disable, removal).
 */

export const SESSIONS_REVOKED_CHANNEL = "app_sessions_revoked";
export const SESSION_KEYS_CHANNEL = "app_session_keys_changed";
export const REFRESH_TOKEN_PREFIX = "rt_";

/** Why a session ended early (`revoked_reason`). */
export type RevokeReason =
  | "logout"
  | "logout_all"
  | "refresh_token_reused"
  | "password_changed"
  | "account_disabled"
  | "operator"
  | "user_gone";

/** A pool or a client inside a transaction. */
type Db = Pick<pg.Pool | pg.PoolClient, "query">;

export interface DeclaredAppInfo {
  name?: string | undefined;
  version?: string | undefined;
  platform?: string | undefined;
}

export interface AppSession {
  id: string;
  domain: string;
  node: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  clientAddress: string | null;
  app: { name: string | null; version: string | null; platform: string | null };
}

interface SessionRow {
  id: string;
  domain: string;
  node: string;
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  client_address: string | null;
  app_name: string | null;
  app_version: string | null;
  app_platform: string | null;
}

const SESSION_COLUMNS =
  "s.id, s.domain, s.node, s.created_at, s.last_used_at, s.expires_at, s.client_address, s.app_name, s.app_version, s.app_platform";

function sessionOf(r: SessionRow): AppSession {
  return {
    id: r.id,
    domain: r.domain,
    node: r.node,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    clientAddress: r.client_address,
    app: { name: r.app_name, version: r.app_version, platform: r.app_platform },
  };
}

/** A new refresh token: the prefix and 32 random bytes, base64url. Only its SHA-256 is ever stored. */
export function newRefreshToken(): string {
  return REFRESH_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

const refreshHash = (token: string) => hashBytes("sha256", token);

/** Is `text` shaped like a refresh token (before any lookup): the prefix and 43 base64url characters. */
export function isRefreshTokenShape(text: string): boolean {
  return /^rt_[A-Za-z0-9_-]{43}$/.test(text);
}

/** A session for `jid` and its first refresh token, valid `refreshTtlMs`. */
export async function createSession(
  pool: Pool,
  o: {
    jid: Jid;
    clientAddress?: string | undefined;
    app: DeclaredAppInfo;
    refreshTtlMs: number;
    /** The session never outlives this (the SSO token it was opened with), whatever its refreshes. */
    notAfter?: Date | undefined;
  },
): Promise<{ session: AppSession; refreshToken: string }> {
  const id = randomUUID();
  const refreshToken = newRefreshToken();
  return inTransaction(pool, async (client) => {
    const r = await client.query<SessionRow>(
      `INSERT INTO app_sessions AS s (id, domain, node, expires_at, not_after, client_address, app_name, app_version, app_platform)
       VALUES ($1, $2, $3, LEAST(now() + make_interval(secs => $4::double precision / 1000), $9), $9, $5, $6, $7, $8)
       RETURNING ${SESSION_COLUMNS}`,
      [
        id,
        o.jid.domain,
        o.jid.node,
        o.refreshTtlMs,
        o.clientAddress ?? null,
        o.app.name ?? null,
        o.app.version ?? null,
        o.app.platform ?? null,
        o.notAfter ?? null,
      ],
    );
    await client.query("INSERT INTO app_refresh_tokens (sha256, session_id) VALUES ($1, $2)", [
      refreshHash(refreshToken),
      id,
    ]);
    return { session: sessionOf(r.rows[0] as SessionRow), refreshToken };
  });
}

export type RefreshResult =
  | { ok: true; session: AppSession; refreshToken: string }
  /** no such token, or its session ended (expired, revoked, removed) */
  | { ok: false; reason: "unknown" | "expired" | "revoked" }
  /** the token had been used already: the session is revoked now (`refresh_token_reused`) */
  | { ok: false; reason: "reused"; sessionId: string };

/**
 * Rotation: the presented token is marked used and a new one issued, the session's end moved to
 * `refreshTtlMs` from now. Two uses of one token, even at the same moment, give one new token: the other is a
 * reuse and revokes the session. The caller checks the user is still there.
 */
export async function refreshSession(
  pool: Pool,
  token: string,
  refreshTtlMs: number,
): Promise<RefreshResult> {
  if (!isRefreshTokenShape(token)) return { ok: false, reason: "unknown" };
  const hash = refreshHash(token);
  return inTransaction(pool, async (client): Promise<RefreshResult> => {
    // the token's row locked: a second refresh with it waits, then finds it used
    const found = await client.query<{
      session_id: string;
      used: boolean;
      revoked: boolean;
      expired: boolean;
    }>(
      `SELECT t.session_id, t.used_at IS NOT NULL AS used, s.revoked_at IS NOT NULL AS revoked,
              s.expires_at <= now() AS expired
         FROM app_refresh_tokens t JOIN app_sessions s ON s.id = t.session_id
        WHERE t.sha256 = $1 FOR UPDATE OF t, s`,
      [hash],
    );
    const row = found.rows[0];
    if (!row) return { ok: false, reason: "unknown" };
    if (row.revoked) return { ok: false, reason: "revoked" };
    if (row.used) {
      await revokeWhere(client, "s.id = $1", [row.session_id], "refresh_token_reused");
      return { ok: false, reason: "reused", sessionId: row.session_id };
    }
    if (row.expired) return { ok: false, reason: "expired" };
    const next = newRefreshToken();
    await client.query("UPDATE app_refresh_tokens SET used_at = now() WHERE sha256 = $1", [hash]);
    await client.query("INSERT INTO app_refresh_tokens (sha256, session_id) VALUES ($1, $2)", [
      refreshHash(next),
      row.session_id,
    ]);
    const s = await client.query<SessionRow>(
      `UPDATE app_sessions s SET last_used_at = now(),
              expires_at = LEAST(now() + make_interval(secs => $2::double precision / 1000), s.not_after)
        WHERE s.id = $1 RETURNING ${SESSION_COLUMNS}`,
      [row.session_id, refreshTtlMs],
    );
    return { ok: true, session: sessionOf(s.rows[0] as SessionRow), refreshToken: next };
  });
}

/** The user's live sessions (not revoked, not expired), the most recently used first. */
export async function listSessions(pool: Pool, jid: Jid): Promise<AppSession[]> {
  const r = await pool.query<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM app_sessions s
      WHERE s.domain = $1 AND s.node = $2 AND s.revoked_at IS NULL AND s.expires_at > now()
      ORDER BY s.last_used_at DESC, s.id`,
    [jid.domain, jid.node],
  );
  return r.rows.map(sessionOf);
}

/**
 * Revokes the sessions `where` selects (aliased `s`) that are live, NOTIFYing each id (delivered at the
 * transaction's commit); answers their ids.
 */
async function revokeWhere(
  db: Db,
  where: string,
  values: unknown[],
  reason: RevokeReason,
): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `WITH revoked AS (
       UPDATE app_sessions s SET revoked_at = now(), revoked_reason = $${values.length + 1}
        WHERE ${where} AND s.revoked_at IS NULL
       RETURNING s.id
     )
     SELECT id, pg_notify('${SESSIONS_REVOKED_CHANNEL}', id::text) FROM revoked`,
    [...values, reason],
  );
  return r.rows.map((row) => row.id);
}

/** Revokes one of the user's live sessions: false when they have no such live session (another's included). */
export async function revokeSession(
  pool: Pool,
  jid: Jid,
  id: string,
  reason: RevokeReason,
): Promise<boolean> {
  if (!isUuid(id)) return false;
  const ids = await revokeWhere(
    pool,
    "s.id = $1 AND s.domain = $2 AND s.node = $3 AND s.expires_at > now()",
    [id, jid.domain, jid.node],
    reason,
  );
  return ids.length > 0;
}

/** Revokes every live session of the user (log out everywhere, password change, disable): their ids. */
export function revokeAllSessions(db: Db, jid: Jid, reason: RevokeReason): Promise<string[]> {
  return revokeWhere(db, "s.domain = $1 AND s.node = $2", [jid.domain, jid.node], reason);
}

/**
 * Deletes every session of the user (their removal), NOTIFYing each id that was still live; the number of
 * sessions deleted. Their refresh tokens go with them (ON DELETE CASCADE).
 */
export async function deleteUserSessions(db: Db, jid: Jid): Promise<number> {
  const r = await db.query(
    `WITH gone AS (DELETE FROM app_sessions WHERE domain = $1 AND node = $2 RETURNING id, revoked_at)
     SELECT id, CASE WHEN revoked_at IS NULL THEN pg_notify('${SESSIONS_REVOKED_CHANNEL}', id::text) END FROM gone`,
    [jid.domain, jid.node],
  );
  return r.rowCount ?? 0;
}

export const isUuid = (text: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text);

/** Sessions revoked within the last `withinMs`: what a process reloads when its LISTEN connection comes back. */
export async function revokedSince(pool: Pool, withinMs: number): Promise<string[]> {
  const r = await pool.query<{ id: string }>(
    `SELECT id FROM app_sessions
      WHERE revoked_at > now() - make_interval(secs => $1::double precision / 1000)`,
    [withinMs],
  );
  return r.rows.map((row) => row.id);
}

/** Of these session ids, those that are no longer live (revoked, expired or deleted). */
export async function endedAmong(pool: Pool, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const r = await pool.query<{ id: string }>(
    `SELECT x.id::text AS id FROM unnest($1::uuid[]) AS x(id)
      WHERE NOT EXISTS (SELECT 1 FROM app_sessions s
                         WHERE s.id = x.id AND s.revoked_at IS NULL AND s.expires_at > now())`,
    [ids],
  );
  return r.rows.map((row) => row.id);
}

/** Whether the session is live now: the check made per request while a process has no LISTEN connection. */
export async function isLive(pool: Pool, id: string): Promise<boolean> {
  const r = await pool.query({
    name: "app_sessions.live",
    text: "SELECT 1 FROM app_sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()",
    values: [id],
  });
  return r.rowCount === 1;
}

/**
 * Deletes what no longer serves: sessions whose refresh token expired, sessions revoked longer ago than an
 * access token lives (`accessTtlMs`: no process needs to know them any more), used refresh tokens older than
 * a refresh token lives (they could not be used anyway), and signing keys superseded longer ago than
 * `accessTtlMs`. At most `batch` sessions per statement.
 */
export async function sweepSessions(
  pool: Pool,
  o: { accessTtlMs: number; refreshTtlMs: number; batch?: number },
): Promise<{ sessions: number; refreshTokens: number; keys: number }> {
  const batch = o.batch ?? 5000;
  let sessions = 0;
  for (;;) {
    const r = await pool.query(
      `DELETE FROM app_sessions WHERE id IN (
         SELECT id FROM app_sessions
          WHERE expires_at < now()
             OR revoked_at < now() - make_interval(secs => $1::double precision / 1000)
          LIMIT $2)`,
      [o.accessTtlMs, batch],
    );
    sessions += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < batch) break;
  }
  const t = await pool.query(
    "DELETE FROM app_refresh_tokens WHERE used_at < now() - make_interval(secs => $1::double precision / 1000)",
    [o.refreshTtlMs],
  );
  const keys = await deleteSupersededKeys(pool, o.accessTtlMs);
  return { sessions, refreshTokens: t.rowCount ?? 0, keys };
}

// ---- signing keys ---------------------------------------------------------------------------------------

export interface SigningKey {
  id: string;
  secret: Buffer;
  createdAt: Date;
}

/** Every signing key, the newest (the one that signs) first. */
export async function signingKeys(pool: Pool): Promise<SigningKey[]> {
  const r = await pool.query<{ id: string; secret: Buffer; created_at: Date }>(
    "SELECT id, secret, created_at FROM app_session_keys ORDER BY created_at DESC, id DESC",
  );
  return r.rows.map((k) => ({ id: k.id, secret: k.secret, createdAt: k.created_at }));
}

const newKeyId = () => randomBytes(9).toString("base64url");

/**
 * The signing keys, making the first one if there is none: whichever process gets there first, under a lock
 * taken for that moment only, so that two processes starting together make one key, not two.
 */
export async function ensureSigningKeys(pool: Pool): Promise<SigningKey[]> {
  const keys = await signingKeys(pool);
  if (keys.length > 0) return keys;
  await inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('app_session_keys', 0))");
    const made = await client.query(
      `INSERT INTO app_session_keys (id, secret)
       SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM app_session_keys)`,
      [newKeyId(), randomBytes(32)],
    );
    if (made.rowCount) await client.query(`SELECT pg_notify('${SESSION_KEYS_CHANNEL}', '')`);
  });
  return signingKeys(pool);
}

/**
 * A new signing key (`sidecars sessions rotate-key`): it signs from now on in every process (NOTIFY
 * `app_session_keys_changed`); the keys before it keep verifying the tokens they signed until those have
 * expired, and are deleted once superseded longer ago than `accessTtlMs`.
 */
export async function rotateSigningKey(
  pool: Pool,
  accessTtlMs: number,
): Promise<{ id: string; deleted: number }> {
  const id = newKeyId();
  await pool.query(
    `WITH k AS (INSERT INTO app_session_keys (id, secret) VALUES ($1, $2) RETURNING id)
     SELECT pg_notify('${SESSION_KEYS_CHANNEL}', id) FROM k`,
    [id, randomBytes(32)],
  );
  return { id, deleted: await deleteSupersededKeys(pool, accessTtlMs) };
}

/** Keys with a successor made longer ago than `accessTtlMs`: every token they signed has expired. */
async function deleteSupersededKeys(pool: Pool, accessTtlMs: number): Promise<number> {
  const r = await pool.query(
    `WITH gone AS (
       DELETE FROM app_session_keys k
        WHERE EXISTS (SELECT 1 FROM app_session_keys n
                       WHERE n.created_at > k.created_at
                         AND n.created_at < now() - make_interval(secs => $1::double precision / 1000))
       RETURNING id)
     SELECT pg_notify('${SESSION_KEYS_CHANNEL}', id) FROM gone`,
    [accessTtlMs],
  );
  return r.rowCount ?? 0;
}
