import type pg from "pg";
import type { AttachmentPolicy } from "../config/users-schema.ts";
import type { Pool } from "../db/pool.ts";
import { isKey } from "../media/keys.ts";
import type { Storage } from "../media/storage.ts";
import { deleteUserSessions } from "./app-sessions.ts";
import type { Jid } from "./jid.ts";
import { jidText } from "./lifecycle.ts";

/**
 * Removing a user (docs/operations.md "Removing, exporting, disabling a user"), one resumable operation recorded
 * in `user_removals` (migration 1764680000040):
 *
 * 1. one transaction deletes every row of the user in every table (web_users last: its trigger tells every auth
 *    process to forget the user), anonymises or deletes their attachments, and records the storage keys of the
 *    files those rows named, in state 'files';
 * 2. the files are deleted, a few at once; a key leaves `pending_keys` only once its file is gone;
 * 3. state 'done'.
 *
 * Killed in 1, nothing happened; killed or failing in 2 (storage down), running it again deletes what is left.
 * A session advisory lock keeps two removals of one user from running at once.
 */

export interface RemovalOptions {
  /** What happens to the pictures and videos they sent (config `users.removal.attachments`). */
  attachments: AttachmentPolicy;
  /**
   * Forgets the failed logins counted for the user: the auth service's `clearLoginFailures`, whose keys are
   * hashes only it makes (services/common imports no service, so the caller passes it in).
   */
  forgetLoginFailures?: (pool: Pool, jid: Jid) => Promise<number>;
  /** Files deleted at once (default 8). */
  concurrency?: number;
}

export interface RemovalSummary {
  /** rows deleted per table; `attachments_anonymised` rows kept without an owner */
  rows: Record<string, number>;
  /** stored files the rows named, to delete */
  files: number;
  /** imported legacy files (paths under `media.legacyRoot`, which is read-only to us) the user's rows named */
  legacyFilesLeft: string[];
}

export type RemovalResult =
  | { status: "not_found" }
  | {
      status: "removed";
      /** a removal left half-way by an earlier run, finished now */
      resumed: boolean;
      attachments: AttachmentPolicy;
      summary: RemovalSummary;
    };

/** Another process is removing this user right now. */
export class RemovalBusyError extends Error {
  override name = "RemovalBusyError";
  constructor(jid: Jid) {
    super(`a removal of ${jidText(jid)} is running elsewhere: wait for it, then run this again if it failed`);
  }
}

/** The rows are gone, some files are not: the removal is recorded as unfinished and finishes when run again. */
export class RemovalIncompleteError extends Error {
  override name = "RemovalIncompleteError";
  readonly pending: number;
  constructor(jid: Jid, pending: number, cause: Error) {
    super(
      `${jidText(jid)}: every row is removed, but ${pending} stored file(s) could not be deleted (${cause.message}); run the removal again to finish it`,
    );
    this.pending = pending;
  }
}

const BATCH = 100;

/** A user's attachments in a removal (also EXPLAINed by test/bench/scale-plans.ts): $1 domain, $2 node, $3 the policy (`delete` or `anonymise`: only avatars) */
export const REMOVE_USER_ATTACHMENTS_SQL = `WITH own AS (
         SELECT name FROM attachments
          WHERE domain = $1 AND node = $2 AND parent IS NULL AND ($3 = 'delete' OR kind = 'avatar')
       )
       -- one IN of the two ways a row is theirs (their own, a variant of theirs): an OR of them read the whole
       -- table (docs/database.md "Query plans at 1,000,000 rows")
       DELETE FROM attachments
        WHERE name IN (
          SELECT a.name FROM attachments a
           WHERE a.domain = $1 AND a.node = $2 AND ($3 = 'delete' OR a.kind = 'avatar')
          UNION ALL
          SELECT v.name FROM attachments v WHERE v.parent IN (SELECT name FROM own))
       RETURNING name, legacy_path`;

