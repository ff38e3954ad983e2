import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { PushConfig } from "#common/config/push-schema.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { ScriptedPushSender, sendersOf } from "../../../../test/support/scripted-push-sender.ts";
import { createNotifier, type Notifier } from "./notifier.ts";
import type { PushService } from "./senders/sender.ts";
import { storeToken, type TokenRow, tokensOf } from "./token-store.ts";

/**
 * The notifier against a real database and scripted senders: which sender a token goes to, the badge kept
 * per token, retries with backoff and Retry-After (the waits recorded, not slept), giving up, dead tokens
 * forgotten, and the metrics.
 */

const log = pino({ level: "silent" });
const RETRY: PushConfig["retry"] = { attempts: 3, initialMs: 100, maxMs: 1000 };

let db: TestDatabase;
let fcm: ScriptedPushSender;
let apns: ScriptedPushSender;
let metrics: Registry;
let waits: number[];
let notifier: Notifier;
let users = 0;

/** A new user with these devices of app OyoChat (unless given), badges as given. */
async function user(
  devices: { service: PushService; token: string; app?: string; badge?: number }[],
): Promise<{ domain: string; node: string }> {
  const owner = { domain: "oyo.test", node: `30690000${String(++users).padStart(4, "0")}` };
  for (const d of devices) {
    await storeToken(db.pool, { ...owner, service: d.service, token: d.token, app: d.app ?? "OyoChat" }, 10);
    if (d.badge !== undefined) {
      await db.pool.query("UPDATE push_tokens SET badge = $3 WHERE service = $1 AND token = $2", [
        d.service,
        d.token,
        d.badge,
      ]);
    }
  }
  return owner;
}

async function badgeOf(service: PushService, token: string): Promise<number | undefined> {
  const r = await db.pool.query("SELECT badge FROM push_tokens WHERE service = $1 AND token = $2", [
    service,
    token,
  ]);
  return r.rows[0]?.badge;
}

