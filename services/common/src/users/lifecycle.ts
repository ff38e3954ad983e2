import type pg from "pg";
import type { Config } from "../config/schema.ts";
import type { Pool } from "../db/pool.ts";
import { inTransaction } from "../db/transaction.ts";
import { revokeAllSessions } from "./app-sessions.ts";
import type { Jid } from "./jid.ts";

/**
 * The user lifecycle (docs/operations.md "Removing, exporting, disabling a user"): what an operator asks of one
 * account beyond its password, shared by `sidecars users` and the buddies admin API. Disabling here; removal in
 * lifecycle-removal.ts, export in lifecycle-export.ts. A user's data is every row naming them in the tables of
 * `USER_TABLES` and the stored files their attachments name.
 */

/** The tables that hold rows of a user by (domain, node), counted by `userSummary` (removal and export name them each). */
export const USER_TABLES = [
  "web_users",
  "push_tokens",
  "push_channel_subscriptions",
  "push_notifications",
  "chat_mutes",
  "locations",
  "attachments",
  "avatars",
  "registration_challenges",
  "app_sessions",
] as const;
export type UserTable = (typeof USER_TABLES)[number];

export const jidText = (jid: Jid) => `${jid.node}@${jid.domain}`;

/**
 * Why the user is a buddy, or undefined. A buddy's account is the runner's login, run from config or the
 * `buddies` table: it is removed by removing the buddy (docs/buddies.md), never from under a running one.
 */
export async function buddyProblem(
  pool: Pool,
  config: Pick<Config, "domains" | "buddies">,
  jid: Jid,
): Promise<string | undefined> {
  const listed = (config.domains[jid.domain]?.buddies ?? []).some((b) => b.toLowerCase() === jid.node);
  const defined = Object.keys(config.buddies.domains[jid.domain]?.definitions ?? {}).some(
    (b) => b.toLowerCase() === jid.node,
  );
  if (listed || defined) {
    return `${jidText(jid)} is a buddy of the config file: remove it from ${
      defined ? `buddies.domains.${jid.domain}.definitions` : `domains.${jid.domain}.buddies`
    } and reload first`;
  }
  const r = await pool.query("SELECT 1 FROM buddies WHERE domain = $1 AND lower(username) = $2", [
    jid.domain,
    jid.node,
  ]);
  if (r.rowCount) {
    return `${jidText(jid)} is a buddy added at runtime: run \`sidecars buddies remove ${jidText(jid)}\` first`;
  }
  return undefined;
}

export type DisableResult = "disabled" | "enabled" | "unchanged" | "unknown_user";

/**
 * Disables (`disabled: true`) or enables the account. Every login check refuses a disabled row (check_password
 * false, get_password 404, the app API 403 `account_disabled`) while user_exists stays true, so MongooseIM
 * keeps its roster and offline messages. The UPDATE fires web_users' NOTIFY trigger (migration
 * 1763790000000), so every auth process of every machine drops what it cached of the user at once; disabling
 * also revokes their app sessions (app-sessions.ts), in the same transaction.
 */
export async function setDisabled(pool: Pool, jid: Jid, disabled: boolean): Promise<DisableResult> {
  return inTransaction(pool, async (client) => {
    const result = await setDisabledIn(client, jid, disabled);
    // its app sessions end with it, in every process at once (NOTIFY app_sessions_revoked at the commit)
    if (disabled && result !== "unknown_user") await revokeAllSessions(client, jid, "account_disabled");
    return result;
  });
}

async function setDisabledIn(pool: pg.PoolClient, jid: Jid, disabled: boolean): Promise<DisableResult> {
  // always an UPDATE, changed or not: its NOTIFY also clears a cache that missed an earlier one
  const r = await pool.query<{ was: boolean }>(
    `WITH old AS (SELECT disabled_at IS NOT NULL AS was FROM web_users WHERE domain = $1 AND node = $2)
     UPDATE web_users w
        SET disabled_at = CASE WHEN $3 THEN coalesce(w.disabled_at, now()) END,
            updated_at = CASE WHEN old.was = $3 THEN w.updated_at ELSE now() END
       FROM old WHERE w.domain = $1 AND w.node = $2
     RETURNING old.was`,
    [jid.domain, jid.node, disabled],
  );
  const row = r.rows[0];
  if (!row) return "unknown_user";
  if (row.was === disabled) return "unchanged";
  return disabled ? "disabled" : "enabled";
}