export async function removeUserData(
  pool: Pool,
  storage: Pick<Storage, "delete">,
  jid: Jid,
  o: RemovalOptions,
): Promise<RemovalResult> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    const lock = await client.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok",
      [`user-removal:${jidText(jid)}`],
    );
    if (!lock.rows[0]?.ok) throw new RemovalBusyError(jid);
    try {
      const step = await removeRows(client, jid, o.attachments);
      if (!step) return { status: "not_found" };
      if (o.forgetLoginFailures) {
        const forgotten = await o.forgetLoginFailures(pool, jid);
        if (forgotten > 0) {
          await client.query(
            `UPDATE user_removals
                SET summary = jsonb_set(summary, '{rows,login_failures}',
                                        to_jsonb(coalesce((summary #>> '{rows,login_failures}')::int, 0) + $3))
              WHERE domain = $1 AND node = $2`,
            [jid.domain, jid.node, forgotten],
          );
          step.summary.rows.login_failures = (step.summary.rows.login_failures ?? 0) + forgotten;
        }
      }
      await deleteFiles(client, storage, jid, o.concurrency ?? 8);
      await client.query(
        `UPDATE user_removals SET state = 'done', pending_keys = '{}', finished_at = now()
          WHERE domain = $1 AND node = $2`,
        [jid.domain, jid.node],
      );
      return { status: "removed", ...step };
    } finally {
      await client
        .query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [`user-removal:${jidText(jid)}`])
        .catch((err: Error) => {
          broken = err;
        });
    }
  } finally {
    // a connection whose unlock failed may still hold the lock: it is closed, not reused
    client.release(broken);
  }
}

/**
 * Step 1, or what an earlier run of it left: the removal's policy and summary, or undefined when the user has
 * no row anywhere and no removal is unfinished.
 */