function build(retry = RETRY) {
  return createNotifier({
    pool: db.pool,
    senders: sendersOf({ OyoChat: [fcm, apns] }),
    retry,
    log,
    metrics,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  // a histogram's series (`…_count`) are values of the metric named without the suffix
  const metric = (await metrics.getMetricsAsJSON()).find((m) => name.startsWith(m.name));
  const value = metric?.values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? metric.name) === name &&
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
  return value?.value ?? 0;
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(() => {
  fcm = new ScriptedPushSender("fcm");
  apns = new ScriptedPushSender("apns");
  metrics = new Registry();
  waits = [];
  notifier = build();
});

describe("toUser", () => {
  it("pushes to every device of the user, one result per token, through the sender of its service", async () => {
    const owner = await user([
      { service: "fcm", token: "f-1" },
      { service: "apns", token: "a1" },
      { service: "fcm", token: "f-2" },
    ]);
    const results = await notifier.toUser(owner, { title: "Hi", body: "there" });
    expect(results).toHaveLength(3);
    expect(results.map((r) => [r.service, r.token, r.status]).sort()).toEqual([
      ["apns", "a1", "sent"],
      ["fcm", "f-1", "sent"],
      ["fcm", "f-2", "sent"],
    ]);
    expect(results.every((r) => typeof r.id === "string")).toBe(true);
    expect(fcm.pushes.map((p) => p.token).sort()).toEqual(["f-1", "f-2"]);
    expect(apns.pushesTo("a1")).toEqual([{ title: "Hi", body: "there", badge: 1 }]);
  });

  it("pushes to the one device named", async () => {
    const owner = await user([
      { service: "fcm", token: "only-1" },
      { service: "fcm", token: "only-2" },
    ]);
    const results = await notifier.toUser(owner, { body: "x" }, "only-2");
    expect(results.map((r) => r.token)).toEqual(["only-2"]);
    expect(fcm.pushes.map((p) => p.token)).toEqual(["only-2"]);
    expect(await notifier.toUser(owner, { body: "x" }, "someone-elses")).toEqual([]);
  });

  it("pushes to many devices in parallel, at most 16 at a time", async () => {
    fcm = new ScriptedPushSender("fcm", { latencyMs: 30 });
    notifier = build();
    const owner = await user([]);
    // more devices than the default cap of 10 per user and app
    for (let i = 0; i < 40; i++) {
      await storeToken(db.pool, { ...owner, service: "fcm", token: `many-${i}`, app: "OyoChat" }, 100);
    }
    const results = await notifier.toUser(owner, { body: "x" });
    expect(results).toHaveLength(40);
    expect(fcm.maxInFlight).toBe(16);
  });
});

describe("badges", () => {
  it("shows one more than the device's last count on each alert, per device", async () => {
    const owner = await user([
      { service: "fcm", token: "b-1" },
      { service: "apns", token: "b2", badge: 5 },
    ]);
    await notifier.toUser(owner, { body: "one" });
    await notifier.toUser(owner, { body: "two" });
    expect(fcm.pushesTo("b-1").map((m) => m.badge)).toEqual([1, 2]);
    expect(apns.pushesTo("b2").map((m) => m.badge)).toEqual([6, 7]);
    expect(await badgeOf("fcm", "b-1")).toBe(2);
    expect(await badgeOf("apns", "b2")).toBe(7);
  });

  it("sends a given badge as it is and stores it; a silent push leaves the count alone", async () => {
    const owner = await user([{ service: "apns", token: "b3", badge: 4 }]);
    await notifier.toUser(owner, { body: "set", badge: 10 });
    expect(await badgeOf("apns", "b3")).toBe(10);
    await notifier.toUser(owner, { silent: true, data: { sync: "1" } });
    expect(await badgeOf("apns", "b3")).toBe(10);
    await notifier.toUser(owner, { body: "next" });
    expect(apns.pushesTo("b3").map((m) => m.badge)).toEqual([10, undefined, 11]);
    await notifier.toUser(owner, { body: "cleared", badge: 0 });
    expect(await badgeOf("apns", "b3")).toBe(0);
  });
});

describe("retries", () => {
  it("retries a busy provider with exponential backoff, then answers its result", async () => {
    const owner = await user([{ service: "fcm", token: "r-1" }]);
    fcm.script(
      "r-1",
      { status: "retry", reason: "UNAVAILABLE" },
      { status: "retry", reason: "INTERNAL" },
      { status: "sent", id: "m-1" },
    );
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result).toEqual({ service: "fcm", token: "r-1", status: "sent", id: "m-1" });
    expect(waits).toEqual([100, 200]);
    // the badge was counted once, and every try carried it
    expect(fcm.pushesTo("r-1").map((m) => m.badge)).toEqual([1, 1, 1]);
    expect(await counter("push_send_retries_total", { provider: "fcm", reason: "UNAVAILABLE" })).toBe(1);
  });

  it("waits as long as Retry-After says", async () => {
    const owner = await user([{ service: "apns", token: "r2" }]);
    apns.script("r2", { status: "retry", reason: "TooManyRequests", afterMs: 700 }, { status: "sent" });
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result?.status).toBe("sent");
    expect(waits).toEqual([700]);
  });

  it("gives up after push.retry.attempts tries", async () => {
    const owner = await user([{ service: "fcm", token: "r-3" }]);
    fcm.script("r-3", { status: "retry", reason: "status 503 from upstream" });
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result).toEqual({
      service: "fcm",
      token: "r-3",
      status: "gave_up",
      reason: "status 503 from upstream",
    });
    expect(fcm.pushesTo("r-3")).toHaveLength(3);
    expect(waits).toEqual([100, 200]);
    // free text is no label value
    expect(await counter("push_sends_total", { provider: "fcm", outcome: "gave_up", reason: "other" })).toBe(
      1,
    );
  });

  it("gives up at once when Retry-After is over push.retry.maxMs", async () => {
    const owner = await user([{ service: "apns", token: "r4" }]);
    apns.script("r4", { status: "retry", reason: "TooManyRequests", afterMs: 60_000 });
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result?.status).toBe("gave_up");
    expect(result?.reason).toMatch(/asks to wait 60000 ms, over push.retry.maxMs \(1000\)/);
    expect(apns.pushesTo("r4")).toHaveLength(1);
    expect(waits).toEqual([]);
    expect(
      await counter("push_sends_total", {
        provider: "apns",
        outcome: "gave_up",
        reason: "retry_after_too_long",
      }),
    ).toBe(1);
  });

  it("never waits longer than push.retry.maxMs between tries", async () => {
    notifier = build({ attempts: 5, initialMs: 100, maxMs: 250 });
    const owner = await user([{ service: "fcm", token: "r-5" }]);
    fcm.script("r-5", { status: "retry", reason: "UNAVAILABLE" });
    await notifier.toUser(owner, { body: "x" });
    expect(waits).toEqual([100, 200, 250, 250]);
  });

  it("does not retry a refusal for good", async () => {
    const owner = await user([{ service: "fcm", token: "r-6" }]);
    fcm.script("r-6", { status: "failed", reason: "INVALID_ARGUMENT" });
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result).toEqual({ service: "fcm", token: "r-6", status: "failed", reason: "INVALID_ARGUMENT" });
    expect(fcm.pushesTo("r-6")).toHaveLength(1);
    expect(waits).toEqual([]);
  });
});