export interface UserProfile {
  node: string;
  domain: string;
  createdAt: Date;
  updatedAt: Date;
  disabledAt: Date | null;
  /** what web_users keeps of the password: SCRAM data, cleartext (legacy rows, keepCleartext domains) */
  credentials: ("scram" | "cleartext")[];
}

export async function findProfile(pool: Pool, jid: Jid): Promise<UserProfile | undefined> {
  const r = await pool.query<{
    node: string;
    domain: string;
    created_at: Date;
    updated_at: Date;
    disabled_at: Date | null;
    has_scram: boolean;
    has_cleartext: boolean;
  }>(
    `SELECT node, domain, created_at, updated_at, disabled_at, scram IS NOT NULL AS has_scram,
            token IS NOT NULL AS has_cleartext
       FROM web_users WHERE domain = $1 AND node = $2`,
    [jid.domain, jid.node],
  );
  const u = r.rows[0];
  if (!u) return undefined;
  return {
    node: u.node,
    domain: u.domain,
    createdAt: u.created_at,
    updatedAt: u.updated_at,
    disabledAt: u.disabled_at,
    credentials: [
      ...(u.has_scram ? (["scram"] as const) : []),
      ...(u.has_cleartext ? (["cleartext"] as const) : []),
    ],
  };
}

export interface UserSummary {
  jid: string;
  profile: UserProfile | null;
  /** rows per table naming the user (web_users included) */
  rows: Record<UserTable, number>;
  /** bytes of their attachments, thumbnails included */
  attachmentBytes: number;
  avatar: string | null;
  removal: { state: string; startedAt: Date; finishedAt: Date | null; pendingFiles: number } | null;
}

/** Everything known of a user, counted: what an operator sees before disabling, exporting or removing. */
export async function userSummary(pool: Pool, jid: Jid): Promise<UserSummary> {
  const counts = await pool.query<Record<UserTable, number> & { bytes: string; avatar: string | null }>(
    `SELECT ${USER_TABLES.map(
      (t) => `(SELECT count(*)::int FROM ${t} WHERE domain = $1 AND node = $2) AS ${t}`,
    ).join(", ")},
       (SELECT coalesce(sum(size), 0)::text FROM attachments WHERE domain = $1 AND node = $2) AS bytes,
       (SELECT name FROM avatars WHERE domain = $1 AND node = $2) AS avatar`,
    [jid.domain, jid.node],
  );
  const c = counts.rows[0] as Record<UserTable, number> & { bytes: string; avatar: string | null };
  const removal = await pool.query<{
    state: string;
    started_at: Date;
    finished_at: Date | null;
    pending: number;
  }>(
    `SELECT state, started_at, finished_at, cardinality(pending_keys)::int AS pending
       FROM user_removals WHERE domain = $1 AND node = $2`,
    [jid.domain, jid.node],
  );
  const r = removal.rows[0];
  return {
    jid: jidText(jid),
    profile: (await findProfile(pool, jid)) ?? null,
    rows: Object.fromEntries(USER_TABLES.map((t) => [t, c[t]])) as Record<UserTable, number>,
    attachmentBytes: Number(c.bytes),
    avatar: c.avatar,
    removal: r
      ? { state: r.state, startedAt: r.started_at, finishedAt: r.finished_at, pendingFiles: r.pending }
      : null,
  };
}

export interface FoundUser {
  jid: string;
  disabled: boolean;
  createdAt: Date;
}

/**
 * Accounts whose `node@domain` contains `search` (any case), in JID order, at most `limit`. A search is a scan
 * of web_users: fine for an operator's console, not for a hot path.
 */
export async function searchUsers(
  pool: Pool,
  o: { search?: string | undefined; limit: number },
): Promise<FoundUser[]> {
  const r = await pool.query<{ jid: string; disabled: boolean; created_at: Date }>(
    `SELECT node || '@' || domain AS jid, disabled_at IS NOT NULL AS disabled, created_at
       FROM web_users
      WHERE ($1::text IS NULL OR strpos(node || '@' || domain, lower($1)) > 0)
      ORDER BY domain, node LIMIT $2`,
    [o.search ? o.search : null, o.limit],
  );
  return r.rows.map((u) => ({ jid: u.jid, disabled: u.disabled, createdAt: u.created_at }));
}
