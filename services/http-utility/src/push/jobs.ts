import { PgBoss } from "pg-boss";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";

/**
 * The durable job queue of the push work that outlives a request (channel broadcasts, reply relays):
 * pg-boss (https://pgboss.io) in its own `pgboss` schema of our database, created by pg-boss at start.
 * It runs its statements through the service's pool (a `db` adapter) rather than a pool of its own, so
 * it needs no connection string and holds no connections while idle. One instance per process, shared
 * by the broadcasts and the relay.
 */

export interface JobQueueOptions {
  /** How often expired and silent (no heartbeat) jobs are failed over to a retry, in seconds. */
  superviseIntervalSeconds?: number;
  monitorIntervalSeconds?: number;
}

export function createJobQueue(deps: { pool: Pool; log: Logger; options?: JobQueueOptions }): PgBoss {
  const boss = new PgBoss({
    db: { executeSql: (text, values) => deps.pool.query(text, values as unknown[]) },
    registerInstance: false,
    openTelemetry: { enabled: false },
    ...deps.options,
  });
  const log = deps.log.child({ component: "job-queue" });
  // pg-boss reports its background failures (maintenance, polling) as events; unheard they would crash
  boss.on("error", (err) => log.warn({ err: err.message }, "job queue error"));
  boss.on("warning", (w) => log.warn({ warning: w.message }, "job queue warning"));
  return boss;
}
