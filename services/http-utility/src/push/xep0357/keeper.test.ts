import { pino } from "pino";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { ComponentKeeper, type KeptComponent } from "./keeper.ts";

/**
 * Several processes sharing the components through PostgreSQL advisory locks, each keeper on its own
 * connection as each process would be: one holder per component, a takeover when the holder stops, and a
 * holder whose database session is cut stopping its components before anyone else may start them.
 */

const log = pino({ level: "silent" });
let db: TestDatabase;
/** Every keeper started, stopped after each test even when it failed (each holds a pool client). */
const started: ComponentKeeper[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((k) => k.stop()));
});

afterAll(async () => {
  await db?.drop();
});

/** A keeper of `names` whose components record who runs them. */
function keeper(
  who: string,
  names: string[],
  running: Map<string, string[]>,
  o: { checkMs?: number; listen?: boolean } = {},
) {
  const components: KeptComponent[] = names.map((component) => ({
    component,
    start() {
      running.set(component, [...(running.get(component) ?? []), who]);
      return {
        async stop() {
          running.set(
            component,
            (running.get(component) ?? []).filter((w) => w !== who),
          );
        },
      };
    },
  }));
  const k = new ComponentKeeper({
    pool: db.pool,
    ...(o.listen ? { listener: db.listener } : {}),
    log,
    checkMs: o.checkMs ?? 100,
    components,
  });
  started.push(k);
  return k;
}

it("runs each component in exactly one process and hands it over when that one stops", async () => {
  const running = new Map<string, string[]>();
  const names = ["push.a.test", "push.b.test"];
  const a = keeper("a", names, running);
  a.start();
  await vi.waitFor(() => expect(a.held.sort()).toEqual(names), { timeout: 10_000 });
  const b = keeper("b", names, running);
  b.start();
  // b tries every 100 ms: ten tries later it still holds nothing
  await vi.waitFor(
    async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted",
      );
      expect(rows[0]?.n).toBe(2);
    },
    { timeout: 10_000 },
  );
  expect(b.held).toEqual([]);
  expect(Object.fromEntries(running)).toEqual({ "push.a.test": ["a"], "push.b.test": ["a"] });

  await a.stop();
  await vi.waitFor(() => expect(b.held.sort()).toEqual(names), { timeout: 10_000 });
  expect(Object.fromEntries(running)).toEqual({ "push.a.test": ["b"], "push.b.test": ["b"] });
  await b.stop();
  expect(Object.fromEntries(running)).toEqual({ "push.a.test": [], "push.b.test": [] });
});

it("stops its components when the session holding the locks is cut, and takes them again after", async () => {
  const events: string[] = [];
  const k = new ComponentKeeper({
    pool: db.pool,
    log,
    checkMs: 100,
    components: [
      {
        component: "push.c.test",
        start() {
          events.push("start");
          return {
            async stop() {
              events.push("stop");
            },
          };
        },
      },
    ],
  });
  started.push(k);
  k.start();
  try {
    await vi.waitFor(() => expect(k.held).toEqual(["push.c.test"]), { timeout: 10_000 });
    // what a database restart or a lost network does to the keeper's connection
    await db.pool.query(
      "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
    );
    await vi.waitFor(() => expect(events).toEqual(["start", "stop", "start"]), { timeout: 10_000 });
  } finally {
    await k.stop();
  }
});

it("hands over at once when the holder stops, not at the others' next try", async () => {
  const running = new Map<string, string[]>();
  // tries a minute apart: only the stopping keeper's NOTIFY can make the other take it within the wait below
  const a = keeper("a", ["push.d.test"], running, { checkMs: 60_000, listen: true });
  a.start();
  await vi.waitFor(() => expect(a.held).toEqual(["push.d.test"]), { timeout: 10_000 });
  const b = keeper("b", ["push.d.test"], running, { checkMs: 60_000, listen: true });
  b.start();
  // b's first try (at its start) found the lock taken
  await vi.waitFor(() => expect(b.tries).toBe(1), { timeout: 10_000 });
  expect(b.held).toEqual([]);
  await a.stop();
  await vi.waitFor(() => expect(b.held).toEqual(["push.d.test"]), { timeout: 5000 });
  expect(running.get("push.d.test")).toEqual(["b"]);
  await b.stop();
});
