import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { type Listener, startListener } from "./listener.ts";

/**
 * The process's one LISTEN connection on a real PostgreSQL: subscriptions share it, each hears its own
 * channels, and after the connection is cut each knows it missed notifications and is told once it is back.
 */

let db: TestDatabase;
let listener: Listener;

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
  listener = startListener({ connectionString: db.url, log: pino({ level: "silent" }) });
});
afterAll(async () => {
  await listener?.close();
  await db?.drop();
});

const listenerBackends = async () =>
  (
    await db.pool.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'xmpp-sidecars-listener'",
    )
  ).rows.map((r) => r.pid);

const notify = (channel: string, payload: string) =>
  db.pool.query("SELECT pg_notify($1, $2)", [channel, payload]);

describe("the shared listener", () => {
  it("serves every subscription on one connection, each with its own channels, until it closes", async () => {
    const a: string[] = [];
    const b: string[] = [];
    const subA = listener.subscribe(["web_users_changed"], { onMessage: (ch, p) => a.push(`${ch} ${p}`) });
    const subB = listener.subscribe(["buddies_changed", "web_users_changed"], {
      onMessage: (ch, p) => b.push(`${ch} ${p}`),
    });
    await eventually(async () => subA.connected() && subB.connected(), 10_000, "both subscribed");
    expect(await listenerBackends()).toHaveLength(1);

    await notify("web_users_changed", "1");
    await notify("buddies_changed", "2");
    await eventually(async () => b.length === 2, 10_000, "b heard both channels");
    expect(a).toEqual(["web_users_changed 1"]);
    expect(b).toEqual(["web_users_changed 1", "buddies_changed 2"]);

    subB.close();
    expect(subB.connected()).toBe(false);
    await notify("web_users_changed", "3");
    await eventually(async () => a.length === 2, 10_000, "a heard the third");
    expect(b).toHaveLength(2);
    subA.close();
  });

  it("says a subscription missed notifications while the connection was cut, and resynchronises it", async () => {
    const heard: string[] = [];
    let resyncs = 0;
    const sub = listener.subscribe(["buddies_changed"], {
      onMessage: (_ch, p) => heard.push(p),
      onReconnect: () => {
        resyncs++;
      },
    });
    await eventually(async () => sub.connected(), 10_000, "subscribed");
    expect(resyncs).toBe(0);

    const [pid] = await listenerBackends();
    await db.pool.query("SELECT pg_terminate_backend($1)", [pid]);
    await eventually(async () => !sub.connected(), 10_000, "cut off");
    await eventually(async () => sub.connected(), 20_000, "back");
    expect(resyncs).toBe(1);
    expect(await listenerBackends()).toHaveLength(1);

    await notify("buddies_changed", "after");
    await eventually(async () => heard.includes("after"), 10_000, "heard after the reconnection");
    sub.close();
  });
});
