import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { sha256 } from "../../../../test/support/bytes.ts";
import type { TestDatabase } from "../../../../test/support/database.ts";
import { type FakeApns, type FakeApnsAnswer, startFakeApns } from "../../../../test/support/fake-apns.ts";
import { type FakeFcm, fcmAnswers, refuseDns, startFakeFcm } from "../../../../test/support/fake-fcm.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import { createHttpUtilityInternalApp } from "../app.ts";
import { createPushDeps } from "./deps.ts";

/**
 * The whole push stack as the service composes it (createPushDeps with workers): the HTTP routes, the
 * notifier, pg-boss broadcasts, the real FCM and APNs senders (push/senders/), against the local APNs and
 * FCM (test/support/fake-apns.ts, fake-fcm.ts) and a real database. What the API answers and exactly what
 * reaches the providers; no name is looked up beyond loopback.
 */

const log = pino({ level: "silent" });
const DOMAIN = "oyo.test";
const BUNDLE = "com.oyo.chat";
const PROJECT = "oyo-chat";
const KEY_ID = "KEY1234567";
const TEAM_ID = "TEAM987654";
const SERVER_KEY = "sk_test_pushstack_0123456789";
const CHANNEL = "news/oyo";

const user = (n: number) => ({
  node: `3069000000${String(n).padStart(2, "0")}`,
  domain: DOMAIN,
  password: `pw ${n}`,
});
type User = ReturnType<typeof user>;
const ALICE = user(1); // send, badges, reset_badge
const BOB = user(2); // dead tokens
const CAROL = user(3); // a retried 503
const DAVE = user(4); // MongoosePush
const ERIN = user(5); // receiver of the chat hook
const AUTHOR = user(6);
const SUBSCRIBERS = [user(7), user(8), user(9)];

/** An APNs device token (64 hex digits), distinct per n; an FCM registration token likewise. */
const apnsToken = (n: number) => `a1b2c3${n.toString(16).padStart(58, "0")}`;
const fcmToken = (n: number) => `fcm${n}:APA91b${"x".repeat(120)}`;

let dir: string;
let dns: ReturnType<typeof refuseDns>;
let apns: FakeApns;
let fcm: FakeFcm;
let app: HttpUtilityTestApp;
let db: TestDatabase;
let internal: RunningServer;
let base: string;
let internalBase: string;

beforeAll(async () => {
  dns = refuseDns();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-push-stack-"));
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyFile = path.join(dir, `AuthKey_${KEY_ID}.p8`);
  await writeFile(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
  apns = await startFakeApns({ tokenKeys: [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey }] });
  fcm = await startFakeFcm();
  const account = await fcm.addServiceAccount(path.join(dir, "oyo-chat.json"), PROJECT);

  app = await startHttpUtilityApp({
    log,
    overrides: {
      domains: { [DOMAIN]: { scramIterations: 4096 } },
      services: {
        httpUtility: {
          apiKeys: { backend: { sha256: sha256(SERVER_KEY), scopes: ["push", "broadcast"] } },
        },
      },
      push: {
        apps: {
          OyoChat: {
            fcm: { serviceAccountFile: account.file },
            apns: { bundleId: BUNDLE, keyFile, keyId: KEY_ID, teamId: TEAM_ID },
          },
        },
        domains: { [DOMAIN]: { app: "OyoChat" } },
        retry: { attempts: 3, initialMs: 10, maxMs: 200 },
      },
    },
    users: [ALICE, BOB, CAROL, DAVE, ERIN, AUTHOR, ...SUBSCRIBERS],
    push: ({ config, db, metrics }) =>
      createPushDeps(
        { config, log, pool: db.pool },
        {
          metrics: metrics.registry,
          endpoints: {
            fcmAgent: fcm.agent(),
            apnsEndpoint: { address: "127.0.0.1", port: apns.port, ca: apns.ca },
          },
          workers: true,
        },
      ),
  });
  db = app.db;
  base = app.base;
  const { config, push } = app.deps;
  internal = await startServer(createHttpUtilityInternalApp({ config, log, pool: db.pool, push }), {
    name: "http-utility (internal)",
    host: "127.0.0.1",
    port: 0,
    log,
  });
  internalBase = `http://127.0.0.1:${internal.port}`;
});