describe("tokens and senders", () => {
  it("forgets a dead token and keeps the others", async () => {
    const owner = await user([
      { service: "apns", token: "d1" },
      { service: "fcm", token: "d-2" },
    ]);
    apns.script("d1", { status: "dead_token", reason: "Unregistered" });
    const results = await notifier.toUser(owner, { body: "x" });
    expect(results.find((r) => r.token === "d1")).toEqual({
      service: "apns",
      token: "d1",
      status: "dead_token",
      reason: "Unregistered",
    });
    expect((await tokensOf(db.pool, owner)).map((t) => t.token)).toEqual(["d-2"]);
    expect(
      await counter("push_sends_total", { provider: "apns", outcome: "dead_token", reason: "Unregistered" }),
    ).toBe(1);
  });

  it("answers no_sender for a token whose app or service has no credentials, touching nothing", async () => {
    const owner = await user([
      { service: "fcm", token: "n-1", app: "OtherApp" },
      { service: "apns-voip", token: "n2" },
    ]);
    const results = await notifier.toUser(owner, { body: "x" });
    expect(results.map((r) => [r.token, r.status, r.reason]).sort()).toEqual([
      ["n-1", "no_sender", "no fcm credentials for app OtherApp (push.apps)"],
      ["n2", "no_sender", "no apns-voip credentials for app OyoChat (push.apps)"],
    ]);
    expect(await badgeOf("fcm", "n-1")).toBe(0);
    expect(
      await counter("push_sends_total", { provider: "fcm", outcome: "no_sender", reason: "no_sender" }),
    ).toBe(1);
  });

  it("answers failed when a sender throws", async () => {
    const owner = await user([{ service: "fcm", token: "t-1" }]);
    fcm.throwFor("t-1");
    const [result] = await notifier.toUser(owner, { body: "x" });
    expect(result).toEqual({ service: "fcm", token: "t-1", status: "failed", reason: "sender_error" });
  });

  it("pushes one stored token with toToken", async () => {
    const owner = await user([{ service: "fcm", token: "tt-1" }]);
    const [row] = (await tokensOf(db.pool, owner)) as [TokenRow];
    expect(await notifier.toToken(row, { body: "x" })).toMatchObject({ token: "tt-1", status: "sent" });
  });
});

describe("metrics", () => {
  it("counts each token's outcome by provider and bounded reason, and times each provider call", async () => {
    const owner = await user([
      { service: "fcm", token: "m-1" },
      { service: "fcm", token: "m-2" },
      { service: "apns", token: "m3" },
    ]);
    fcm.script("m-2", { status: "failed", reason: "some long message with token m-2 in it" });
    apns.script("m3", { status: "retry", reason: "ServiceUnavailable" }, { status: "sent" });
    await notifier.toUser(owner, { body: "x" });
    expect(await counter("push_sends_total", { provider: "fcm", outcome: "sent", reason: "none" })).toBe(1);
    expect(await counter("push_sends_total", { provider: "fcm", outcome: "failed", reason: "other" })).toBe(
      1,
    );
    expect(await counter("push_sends_total", { provider: "apns", outcome: "sent", reason: "none" })).toBe(1);
    expect(await counter("push_send_retries_total", { provider: "apns", reason: "ServiceUnavailable" })).toBe(
      1,
    );
    expect(await counter("push_send_duration_seconds_count", { provider: "apns", outcome: "retry" })).toBe(1);
    expect(await counter("push_send_duration_seconds_count", { provider: "fcm", outcome: "sent" })).toBe(1);
    const text = await metrics.metrics();
    expect(text).not.toContain("m-2");
    // a second notifier on the same registry shares the metrics
    expect(() => build()).not.toThrow();
  });
});
