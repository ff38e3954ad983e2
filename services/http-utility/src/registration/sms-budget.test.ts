import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { createSmsBudget } from "./sms-budget.ts";

/** The SMS budgets against a real PostgreSQL: exact under concurrency, one warning per window. */

let db: TestDatabase;
const { log, lines, clear: clearLog } = recordingLogger({ level: "info" });

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const refusals = async (registry: Registry, scope: string) =>
  (await registry.getSingleMetric("registration_sms_budget_refusals_total")?.get())?.values.find(
    (v) => v.labels.scope === scope,
  )?.value ?? 0;

describe("SMS budgets", () => {
  it("take exactly the per-prefix budget under concurrency, then refuse until the window ends", async () => {
    const metrics = new Registry();
    const budget = createSmsBudget({
      pool: db.pool,
      log,
      metrics,
      global: { points: 100, seconds: 86_400 },
      perPrefix: { points: 5, seconds: 86_400 },
    });
    const takes = await Promise.all(Array.from({ length: 12 }, () => budget.take("+30")));
    expect(takes.filter((t) => t.ok)).toHaveLength(5);
    const refused = takes.find((t) => !t.ok);
    expect(refused).toMatchObject({ ok: false, scope: "prefix", prefix: "+30" });
    expect(refused && !refused.ok && refused.retryAfterS).toBeGreaterThan(0);
    expect(refused && !refused.ok && refused.retryAfterS).toBeLessThanOrEqual(86_400);
    expect(await refusals(metrics, "+30")).toBe(7);
    // one warning for the window, whatever the number of refusals
    expect(lines.filter((l) => l.msg?.toString().startsWith("registration SMS budget reached"))).toHaveLength(
      1,
    );
    // another prefix is not affected; the global budget counted only what went out
    expect(await budget.take("+357")).toMatchObject({ ok: true });
    const global = await db.pool.query("SELECT sent FROM sms_budgets WHERE scope = 'global'");
    expect(global.rows[0].sent).toBe(6);
  });

  it("refuses on the global budget and gives the prefix's point back; giveBack returns what was taken", async () => {
    await db.pool.query("DELETE FROM sms_budgets");
    clearLog();
    const metrics = new Registry();
    const budget = createSmsBudget({
      pool: db.pool,
      log,
      metrics,
      global: { points: 2, seconds: 3600 },
      perPrefix: { points: 10, seconds: 3600 },
    });
    const first = await budget.take("+30");
    expect(first).toMatchObject({ ok: true });
    if (first.ok) await budget.giveBack(first.scopes); // that SMS did not go out
    expect((await budget.take("+30")).ok).toBe(true);
    expect((await budget.take("+44")).ok).toBe(true);
    const refused = await budget.take("+30");
    expect(refused).toMatchObject({ ok: false, scope: "global" });
    expect(refused.ok || refused.retryAfterS <= 3600).toBe(true);
    expect(await refusals(metrics, "global")).toBe(1);
    const rows = await db.pool.query("SELECT scope, sent FROM sms_budgets ORDER BY scope");
    expect(rows.rows).toEqual([
      { scope: "+30", sent: 1 },
      { scope: "+44", sent: 1 },
      { scope: "global", sent: 2 },
    ]);
    expect(lines.find((l) => l.budget === "smsPerDay")).toMatchObject({
      level: 40,
      scope: "global",
      limit: 2,
    });
  });
});