afterAll(async () => {
  await internal?.close(100);
  await app?.close();
  await apns?.close();
  await fcm?.close();
  dns?.restore();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
}

async function call(
  method: string,
  url: string,
  o: { auth?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.auth) headers.authorization = o.auth;
  let body: string | undefined;
  if (o.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(o.json);
  } else if (o.raw !== undefined) {
    body = o.raw;
  }
  // MongooseIM's endpoints are served on the internal listener only, as main.ts serves them
  const mongooseIm = /^\/(v2|v3)\/notification\/|^\/api\/v1\/mongooseim\//.test(url);
  const r = await fetch(`${mongooseIm ? internalBase : base}${url}`, {
    method,
    headers,
    ...(body !== undefined && { body }),
  });
  const text = await r.text();
  return { status: r.status, body: text === "" ? undefined : JSON.parse(text) };
}

const basic = (u: User) => `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`;
const bearer = `Bearer ${SERVER_KEY}`;

const storeToken = (u: User, service: "apns" | "fcm", token: string) =>
  call("POST", "/api/v1/notifications/store_token", {
    auth: basic(u),
    json: { node: u.node, token, service },
  });

const send = (u: User, message: Record<string, unknown>) =>
  call("POST", "/api/v1/notifications/send", {
    auth: bearer,
    json: { node: u.node, domain: DOMAIN, ...message },
  });

/** What the fakes received for a token. */
const apnsGot = (token: string) => apns.requests.filter((r) => r.token === token);
const fcmGot = (token: string) => fcm.sends().filter((s) => s.message.token === token);

const badgeOf = (request: { body: unknown } | undefined) =>
  (request?.body as { aps?: { badge?: number } } | undefined)?.aps?.badge;

/**
 * The local APNs answers `answer` to the first request for `token` only, 200 to the next ones. The fake
 * scripts a token for good, and records each request before looking its answer up: the second request's
 * record is where the script is lifted, with no timing involved.
 */
function answerApnsOnce(fake: FakeApns, token: string, answer: FakeApnsAnswer): void {
  fake.script(token, answer);
  const requests = fake.requests;
  const push = requests.push.bind(requests);
  let seen = 0;
  requests.push = (...items) => {
    for (const item of items) {
      if (item.token === token && ++seen === 2) fake.script(token, { status: 200 });
    }
    return push(...items);
  };
}

async function storedTokens(u: User): Promise<string[]> {
  const { rows } = await db.pool.query<{ token: string }>(
    "SELECT token FROM push_tokens WHERE domain = $1 AND node = $2 ORDER BY token",
    [u.domain, u.node],
  );
  return rows.map((r) => r.token);
}

describe("send to a user's devices", () => {
  const iphone = apnsToken(1);
  const android = fcmToken(1);
  const message = { title: "Maria", body: "Are you coming?", data: { chat: "42" }, sound: "ping.caf" };

  it("pushes an alert to APNs and a notification to FCM, counting the badge per device", async () => {
    expect(await storeToken(ALICE, "apns", iphone)).toMatchObject({
      status: 200,
      body: { stored: true, outcome: "new", app: "OyoChat" },
    });
    expect((await storeToken(ALICE, "fcm", android)).status).toBe(200);

    const first = await send(ALICE, message);
    expect(first.status).toBe(200);
    const id = first.body.id as string;
    expect(first.body.results).toHaveLength(2);
    expect(first.body.results).toEqual(
      expect.arrayContaining([
        { service: "apns", token: iphone, status: "sent", id: expect.any(String) },
        {
          service: "fcm",
          token: android,
          status: "sent",
          id: expect.stringMatching(/^projects\/oyo-chat\//),
        },
      ]),
    );

    const [toIphone] = apnsGot(iphone);
    expect(apnsGot(iphone)).toHaveLength(1);
    expect(toIphone?.auth).toEqual({ kind: "token", keyId: KEY_ID, teamId: TEAM_ID });
    expect(toIphone?.headers).toMatchObject({
      "apns-topic": BUNDLE,
      "apns-push-type": "alert",
      "apns-priority": "10",
    });
    expect(toIphone?.body).toEqual({
      chat: "42",
      notificationId: id,
      aps: { alert: { title: "Maria", body: "Are you coming?" }, badge: 1, sound: "ping.caf" },
    });

    expect(fcmGot(android)).toEqual([
      {
        message: {
          token: android,
          notification: { title: "Maria", body: "Are you coming?" },
          data: { chat: "42", notificationId: id },
          android: { notification: { sound: "ping.caf", notification_count: 1 } },
          apns: { headers: { "apns-push-type": "alert" }, payload: { aps: { badge: 1, sound: "ping.caf" } } },
        },
      },
    ]);
  });

  it("shows one more on the badge with the next send", async () => {
    const second = await send(ALICE, message);
    expect(second.status).toBe(200);
    expect(second.body.results.map((r: { status: string }) => r.status)).toEqual(["sent", "sent"]);
    expect(apnsGot(iphone).map(badgeOf)).toEqual([1, 2]);
    const counts = fcmGot(android).map(
      (s) =>
        (s.message.android as { notification: { notification_count: number } }).notification
          .notification_count,
    );
    expect(counts).toEqual([1, 2]);
  });

  it("resets the badge with a silent background push carrying badge 0", async () => {
    const before = apnsGot(iphone).length;
    const r = await call("POST", "/api/v1/notifications/reset_badge", {
      auth: basic(ALICE),
      json: { token: iphone },
    });
    expect(r).toMatchObject({
      status: 200,
      body: { reset: true, update: { service: "apns", token: iphone, status: "sent" } },
    });
    const updates = apnsGot(iphone).slice(before);
    expect(updates).toHaveLength(1);
    expect(updates[0]?.headers).toMatchObject({
      "apns-topic": BUNDLE,
      "apns-push-type": "background",
      "apns-priority": "5",
    });
    expect(updates[0]?.body).toEqual({ aps: { "content-available": 1, badge: 0 } });
    // the next alert counts from 0 again
    await send(ALICE, message);
    expect(badgeOf(apnsGot(iphone).at(-1))).toBe(1);
  });
});

describe("dead tokens and retries", () => {
  it("forgets the tokens APNs (410 Unregistered) and FCM (UNREGISTERED) say are gone", async () => {
    const iphone = apnsToken(2);
    const android = fcmToken(2);
    await storeToken(BOB, "apns", iphone);
    await storeToken(BOB, "fcm", android);
    apns.script(iphone, { status: 410, reason: "Unregistered" });
    fcm.script(android, fcmAnswers.unregistered());

    const r = await send(BOB, { title: "Hello" });
    expect(r.status).toBe(200);
    expect(r.body.results).toEqual(
      expect.arrayContaining([
        { service: "apns", token: iphone, status: "dead_token", reason: "Unregistered" },
        { service: "fcm", token: android, status: "dead_token", reason: "UNREGISTERED" },
      ]),
    );
    expect(apnsGot(iphone)).toHaveLength(1);
    expect(fcmGot(android)).toHaveLength(1);
    expect(await storedTokens(BOB)).toEqual([]);

    const again = await send(BOB, { title: "Hello?" });
    expect(again).toMatchObject({ status: 404, body: { error: { code: "no_tokens" } } });
    expect(apnsGot(iphone)).toHaveLength(1);
    expect(fcmGot(android)).toHaveLength(1);
  });

  it("retries a 503 from APNs and answers sent", async () => {
    const iphone = apnsToken(3);
    await storeToken(CAROL, "apns", iphone);
    answerApnsOnce(apns, iphone, { status: 503, reason: "ServiceUnavailable" });

    const r = await send(CAROL, { body: "try again" });
    expect(r.status).toBe(200);
    expect(r.body.results).toEqual([
      { service: "apns", token: iphone, status: "sent", id: expect.any(String) },
    ]);
    const tries = apnsGot(iphone);
    expect(tries).toHaveLength(2);
    expect(tries[1]?.body).toEqual(tries[0]?.body);
  });
});

describe("MongooseIM", () => {
  it("pushes a 6.x MongoosePush body to a stored APNs token, answering 200 null", async () => {
    const iphone = apnsToken(4);
    await storeToken(DAVE, "apns", iphone);
    const before = Math.floor(Date.now() / 1000);
    const r = await call("POST", `/v3/notification/${iphone}`, {
      json: {
        service: "apns",
        mode: "prod",
        time_to_live: "3600",
        mutable_content: "true",
        alert: { title: "alice", body: "hi there", sound: "default" },
        data: { "message-count": 1 },
      },
    });
    const after = Math.floor(Date.now() / 1000);
    expect(r).toEqual({ status: 200, body: null });

    const got = apnsGot(iphone);
    expect(got).toHaveLength(1);
    expect(got[0]?.headers).toMatchObject({ "apns-topic": BUNDLE, "apns-push-type": "alert" });
    const expiration = Number(got[0]?.headers["apns-expiration"]);
    expect(expiration).toBeGreaterThanOrEqual(before + 3600);
    expect(expiration).toBeLessThanOrEqual(after + 3600);
    expect(got[0]?.body).toEqual({
      "message-count": "1",
      aps: { alert: { title: "alice", body: "hi there" }, badge: 1, sound: "default", "mutable-content": 1 },
    });
  });

  it("answers 410 unregistered when APNs says the device is gone, and forgets it", async () => {
    const iphone = apnsToken(5);
    await storeToken(DAVE, "apns", iphone);
    apns.script(iphone, { status: 410, reason: "Unregistered" });
    const r = await call("POST", `/v3/notification/${iphone}`, {
      json: { service: "apns", mode: "prod", alert: { title: "alice", body: "hi" } },
    });
    expect(r).toEqual({ status: 410, body: { reason: "unregistered" } });
    expect(apnsGot(iphone)).toHaveLength(1);
    expect(await storedTokens(DAVE)).toEqual([apnsToken(4)]);
  });

  it("answers the 2.1.0 chat hook at once and pushes the whole message to the receiver's FCM device", async () => {
    const android = fcmToken(5);
    await storeToken(ERIN, "fcm", android);
    const text = "Tom & Jerry: x=1 & y=2, see you";
    const r = await call("POST", "/api/v1/mongooseim/messages", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      raw: `author=${AUTHOR.node}&server=${DOMAIN}&receiver=${ERIN.node}&message=${text}`,
    });
    expect(r).toEqual({ status: 204, body: undefined });

    await vi.waitFor(() => expect(fcmGot(android)).toHaveLength(1), { timeout: 5000 });
    const from = `${AUTHOR.node}@${DOMAIN}`;
    expect(fcmGot(android)[0]?.message).toMatchObject({
      token: android,
      notification: { title: AUTHOR.node, body: text },
      data: { type: "chat", from },
      android: { collapse_key: from, notification: { tag: from, notification_count: 1 } },
    });
  });
});

describe("channel broadcast", () => {
  it("pushes once to every subscriber's device and reports done", async () => {
    const tokens = [
      { u: SUBSCRIBERS[0] as User, service: "apns" as const, token: apnsToken(7) },
      { u: SUBSCRIBERS[1] as User, service: "fcm" as const, token: fcmToken(8) },
      { u: SUBSCRIBERS[2] as User, service: "apns" as const, token: apnsToken(9) },
    ];
    for (const { u, service, token } of tokens) {
      expect((await storeToken(u, service, token)).status).toBe(200);
      const sub = await call("POST", "/api/v1/notifications/channel_subscribe", {
        auth: basic(u),
        json: { node: u.node, channel: CHANNEL },
      });
      expect(sub).toEqual({ status: 200, body: { subscribed: true } });
    }

    const queued = await call("POST", "/api/v1/notifications/channel_broadcast", {
      auth: bearer,
      json: { domain: DOMAIN, channel: CHANNEL, title: "News", body: "Oyo 2.0 is out" },
    });
    expect(queued).toMatchObject({ status: 202, body: { status: "queued" } });
    const id = queued.body.id as string;

    const progress = await vi.waitFor(
      async () => {
        const p = await call("GET", `/api/v1/notifications/channel_broadcast/${id}`, { auth: bearer });
        expect(p.body.state).toBe("done");
        return p;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(progress).toMatchObject({
      status: 200,
      body: { id, domain: DOMAIN, channel: CHANNEL, state: "done", total: 3, sent: 3, dead: 0, failed: 0 },
    });

    for (const { service, token } of tokens) {
      if (service === "apns") {
        expect(apnsGot(token), token).toHaveLength(1);
        expect(apnsGot(token)[0]?.body).toEqual({
          broadcastId: id,
          aps: { alert: { title: "News", body: "Oyo 2.0 is out" }, badge: 1 },
        });
        expect(fcmGot(token)).toHaveLength(0);
      } else {
        expect(fcmGot(token), token).toHaveLength(1);
        expect(fcmGot(token)[0]?.message).toMatchObject({
          notification: { title: "News", body: "Oyo 2.0 is out" },
          data: { broadcastId: id },
        });
        expect(apnsGot(token)).toHaveLength(0);
      }
    }
  });

  it("looked up no name beyond loopback", () => {
    expect(dns.lookups).toEqual([]);
  });
});
