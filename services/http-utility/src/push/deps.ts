import type { PgBoss } from "pg-boss";
import { Registry } from "prom-client";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { createJobQueue } from "./jobs.ts";
import { buddiesUrl, createRelay, type Relay } from "./mongooseim/relay.ts";
import { createNotifier, type Notifier } from "./notifier.ts";
import { type Broadcasts, createBroadcasts } from "./send/broadcast.ts";
import { closePushSenders, createPushSenders, type ProviderEndpoints } from "./senders/registry.ts";

/**
 * What the notification routes need, built once per process (as `createMediaDeps` is for attachments): the
 * senders of every app, the notifier over them, and the durable jobs (broadcasts, relays) on pg-boss.
 * `workers: false` (tests of other route groups) builds it all without starting the job queue.
 */
export interface PushDeps {
  notifier: Notifier;
  broadcasts: Broadcasts;
  relay: Relay;
  /** The started job queue, for the other durable jobs of the process (the retention purge); none without workers. */
  jobs?: PgBoss;
  close(): Promise<void>;
}

export async function createPushDeps(
  ctx: { config: Config; log: Logger; pool: Pool },
  o: { metrics?: Registry; endpoints?: ProviderEndpoints; workers?: boolean } = {},
): Promise<PushDeps> {
  const { config, log, pool } = ctx;
  const senders = createPushSenders(config.push.apps, {
    log,
    env: config.env,
    secrets: config.secrets,
    ...(o.endpoints ? { endpoints: o.endpoints } : {}),
  });
  const notifier = createNotifier({
    pool,
    senders,
    retry: config.push.retry,
    log,
    metrics: o.metrics ?? new Registry(),
  });
  const boss = createJobQueue({ pool, log });
  const workers = o.workers ?? true;
  const broadcasts = createBroadcasts({ pool, boss, notifier, log, concurrency: workers ? 1 : 0 });
  const relay = createRelay({
    boss,
    log,
    relay: config.push.relay,
    buddiesUrl: buddiesUrl(config),
    hookKey: config.push.relay.hookKey,
  });
  if (workers) {
    await boss.start();
    await broadcasts.start();
    await relay.start();
  }
  return {
    notifier,
    broadcasts,
    relay,
    ...(workers ? { jobs: boss } : {}),
    async close() {
      if (workers) {
        await broadcasts.stop();
        await relay.stop();
        await boss.stop({ graceful: true, timeout: 5000 });
      }
      await closePushSenders(senders);
    },
  };
}