async function removeRows(
  client: pg.PoolClient,
  jid: Jid,
  policy: AttachmentPolicy,
): Promise<{ resumed: boolean; attachments: AttachmentPolicy; summary: RemovalSummary } | undefined> {
  const who = [jid.domain, jid.node];
  await client.query("BEGIN");
  try {
    const earlier = await client.query<{ attachments: AttachmentPolicy; summary: RemovalSummary }>(
      "SELECT attachments, summary FROM user_removals WHERE domain = $1 AND node = $2 AND state = 'files' FOR UPDATE",
      who,
    );
    const unfinished = earlier.rows[0];
    if (unfinished) {
      await client.query("COMMIT");
      return { resumed: true, attachments: unfinished.attachments, summary: unfinished.summary };
    }
    // one user's rows, however many (a million locations), in one go: no statement limit of the pool
    await client.query("SET LOCAL statement_timeout = 0");
    // the lock an upload of this user takes (http-utility attachments/store.ts): none is half-recorded now
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`media:${jidText(jid)}`]);

    const rows: Record<string, number> = {};
    const count = async (table: string, sql: string, values: unknown[] = who) => {
      const r = await client.query(sql, values);
      rows[table] = (rows[table] ?? 0) + (r.rowCount ?? 0);
      return r;
    };

    // their attachments: every one under `delete`, only avatars under `anonymise`; thumbnails with their original
    const gone = await count("attachments", REMOVE_USER_ATTACHMENTS_SQL, [...who, policy]);
    await count(
      "attachments_anonymised",
      "UPDATE attachments SET node = '', original_name = NULL WHERE domain = $1 AND node = $2",
    );
    // the avatar link; an imported legacy avatar it named keeps its row and file, as when a user replaces it
    // (http-utility attachments/store.ts): the legacy root is read-only to us
    const avatar = await count(
      "avatars",
      `DELETE FROM avatars v WHERE v.domain = $1 AND v.node = $2
       RETURNING (SELECT legacy_path FROM attachments a WHERE a.name = v.name) AS legacy_path`,
    );

    // a delivery row names a device token of theirs, kept so a resumed broadcast pushes once: the token goes
    await count(
      "push_broadcast_deliveries",
      `DELETE FROM push_broadcast_deliveries d USING push_tokens t
        WHERE t.domain = $1 AND t.node = $2 AND d.service = t.service AND d.token = t.token`,
    );
    for (const table of [
      "push_tokens",
      "push_channel_subscriptions",
      "push_notifications",
      "locations",
      "registration_challenges",
    ]) {
      await count(table, `DELETE FROM ${table} WHERE domain = $1 AND node = $2`);
    }
    await count("chat_mutes", "DELETE FROM chat_mutes WHERE domain = $1 AND node = $2");
    // others' mutes of them name their JID: a number registered again by someone else starts unmuted
    await count("chat_mutes_of_them", "DELETE FROM chat_mutes WHERE peer = $1", [jidText(jid)]);
    // registration's limits per number (http-utility registration/routes.ts): keys `<limit>:<msisdn>[/<address>]`
    if (/^[0-9]{1,20}$/.test(jid.node)) {
      await count(
        "rate_limits",
        `DELETE FROM rate_limits
          WHERE key IN ('registerPerNumber:' || $1, 'authorizePerNumber:' || $1)
             OR starts_with(key, 'registerPerNumberIp:' || $1 || '/')
             OR starts_with(key, 'authorizePerNumberIp:' || $1 || '/')`,
        [jid.node],
      );
    }
    // their app sessions: each still live is NOTIFYed at the commit, so its access tokens stop at once
    rows.app_sessions = await deleteUserSessions(client, jid);
    await count("web_users", "DELETE FROM web_users WHERE domain = $1 AND node = $2");

    if (Object.values(rows).every((n) => n === 0)) {
      await client.query("ROLLBACK");
      return undefined;
    }
    const keys = gone.rows
      .filter((r: { legacy_path: string | null }) => r.legacy_path === null)
      .map((r: { name: string }) => r.name)
      .filter(isKey);
    const summary: RemovalSummary = {
      rows,
      files: keys.length,
      legacyFilesLeft: [...gone.rows, ...avatar.rows]
        .map((r: { legacy_path: string | null }) => r.legacy_path)
        .filter((p): p is string => p !== null),
    };
    await client.query(
      `INSERT INTO user_removals (domain, node, state, attachments, pending_keys, summary)
       VALUES ($1, $2, 'files', $3, $4, $5)
       ON CONFLICT (domain, node) DO UPDATE
         SET state = 'files', attachments = EXCLUDED.attachments, pending_keys = EXCLUDED.pending_keys,
             summary = EXCLUDED.summary, started_at = now(), finished_at = NULL`,
      [...who, policy, keys, summary],
    );
    await client.query("COMMIT");
    return { resumed: false, attachments: policy, summary };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

/** Step 2: deletes the files still pending, `concurrency` at once, recording each batch as it goes. */
async function deleteFiles(
  client: pg.PoolClient,
  storage: Pick<Storage, "delete">,
  jid: Jid,
  concurrency: number,
): Promise<void> {
  const r = await client.query<{ pending_keys: string[] }>(
    "SELECT pending_keys FROM user_removals WHERE domain = $1 AND node = $2",
    [jid.domain, jid.node],
  );
  const pending = r.rows[0]?.pending_keys ?? [];
  const failed: Error[] = [];
  for (let i = 0; i < pending.length; i += BATCH) {
    const batch = pending.slice(i, i + BATCH);
    const deleted: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, batch.length) }, async () => {
        while (next < batch.length) {
          const key = batch[next++] as string;
          try {
            await storage.delete(key);
            deleted.push(key);
          } catch (err) {
            failed.push(err as Error);
          }
        }
      }),
    );
    await client.query(
      `UPDATE user_removals
          SET pending_keys = array(SELECT k FROM unnest(pending_keys) k WHERE k <> ALL($3::text[]))
        WHERE domain = $1 AND node = $2`,
      [jid.domain, jid.node, deleted],
    );
  }
  if (failed[0]) throw new RemovalIncompleteError(jid, failed.length, failed[0]);
}
