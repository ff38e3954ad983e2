import type { DomainConfig } from "../config/schema.ts";
import { hashPassword, type ScramCredentials } from "../credentials/scram.ts";
import type { Pool } from "../db/pool.ts";
import { SESSIONS_REVOKED_CHANNEL } from "./app-sessions.ts";
import type { Jid } from "./jid.ts";

/**
 * The web_users table: one row per account. New passwords are stored as salted SCRAM data with the
 * domain's hashes and iterations; cleartext (`token`) only where the domain keeps it. Legacy rows hold only
 * a cleartext token until they are rehashed (at their next login, or by `sidecars users rehash`).
 */

/** A new password: cleartext (format plain, the CLI) or SCRAM data from a MongooseIM serialization. */
export type NewSecret = { cleartext: string } | { scram: ScramCredentials };

export interface WebUserRow {
  token: string | null;
  scram: ScramCredentials | null;
  disabled: boolean;
}

export interface WebUser {
  node: string;
  domain: string;
  hasCleartext: boolean;
  hasScram: boolean;
  disabled: boolean;
  createdAt: Date;
}

type Format = Pick<DomainConfig, "keepCleartext" | "scramHashes" | "scramIterations">;

export async function credentialsFor(
  secret: NewSecret,
  domain: Format,
): Promise<{ token: string | null; scram: ScramCredentials }> {
  if ("scram" in secret) return { token: null, scram: secret.scram };
  const scram = await hashPassword(secret.cleartext, {
    iterations: domain.scramIterations,
    hashes: domain.scramHashes,
  });
  return { token: domain.keepCleartext ? secret.cleartext : null, scram };
}

// The two lookups of every login are named statements: each connection parses and plans them once.
export async function findUser(pool: Pool, jid: Jid): Promise<WebUserRow | undefined> {
  const r = await pool.query<WebUserRow>({
    name: "web_users.find",
    text: "SELECT token, scram, disabled_at IS NOT NULL AS disabled FROM web_users WHERE domain = $1 AND node = $2",
    values: [jid.domain, jid.node],
  });
  return r.rows[0];
}

export async function userExists(pool: Pool, jid: Jid): Promise<boolean> {
  const r = await pool.query({
    name: "web_users.exists",
    text: "SELECT 1 FROM web_users WHERE domain = $1 AND node = $2",
    values: [jid.domain, jid.node],
  });
  return r.rowCount === 1;
}

/** Inserts a user; false when the JID exists already. */
export async function addUser(pool: Pool, jid: Jid, secret: NewSecret, domain: Format): Promise<boolean> {
  const { token, scram } = await credentialsFor(secret, domain);
  const r = await pool.query(
    `INSERT INTO web_users (node, domain, token, scram) VALUES ($1, $2, $3, $4)
     ON CONFLICT (domain, node) DO NOTHING`,
    [jid.node, jid.domain, token, scram],
  );
  return r.rowCount === 1;
}

/** Replaces the password; false when there is no such user. */
/**
 * A new password (MongooseIM's set_password, the CLI, registration): the user's app sessions are revoked with
 * it, in the same statement, so a token got with the old password stops working in every process
 * (app-sessions.ts). `upgradeLegacyRow` is not a change of password and revokes nothing.
 */
export async function setPassword(pool: Pool, jid: Jid, secret: NewSecret, domain: Format): Promise<boolean> {
  const { token, scram } = await credentialsFor(secret, domain);
  const r = await pool.query<{ changed: number }>(
    `WITH changed AS (
       UPDATE web_users SET token = $3, scram = $4, updated_at = now() WHERE domain = $1 AND node = $2
       RETURNING domain, node
     ), revoked AS (
       UPDATE app_sessions s SET revoked_at = now(), revoked_reason = 'password_changed'
         FROM changed c WHERE s.domain = c.domain AND s.node = c.node AND s.revoked_at IS NULL
       RETURNING s.id
     )
     SELECT (SELECT count(*) FROM changed)::int AS changed,
            (SELECT count(pg_notify('${SESSIONS_REVOKED_CHANNEL}', id::text)) FROM revoked)::int AS revoked`,
    [jid.domain, jid.node, token, scram],
  );
  return r.rows[0]?.changed === 1;
}

/**
 * Gives a legacy row SCRAM data derived from its cleartext (and drops the cleartext unless the domain keeps
 * it); answers the SCRAM data now stored, or undefined when the row changed meanwhile (another process
 * upgraded it, or the password was set).
 */
export async function upgradeLegacyRow(
  pool: Pool,
  jid: Jid,
  token: string,
  domain: Format,
): Promise<ScramCredentials | undefined> {
  const { scram } = await credentialsFor({ cleartext: token }, domain);
  const r = await pool.query(
    `UPDATE web_users SET scram = $4, token = CASE WHEN $5 THEN token END
      WHERE domain = $1 AND node = $2 AND token = $3 AND scram IS NULL`,
    [jid.domain, jid.node, token, scram, domain.keepCleartext],
  );
  return r.rowCount === 1 ? scram : undefined;
}

export async function removeUser(pool: Pool, jid: Jid): Promise<boolean> {
  const r = await pool.query("DELETE FROM web_users WHERE domain = $1 AND node = $2", [jid.domain, jid.node]);
  return r.rowCount === 1;
}

/** Legacy rows still without SCRAM data, in key order after `after` (keyset paging: resumable). */
export async function legacyRows(
  pool: Pool,
  options: { domain?: string; after?: Jid; limit: number },
): Promise<(Jid & { token: string })[]> {
  const r = await pool.query<Jid & { token: string }>(
    `SELECT domain, node, token FROM web_users
      WHERE scram IS NULL AND token IS NOT NULL AND ($1::text IS NULL OR domain = $1)
        AND ($2::text IS NULL OR (domain, node) > ($2, $3))
      ORDER BY domain, node LIMIT $4`,
    [options.domain ?? null, options.after?.domain ?? null, options.after?.node ?? null, options.limit],
  );
  return r.rows;
}

export async function countLegacyRows(pool: Pool, domain?: string): Promise<number> {
  const r = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM web_users WHERE scram IS NULL AND token IS NOT NULL AND ($1::text IS NULL OR domain = $1)",
    [domain ?? null],
  );
  return r.rows[0]?.n ?? 0;
}

export async function listUsers(pool: Pool, options: { domain?: string; limit: number }): Promise<WebUser[]> {
  const r = await pool.query<{
    node: string;
    domain: string;
    has_cleartext: boolean;
    has_scram: boolean;
    disabled: boolean;
    created_at: Date;
  }>(
    `SELECT node, domain, token IS NOT NULL AS has_cleartext, scram IS NOT NULL AS has_scram,
            disabled_at IS NOT NULL AS disabled, created_at
       FROM web_users WHERE ($1::text IS NULL OR domain = $1) ORDER BY domain, node LIMIT $2`,
    [options.domain ?? null, options.limit],
  );
  return r.rows.map((u) => ({
    node: u.node,
    domain: u.domain,
    hasCleartext: u.has_cleartext,
    hasScram: u.has_scram,
    disabled: u.disabled,
    createdAt: u.created_at,
  }));
}

/** Rows that have SCRAM data and still a cleartext token, in domains that do not keep cleartext: forget it. */
export async function dropNeedlessCleartext(pool: Pool, domains: string[]): Promise<number> {
  if (domains.length === 0) return 0;
  const r = await pool.query(
    "UPDATE web_users SET token = NULL WHERE scram IS NOT NULL AND token IS NOT NULL AND domain = ANY($1::text[])",
    [domains],
  );
  return r.rowCount ?? 0;
}
