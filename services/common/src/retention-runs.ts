import type { Pool } from "./db/pool.ts";

/**
 * The retention purge's runs (migrations/1764680000060_retention-runs.sql): written by the scheduled run and by
 * `sidecars purge`, read by the operator console. Only the newest `KEEP` are kept, trimmed at each write.
 */

export const KEEP_RUNS = 500;

export interface RetentionRun {
  trigger: "schedule" | "command";
  startedAt: Date;
  finishedAt: Date;
  /** Rows deleted, by table (`attachments` for the media). */
  deleted: Record<string, number>;
  error: string | null;
}

export async function recordRetentionRun(
  pool: Pool,
  run: { trigger: RetentionRun["trigger"]; startedAt: Date; deleted: Record<string, number>; error?: string },
): Promise<void> {
  await pool.query(
    `WITH added AS (
       INSERT INTO retention_runs (trigger, started_at, deleted, error) VALUES ($1, $2, $3, $4) RETURNING id
     )
     DELETE FROM retention_runs WHERE id <= (SELECT id FROM added) - $5`,
    [run.trigger, run.startedAt, JSON.stringify(run.deleted), run.error?.slice(0, 2000) ?? null, KEEP_RUNS],
  );
}

export async function lastRetentionRuns(pool: Pool, limit = 20): Promise<RetentionRun[]> {
  const r = await pool.query<RetentionRun>(
    `SELECT trigger, started_at AS "startedAt", finished_at AS "finishedAt", deleted, error
       FROM retention_runs ORDER BY id DESC LIMIT $1`,
    [limit],
  );
  return r.rows;
}
