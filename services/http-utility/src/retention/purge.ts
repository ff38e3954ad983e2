import { type RetentionConfig, retentionMs } from "#common/config/retention-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Storage } from "#common/media/storage.ts";
import { type RetentionRun, recordRetentionRun } from "#common/retention-runs.ts";
import { deleteOldAttachments } from "../attachments/gc.ts";
import { countOlderThan as countAttachments } from "../attachments/store.ts";
import { countOlderThan as countLocations, purgeBatch as purgeLocations } from "../locations/store.ts";

/**
 * The retention of every table that grows with use (docs/operations.md "Retention"), run by http-utility's
 * schedule (schedule.ts) and by `sidecars purge`. Rows go in batches of one short statement each, so no
 * lock or transaction is held for long on tables the apps keep writing, and a run cut short resumes where
 * it stopped. Finished pg-boss jobs are not here: pg-boss deletes them itself after each queue's
 * `deleteAfterSeconds`, which schedule.ts sets from `retention.jobs`.
 */

export type RetentionKind = Exclude<keyof RetentionConfig, "schedule" | "jobs">;

export interface PurgeResult {
  kind: RetentionKind;
  /** What was purged: a table, or `attachments` (rows and their files). */
  what: string;
  /** Rows older than this went (or would go). */
  before: Date;
  rows: number;
}

/** Rows per DELETE: small enough that one statement holds its row locks for milliseconds. */
export const PURGE_BATCH = 5000;

/**
 * A table's rows past their age: `where` is true of a row to purge, given the cutoff as $1. The outer DELETE
 * checks it again, so that a row changed between the subselect and the delete (a challenge answered again,
 * a counter consumed again) is kept.
 */
interface TablePurge {
  kind: RetentionKind;
  table: string;
  where: string;
  /** What a dry run counts, when the delete's condition depends on an earlier table's delete. */
  countWhere?: string;
  /** The cutoff as the column compares it (rate_limits.expire is milliseconds since the epoch). */
  param?: (cutoff: Date) => unknown;
}

const TABLES: TablePurge[] = [
  { kind: "pushNotifications", table: "push_notifications", where: "created_at < $1" },
  // deliveries first: a broadcast's row goes once no delivery of it is left, so a purge cut short between the
  // two never leaves deliveries whose broadcast cannot be found by the next run
  {
    kind: "broadcasts",
    table: "push_broadcast_deliveries",
    where: `broadcast_id IN (SELECT id FROM push_broadcasts
              WHERE state IN ('done', 'failed') AND finished_at < $1)`,
  },
  {
    kind: "broadcasts",
    table: "push_broadcasts",
    where: `state IN ('done', 'failed') AND finished_at < $1
            AND NOT EXISTS (SELECT 1 FROM push_broadcast_deliveries d WHERE d.broadcast_id = push_broadcasts.id)`,
    countWhere: "state IN ('done', 'failed') AND finished_at < $1",
  },
  // a session ends when its code expires (migrations/1763800000001_registration.sql); one whose first code
  // never went out has only its creation; a retry token or a send in progress keeps it
  {
    kind: "registrationChallenges",
    table: "registration_challenges",
    where: `(code_expires_at < $1 OR (code_expires_at IS NULL AND created_at < $1))
            AND (retry_until IS NULL OR retry_until < $1)
            AND (sending_until IS NULL OR sending_until < $1)`,
  },
  // rate-limiter-flexible writes `expire` (ms) and never clears it for PostgreSQL unless asked; a null
  // expire is a key blocked for ever, which stays
  {
    kind: "rateLimits",
    table: "rate_limits",
    where: "expire < $1",
    param: (cutoff) => cutoff.getTime(),
  },
  { kind: "smsBudgets", table: "sms_budgets", where: "window_start < $1" },
];

