import type { PgBoss } from "pg-boss";
import type { RetentionConfig } from "#common/config/retention-schema.ts";
import { retentionMs } from "#common/config/retention-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import { RELAY_QUEUE } from "../push/mongooseim/relay.ts";
import { BROADCAST_QUEUE } from "../push/send/broadcast.ts";
import { purgeExpired } from "./purge.ts";

/**
 * http-utility's scheduled purge: a pg-boss schedule (https://pgboss.io/api/scheduling) on
 * `retention.schedule`. pg-boss creates one job per occurrence in the whole cluster, however many
 * processes schedule it, and the `singleton` queue lets only one purge be active at a time.
 */

export const RETENTION_QUEUE = "retention-purge";

export async function startRetention(deps: {
  boss: PgBoss;
  pool: Pool;
  log: Logger;
  retention: RetentionConfig;
  storage?: Storage;
}): Promise<void> {
  const { boss, retention } = deps;
  const log = deps.log.child({ component: "retention" });
  // finished jobs are pg-boss's to delete; 0 (keep) is pg-boss's own "never delete"
  const deleteAfterSeconds = Math.ceil((retentionMs(retention.jobs) ?? 0) / 1000);
  for (const queue of [BROADCAST_QUEUE, RELAY_QUEUE]) await boss.updateQueue(queue, { deleteAfterSeconds });

  await boss.createQueue(RETENTION_QUEUE, {
    policy: "singleton",
    retryLimit: 0,
    expireInSeconds: 6 * 3600,
    deleteAfterSeconds: 7 * 86_400,
  });
  await boss.work(RETENTION_QUEUE, { localConcurrency: 1 }, async () => {
    await runRetention({ ...deps, log });
  });
  await boss.schedule(RETENTION_QUEUE, retention.schedule, null, { tz: "UTC" });
}

/**
 * One purge, logged as one line with the rows per table and recorded in retention_runs (the console shows
 * them); a failure is recorded too, then fails the job (pg-boss logs it).
 */
export async function runRetention(deps: {
  pool: Pool;
  log: Logger;
  retention: RetentionConfig;
  storage?: Storage;
}): Promise<void> {
  const started = Date.now();
  const results = await purgeExpired(deps.pool, deps.retention, {
    trigger: "schedule",
    ...(deps.storage ? { storage: deps.storage } : {}),
  });
  const deleted: Record<string, number> = {};
  for (const r of results) deleted[r.what] = (deleted[r.what] ?? 0) + r.rows;
  deps.log.info({ deleted, ms: Date.now() - started }, "retention purge done");
}
