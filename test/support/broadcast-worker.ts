import { appendFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import pg from "pg";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createJobQueue } from "../../services/http-utility/src/push/jobs.ts";
import { createNotifier } from "../../services/http-utility/src/push/notifier.ts";
import { createBroadcasts } from "../../services/http-utility/src/push/send/broadcast.ts";
import type {
  PushMessage,
  PushSender,
  SendOutcome,
} from "../../services/http-utility/src/push/senders/sender.ts";

/**
 * A broadcast worker in a process of its own, for the test that kills one half-way
 * (push/send/broadcast.test.ts). Its FCM sender appends each token it pushes to PUSH_LOG, a line per
 * push. With HALT_AFTER=n, from the n-th push on every push hangs (after it is logged) and the parent gets
 * the IPC message `halted`: a worker stuck mid-batch, for the parent to SIGKILL.
 *
 * env: DATABASE_URL, PUSH_LOG, HALT_AFTER (optional), BATCH_SIZE, HEARTBEAT_SECONDS
 */

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`broadcast-worker: ${name} is not set`);
  return v;
};
const file = env("PUSH_LOG");
const haltAfter = Number(process.env.HALT_AFTER ?? 0);
let pushed = 0;

const sender: PushSender = {
  service: "fcm",
  async send(token: string, _message: PushMessage): Promise<SendOutcome> {
    appendFileSync(file, `${token}\n`);
    pushed++;
    if (haltAfter > 0 && pushed >= haltAfter) {
      if (pushed === haltAfter) process.send?.("halted");
      await new Promise(() => {}); // never answers
    }
    await delay(5);
    return { status: "sent" };
  },
  async close() {},
};

const log = pino({ level: "warn" }, pino.destination(2));
const pool = new pg.Pool({ connectionString: env("DATABASE_URL"), max: 4 });
const boss = createJobQueue({
  pool,
  log,
  options: { superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 },
});
const notifier = createNotifier({
  pool,
  senders: new Map([["OyoChat", new Map([["fcm", sender]])]]),
  retry: { attempts: 1, initialMs: 10, maxMs: 10 },
  log,
  metrics: new Registry(),
});
const broadcasts = createBroadcasts({
  pool,
  boss,
  notifier,
  log,
  concurrency: 1,
  options: {
    batchSize: Number(env("BATCH_SIZE")),
    heartbeatSeconds: Number(env("HEARTBEAT_SECONDS")),
    pollingIntervalSeconds: 0.5,
  },
});
await boss.start();
await broadcasts.start();
process.send?.("ready");