export interface PurgeOptions {
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  /** Media files are deleted with their rows; without a storage the media kind is skipped. */
  storage?: Storage;
  batch?: number;
  /** Each table as it is done (the CLI prints a line, the schedule logs the whole). */
  onResult?: (r: PurgeResult) => void;
  now?: Date;
  /**
   * Who ran it, recorded in retention_runs with the rows per table, or the error that stopped it, for the
   * operator console (a dry run is never recorded).
   */
  trigger?: RetentionRun["trigger"];
}

/** Purges every kind whose retention is configured; answers the rows per table, in order. */
export async function purgeExpired(
  pool: Pool,
  retention: RetentionConfig,
  o: PurgeOptions = {},
): Promise<PurgeResult[]> {
  if (!o.trigger || o.dryRun) return purge(pool, retention, o);
  const startedAt = new Date();
  const deleted: Record<string, number> = {};
  const counted: PurgeOptions = {
    ...o,
    onResult: (r) => {
      deleted[r.what] = (deleted[r.what] ?? 0) + r.rows;
      o.onResult?.(r);
    },
  };
  let results: PurgeResult[];
  try {
    results = await purge(pool, retention, counted);
  } catch (err) {
    const error = (err as Error).message;
    await recordRetentionRun(pool, { trigger: o.trigger, startedAt, deleted, error }).catch(() => {});
    throw err;
  }
  await recordRetentionRun(pool, { trigger: o.trigger, startedAt, deleted });
  return results;
}

async function purge(pool: Pool, retention: RetentionConfig, o: PurgeOptions): Promise<PurgeResult[]> {
  const now = o.now ?? new Date();
  const batch = o.batch ?? PURGE_BATCH;
  const results: PurgeResult[] = [];
  const cutoffOf = (kind: RetentionKind) => {
    const ms = retentionMs(retention[kind]);
    return ms === undefined ? undefined : new Date(Math.max(0, now.getTime() - ms));
  };
  const done = (r: PurgeResult) => {
    results.push(r);
    o.onResult?.(r);
  };

  for (const t of TABLES) {
    const before = cutoffOf(t.kind);
    if (!before) continue;
    const param = t.param ? t.param(before) : before;
    done({ kind: t.kind, what: t.table, before, rows: await purgeTable(pool, t, param, batch, o.dryRun) });
  }

  const locationsBefore = cutoffOf("locations");
  if (locationsBefore) {
    let rows = 0;
    if (o.dryRun) rows = await countLocations(pool, locationsBefore);
    else {
      for (let n = await purgeLocations(pool, locationsBefore, batch); n > 0; ) {
        rows += n;
        n = await purgeLocations(pool, locationsBefore, batch);
      }
    }
    done({ kind: "locations", what: "locations", before: locationsBefore, rows });
  }

  const mediaBefore = cutoffOf("media");
  if (mediaBefore && (o.dryRun || o.storage)) {
    const rows = o.dryRun
      ? await countAttachments(pool, mediaBefore)
      : (await deleteOldAttachments(pool, o.storage as Storage, mediaBefore)).attachments;
    done({ kind: "media", what: "attachments", before: mediaBefore, rows });
  }
  return results;
}

async function purgeTable(
  pool: Pool,
  t: TablePurge,
  param: unknown,
  batch: number,
  dryRun?: boolean,
): Promise<number> {
  if (dryRun) {
    const r = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${t.table} WHERE ${t.countWhere ?? t.where}`,
      [param],
    );
    return Number(r.rows[0]?.n ?? 0);
  }
  let total = 0;
  for (;;) {
    // ctid: one statement finds a batch and deletes it by physical address, whatever the table's key
    const r = await pool.query(
      `DELETE FROM ${t.table} WHERE ctid = ANY(ARRAY(
         SELECT ctid FROM ${t.table} WHERE ${t.where} LIMIT $2)) AND ${t.where}`,
      [param, batch],
    );
    const n = r.rowCount ?? 0;
    total += n;
    // not `n < batch`: a batch shrunk by the re-check does not mean the table is done
    if (n === 0) return total;
  }
}
