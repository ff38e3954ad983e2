import type { DomainConfig } from "../config/schema.ts";
import { hashPassword, type ScramCredentials } from "../credentials/scram.ts";
import type { Pool } from "../db/pool.ts";
import type { Jid } from "./jid.ts";

/** The web_users table: one row per account; SCRAM data always, cleartext only where the domain keeps it. */

export interface WebUser {
  node: string;
  domain: string;
  hasCleartext: boolean;
  hasScram: boolean;
  disabled: boolean;
  createdAt: Date;
}

export function credentialsFor(
  password: string,
  domain: DomainConfig,
): { token: string | null; scram: ScramCredentials } {
  return { token: domain.keepCleartext ? password : null, scram: hashPassword(password) };
}

/** Inserts a user; false when the JID exists already. */
export async function addUser(
  pool: Pool,
  jid: Jid,
  password: string,
  domain: DomainConfig,
): Promise<boolean> {
  const { token, scram } = credentialsFor(password, domain);
  const r = await pool.query(
    `INSERT INTO web_users (node, domain, token, scram) VALUES ($1, $2, $3, $4)
     ON CONFLICT (domain, node) DO NOTHING`,
    [jid.node, jid.domain, token, scram],
  );
  return r.rowCount === 1;
}

/** Replaces the password; false when there is no such user. */
export async function setPassword(
  pool: Pool,
  jid: Jid,
  password: string,
  domain: DomainConfig,
): Promise<boolean> {
  const { token, scram } = credentialsFor(password, domain);
  const r = await pool.query(
    "UPDATE web_users SET token = $3, scram = $4, updated_at = now() WHERE domain = $1 AND node = $2",
    [jid.domain, jid.node, token, scram],
  );
  return r.rowCount === 1;
}

export async function removeUser(pool: Pool, jid: Jid): Promise<boolean> {
  const r = await pool.query("DELETE FROM web_users WHERE domain = $1 AND node = $2", [jid.domain, jid.node]);
  return r.rowCount === 1;
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
