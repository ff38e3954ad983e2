import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { PgBoss } from "pg-boss";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { eventually } from "../../../../../test/support/eventually.ts";
import { ROOT } from "../../../../../test/support/processes.ts";
import { createJobQueue } from "../jobs.ts";
import type { Notifier } from "../notifier.ts";
import { storeToken, subscribe } from "../token-store.ts";
import { type Broadcasts, createBroadcasts } from "./broadcast.ts";

/**
 * A channel broadcast survives its worker dying half-way: the worker runs in a child process
 * (test/support/broadcast-worker.ts) against the test database, is SIGKILLed in the middle of a batch,
 * and a second worker takes the job over once pg-boss sees its heartbeat stop. Every device gets exactly
 * one push, and the progress reaches `done`.
 */

const log = pino({ level: "silent" });
const BATCH = 5; // subscribers per batch
const HEARTBEAT_SECONDS = 10; // pg-boss's least
const USERS = 40;
const TWO_DEVICES = 5; // the first five users (the first batch) have a second device
const TOKENS = USERS + TWO_DEVICES;
// batches of 10, 5 and 5 devices are pushed and recorded; the worker hangs in the fourth (devices 21–25)
const RECORDED = 20;
const HALT_AFTER = 22;
const CUT_SHORT = 5;

let db: TestDatabase;
let boss: PgBoss;
let broadcasts: Broadcasts;
let dir: string;
const children: ChildProcess[] = [];

/** A worker process; resolves once it works on the queue. */
async function worker(pushLog: string, haltAfter?: number): Promise<ChildProcess> {
  const child = fork(path.join(ROOT, "test/support/broadcast-worker.ts"), [], {
    env: {
      PATH: process.env.PATH ?? "",
      DATABASE_URL: db.url,
      PUSH_LOG: pushLog,
      BATCH_SIZE: String(BATCH),
      HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      ...(haltAfter && { HALT_AFTER: String(haltAfter) }),
    },
    execArgv: [],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  const [message] = (await Promise.race([once(child, "message"), once(child, "exit")])) as [unknown];
  if (message !== "ready") throw new Error(`broadcast worker did not start (${String(message)})`);
  return child;
}

const pushedTokens = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean);

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), "broadcast-"));
  for (let i = 0; i < USERS; i++) {
    const owner = { domain: "oyo.test", node: `30692${String(i).padStart(7, "0")}` };
    await subscribe(db.pool, owner, "alerts");
    await storeToken(db.pool, { ...owner, service: "fcm", token: `tok-${i}-a`, app: "OyoChat" }, 10);
    if (i < TWO_DEVICES) {
      await storeToken(db.pool, { ...owner, service: "fcm", token: `tok-${i}-b`, app: "OyoChat" }, 10);
    }
  }
  // this process queues and reads progress only: the workers are the children
  boss = createJobQueue({ pool: db.pool, log });
  await boss.start();
  const unused: Notifier = {
    toToken: () => Promise.reject(new Error("not a worker")),
    toTokens: () => Promise.reject(new Error("not a worker")),
    toUser: () => Promise.reject(new Error("not a worker")),
  };
  broadcasts = createBroadcasts({
    pool: db.pool,
    boss,
    notifier: unused,
    log,
    concurrency: 0,
    options: { heartbeatSeconds: HEARTBEAT_SECONDS },
  });
  await broadcasts.start();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await boss?.stop({ graceful: false });
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a broadcast whose worker is killed half-way", () => {
  // about 12 s, and must be: pg-boss hands the job over only after the dead worker's heartbeat (10 s at the
  // least) has gone stale, in real time
  it("resumes on another worker and pushes every device exactly once", async () => {
    const pushLog = path.join(dir, "pushes.log");
    writeFileSync(pushLog, "");
    const id = await broadcasts.enqueue({
      domain: "oyo.test",
      channel: "alerts",
      message: { body: "Disk full" },
    });
    expect(await broadcasts.progress(id)).toMatchObject({ state: "queued", total: null, sent: 0 });

    // the first worker gets stuck in the middle of its fourth batch…
    const first = await worker(pushLog, HALT_AFTER);
    await once(first, "message");
    const deliveries = async () =>
      (
        await db.pool.query(
          "SELECT count(*)::int AS n FROM push_broadcast_deliveries WHERE broadcast_id = $1",
          [id],
        )
      ).rows[0].n as number;
    // …once every token it claimed has been pushed, it dies
    await eventually(
      async () => (await deliveries()) === pushedTokens(pushLog).length,
      10_000,
      "the batch's pushes",
    );
    first.kill("SIGKILL");
    await once(first, "exit");
    const halfway = await broadcasts.progress(id);
    expect(halfway).toMatchObject({ state: "running", total: TOKENS, sent: RECORDED, dead: 0, failed: 0 });
    expect(pushedTokens(pushLog)).toHaveLength(RECORDED + CUT_SHORT);

    // a second worker takes the job over once its heartbeat has gone stale
    await worker(pushLog);
    const done = await eventually(
      async () => {
        const p = await broadcasts.progress(id);
        return p?.state === "done" && p;
      },
      60_000,
      "the broadcast to finish",
    );

    const pushes = pushedTokens(pushLog);
    const perToken = new Map<string, number>();
    for (const t of pushes) perToken.set(t, (perToken.get(t) ?? 0) + 1);
    expect(perToken.size).toBe(TOKENS);
    expect([...perToken.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    // the batch cut short was pushed, but what the provider said was never recorded: counted as failed
    expect(done).toMatchObject({
      state: "done",
      total: TOKENS,
      sent: TOKENS - CUT_SHORT,
      dead: 0,
      failed: CUT_SHORT,
    });
    expect(done?.finishedAt).not.toBeNull();
    const outcomes = await db.pool.query(
      "SELECT outcome, count(*)::int AS n FROM push_broadcast_deliveries WHERE broadcast_id = $1 GROUP BY outcome ORDER BY outcome",
      [id],
    );
    expect(outcomes.rows).toEqual([
      { outcome: "sent", n: TOKENS - CUT_SHORT },
      { outcome: "unknown", n: CUT_SHORT },
    ]);
  }, 90_000);
});
