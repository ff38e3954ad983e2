import express from "express";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { createCallers } from "../../callers.ts";
import { buildOpenApiDocument } from "../../openapi/document.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { PushMessage } from "../senders/sender.ts";
import type { TokenRow } from "../token-store.ts";
import { deviceRoutes } from "./routes.ts";

/**
 * The app's device and channel endpoints under /api/v1/notifications, with the real app-caller check (auth
 * core, users in web_users) and database; pushes go to a recording fake Notifier.
 */

const log = pino({ level: "silent" });
const MAX_TOKENS = 3;

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
const CAROL = { node: "+306900000003", domain: "oyo.test", password: "carol pw" }; // a node written with +
const DAVE = { node: "306900000004", domain: "bare.test", password: "dave pw" }; // a domain with no default app
// tries wrong passwords, and so ends up locked out by the brute-force guard: nobody else's tests use it
const MALLORY = { node: "306900000005", domain: "oyo.test", password: "mallory pw" };
type User = typeof ALICE;

/** Records what it is asked to push; answers "sent". */
class RecordingNotifier implements Notifier {
  readonly toTokenCalls: { row: TokenRow; message: PushMessage }[] = [];
  readonly toUserCalls: unknown[] = [];
  async toToken(row: TokenRow, message: PushMessage): Promise<TokenResult> {
    this.toTokenCalls.push({ row, message });
    return { service: row.service, token: row.token, status: "sent", id: "fake-apns-id" };
  }
  toTokens(rows: readonly TokenRow[], message: PushMessage): Promise<TokenResult[]> {
    return Promise.all(rows.map((row) => this.toToken(row, message)));
  }
  async toUser(...args: unknown[]): Promise<TokenResult[]> {
    this.toUserCalls.push(args);
    return [];
  }
}

let db: TestDatabase;
let core: AuthCore;
let server: RunningServer;
let base: string;
const notifier = new RecordingNotifier();

beforeAll(async () => {
  db = await createTestDatabase();
  const credentials = {
    fcm: { serviceAccountFile: "/nonexistent/fcm.json" },
    apns: { bundleId: "com.example.oyo", keyFile: "/nonexistent/key.p8", keyId: "KEY", teamId: "TEAM" },
  };
  const config: Config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 }, "bare.test": { scramIterations: 4096 } },
      push: {
        apps: { OyoChat: credentials, OtherApp: credentials },
        domains: { "oyo.test": { app: "OyoChat" } },
        maxTokensPerUser: MAX_TOKENS,
      },
    },
  });
  for (const u of [ALICE, BOB, CAROL, DAVE, MALLORY]) {
    const domain = config.domains[u.domain];
    if (!domain) throw new Error(`test config lacks ${u.domain}`);
    await addUser(db.pool, u, { cleartext: u.password }, domain);
  }
  core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const callers = createCallers({ core, apiKeys: {} });
  // as app.ts mounts its API: JSON and form parsers in front of the router
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  app.use(
    "/api/v1",
    express.json({ limit: "256kb" }),
    express.urlencoded({ extended: false, limit: "256kb" }),
    routesRouter(deviceRoutes({ pool: db.pool, config, notifier }), {
      base: "/api/v1",
      resolveCaller: callers.resolve,
    }),
  );
  finishApp(app, log);
  server = await startServer(app, { name: "http-utility", host: "127.0.0.1", port: 0, log });
  base = `http://127.0.0.1:${server.port}/api/v1/notifications`;
});

afterAll(async () => {
  await server?.close(100);
  await core?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query("TRUNCATE push_tokens, push_channel_subscriptions, chat_mutes");
  notifier.toTokenCalls.length = 0;
});

const basic = (u: User, password = u.password) =>
  `Basic ${Buffer.from(`${u.node}@${u.domain}:${password}`).toString("base64")}`;

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
}

async function call(path: string, init: RequestInit): Promise<Answer> {
  const r = await fetch(`${base}${path}`, { method: "POST", ...init });
  return { status: r.status, headers: r.headers, body: await r.json() };
}

const post = (u: User | undefined, path: string, body: unknown, password?: string) =>
  call(path, {
    headers: {
      "content-type": "application/json",
      ...(u ? { authorization: basic(u, password) } : {}),
    },
    body: JSON.stringify(body),
  });

const postForm = (u: User, path: string, fields: Record<string, string>) =>
  call(path, {
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(u) },
    body: new URLSearchParams(fields).toString(),
  });

const store = (u: User, token: string, over: Record<string, unknown> = {}) =>
  post(u, "/store_token", { node: u.node, token, service: "fcm", ...over });

interface StoredRow {
  service: string;
  token: string;
  app: string;
  node: string;
  domain: string;
  badge: number;
}

async function rows(u?: User): Promise<StoredRow[]> {
  const r = await db.pool.query<StoredRow>(
    `SELECT service, token, app, domain, node, badge FROM push_tokens
     WHERE ($1::text IS NULL OR (domain = $1 AND node = $2)) ORDER BY updated_at`,
    [u?.domain ?? null, u?.node ?? null],
  );
  return r.rows;
}

async function setBadge(token: string, badge: number) {
  await db.pool.query("UPDATE push_tokens SET badge = $2 WHERE token = $1", [token, badge]);
}

const FCM_TOKEN = "dGVzdC1mY20tdG9rZW4:APA91bH-example_token-0123456789";
const APNS_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

describe("who may call", () => {
  it.each(["/store_token", "/delete_token", "/delete_all_tokens", "/reset_badge", "/channel_subscribe"])(
    "%s answers 401 without credentials and with a wrong password",
    async (path) => {
      const body = { node: MALLORY.node, token: FCM_TOKEN, service: "fcm", channel: "news" };
      const none = await post(undefined, path, body);
      expect(none.status).toBe(401);
      expect(none.body.error.code).toBe("invalid_credentials");
      expect(none.headers.get("www-authenticate")).toMatch(/^Basic/);
      const wrong = await post(MALLORY, path, body, "nope");
      expect(wrong.status).toBe(401);
      expect(await rows()).toEqual([]);
    },
  );
});

describe("POST /store_token", () => {
  it("stores the caller's token under the domain's app, idempotently", async () => {
    const first = await store(ALICE, FCM_TOKEN);
    expect(first).toMatchObject({
      status: 200,
      body: { stored: true, outcome: "new", app: "OyoChat", evicted: 0 },
    });
    const again = await store(ALICE, FCM_TOKEN);
    expect(again.body).toEqual({
      stored: true,
      outcome: "refreshed",
      app: "OyoChat",
      evicted: 0,
    });
    expect(await rows()).toEqual([
      { service: "fcm", token: FCM_TOKEN, app: "OyoChat", domain: "oyo.test", node: ALICE.node, badge: 0 },
    ]);
  });

  it("keeps the badge of a token its owner registers again", async () => {
    await store(ALICE, APNS_TOKEN, { service: "apns" });
    await setBadge(APNS_TOKEN, 3);
    await store(ALICE, APNS_TOKEN, { service: "apns" });
    expect((await rows(ALICE))[0]?.badge).toBe(3);
  });

  it("moves a token registered by another user to the caller with the same install's deviceSecret, badge back to 0", async () => {
    const deviceSecret = "install-secret-0123456789";
    await store(ALICE, APNS_TOKEN, { service: "apns", deviceSecret });
    await setBadge(APNS_TOKEN, 5);
    const refused = await store(BOB, APNS_TOKEN, { service: "apns" });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("token_in_use");
    expect(await rows(ALICE)).toMatchObject([{ token: APNS_TOKEN, badge: 5 }]);
    const moved = await store(BOB, APNS_TOKEN, { service: "apns", deviceSecret });
    // the answer does not tell that the token was somebody's
    expect(moved.body).toEqual({ stored: true, outcome: "new", app: "OyoChat", evicted: 0 });
    expect(await rows(ALICE)).toEqual([]);
    expect(await rows(BOB)).toMatchObject([{ token: APNS_TOKEN, service: "apns", badge: 0 }]);
    // the former owner can no longer reach it
    expect((await post(ALICE, "/delete_token", { node: ALICE.node, token: APNS_TOKEN })).body).toEqual({
      deleted: 0,
    });
  });

  it("keeps at most push.maxTokensPerUser tokens per app, forgetting the oldest", async () => {
    for (const t of ["t1", "t2", "t3"]) expect((await store(ALICE, t)).body.evicted).toBe(0);
    const fourth = await store(ALICE, "t4");
    expect(fourth.body).toMatchObject({ outcome: "new", evicted: 1 });
    expect((await rows(ALICE)).map((r) => r.token)).toEqual(["t2", "t3", "t4"]);
    // another app is counted apart
    expect((await store(ALICE, "o1", { app: "OtherApp" })).body).toMatchObject({
      app: "OtherApp",
      evicted: 0,
    });
    expect((await rows(ALICE)).length).toBe(4);
  });

  it("accepts the msisdn with or without +, and as a JSON number", async () => {
    expect((await store(ALICE, "t-plus", { node: `+${ALICE.node}` })).status).toBe(200);
    expect((await store(ALICE, "t-number", { node: Number(ALICE.node) })).status).toBe(200);
    // a JID written with + no longer logs in at all (one spelling per user, docs/security.md)
    expect((await store(CAROL, "t-carol", { node: "306900000003" })).status).toBe(401);
    expect(await rows(CAROL)).toEqual([]);
    expect((await rows(ALICE)).length).toBe(2);
  });

  it("accepts a form-encoded body", async () => {
    const r = await postForm(ALICE, "/store_token", {
      node: ALICE.node,
      token: APNS_TOKEN,
      service: "apns-voip",
    });
    expect(r).toMatchObject({ status: 200, body: { stored: true, outcome: "new" } });
    expect(await rows(ALICE)).toMatchObject([{ token: APNS_TOKEN, service: "apns-voip" }]);
  });

  it("refuses another user's node with 403 and stores nothing", async () => {
    const r = await store(ALICE, FCM_TOKEN, { node: BOB.node });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("forbidden");
    expect(r.body.error.message).toMatch(/you can only register your own devices/);
    expect(await rows()).toEqual([]);
  });

  it("answers 422 unknown_app for an app without push credentials", async () => {
    const r = await store(ALICE, FCM_TOKEN, { app: "NoSuchApp" });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("unknown_app");
    expect(r.body.error.message).toMatch(/push\.apps/);
  });

  it("answers 422 no_app in a domain without a default app, unless the app is named", async () => {
    const r = await store(DAVE, FCM_TOKEN);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("no_app");
    expect(r.body.error.message).toMatch(/push\.domains\."bare\.test"\.app/);
    expect(await rows()).toEqual([]);
    expect((await store(DAVE, FCM_TOKEN, { app: "OtherApp" })).body).toMatchObject({ app: "OtherApp" });
  });

  it.each([
    ["a missing token", { node: ALICE.node, service: "fcm" }, /^token: is required$/],
    ["a missing node", { token: FCM_TOKEN, service: "fcm" }, /^node: is required$/],
    ["a missing service", { node: ALICE.node, token: FCM_TOKEN }, /^service: is required$/],
    ["a non-ASCII token", { node: ALICE.node, token: "tok\u00e9n", service: "fcm" }, /^token: /],
    [
      "an unknown service",
      { node: ALICE.node, token: FCM_TOKEN, service: "gcm" },
      /^service: must be one of fcm, apns, apns-voip$/,
    ],
    [
      "a token that is a number",
      { node: ALICE.node, token: 12345, service: "fcm" },
      /^token: must be a string/,
    ],
    ["an empty token", { node: ALICE.node, token: "", service: "fcm" }, /^token: /],
    ["a huge token", { node: ALICE.node, token: "x".repeat(4097), service: "fcm" }, /^token: .*4096/],
    [
      "a token with a control character",
      { node: ALICE.node, token: "abc\u0001def", service: "fcm" },
      /^token: .*control characters/,
    ],
    ["a token with a space", { node: ALICE.node, token: "abc def", service: "fcm" }, /^token: /],
    ["a token with a newline", { node: ALICE.node, token: `${FCM_TOKEN}\n`, service: "fcm" }, /^token: /],
    ["a node that is an object", { node: { $ne: "" }, token: FCM_TOKEN, service: "fcm" }, /^node: /],
    ["an app with a slash", { node: ALICE.node, token: FCM_TOKEN, service: "fcm", app: "a/b" }, /^app: /],
  ])("answers 400 invalid_request for %s", async (_what, body, message) => {
    const r = await post(ALICE, "/store_token", body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_request");
    expect(r.body.error.message).toMatch(message);
    expect(await rows()).toEqual([]);
  });

  it("accepts a token of exactly 4096 characters", async () => {
    expect((await store(ALICE, "x".repeat(4096))).status).toBe(200);
  });

  it("answers 400 invalid_body for a body that is not JSON", async () => {
    const r = await call("/store_token", {
      headers: { "content-type": "application/json", authorization: basic(ALICE) },
      body: "{ not json",
    });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_body");
  });

  it("answers 400 for a form field sent twice (it would be an array)", async () => {
    const r = await call("/store_token", {
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(ALICE) },
      body: `node=${ALICE.node}&token=a&token=b&service=fcm`,
    });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^token: /);
  });
});

describe("POST /delete_token and /delete_all_tokens", () => {
  it("delete_token forgets the caller's token only; another user's is not touched", async () => {
    await store(ALICE, "mine");
    await store(BOB, "his");
    expect((await post(ALICE, "/delete_token", { node: ALICE.node, token: "his" })).body).toEqual({
      deleted: 0,
    });
    expect(await rows(BOB)).toMatchObject([{ token: "his" }]);
    expect((await post(ALICE, "/delete_token", { node: ALICE.node, token: "mine" })).body).toEqual({
      deleted: 1,
    });
    expect((await post(ALICE, "/delete_token", { node: ALICE.node, token: "mine" })).body).toEqual({
      deleted: 0,
    });
    expect(await rows(ALICE)).toEqual([]);
  });

  it("delete_token accepts a form and refuses another node with 403", async () => {
    await store(ALICE, "mine");
    expect((await postForm(ALICE, "/delete_token", { node: BOB.node, token: "mine" })).status).toBe(403);
    expect((await postForm(ALICE, "/delete_token", { node: ALICE.node, token: "mine" })).body).toEqual({
      deleted: 1,
    });
  });

  it("delete_all_tokens forgets all the caller's tokens, of every app and service", async () => {
    await store(ALICE, "a1");
    await store(ALICE, "a2", { service: "apns", app: "OtherApp" });
    await store(BOB, "b1");
    expect((await post(ALICE, "/delete_all_tokens", { node: BOB.node })).status).toBe(403);
    expect((await post(ALICE, "/delete_all_tokens", { node: ALICE.node })).body).toEqual({ deleted: 2 });
    expect((await postForm(ALICE, "/delete_all_tokens", { node: ALICE.node })).body).toEqual({ deleted: 0 });
    expect(await rows(BOB)).toMatchObject([{ token: "b1" }]);
  });

  it("answers 400 without node", async () => {
    const r = await post(ALICE, "/delete_all_tokens", {});
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^node: /);
  });
});

describe("POST /reset_badge", () => {
  it("resets an apns token's badge and pushes a silent update with badge 0", async () => {
    await store(ALICE, APNS_TOKEN, { service: "apns" });
    await setBadge(APNS_TOKEN, 8);
    const r = await post(ALICE, "/reset_badge", { token: APNS_TOKEN });
    expect(r).toMatchObject({
      status: 200,
      body: {
        reset: true,
        update: { service: "apns", token: APNS_TOKEN, status: "sent", id: "fake-apns-id" },
      },
    });
    expect((await rows(ALICE))[0]?.badge).toBe(0);
    expect(notifier.toTokenCalls).toEqual([
      {
        row: {
          service: "apns",
          token: APNS_TOKEN,
          app: "OyoChat",
          domain: "oyo.test",
          node: ALICE.node,
          badge: 0,
        },
        message: { silent: true, badge: 0 },
      },
    ]);
  });

  it("resets an fcm (or apns-voip) token's count without pushing", async () => {
    await store(ALICE, FCM_TOKEN);
    await store(ALICE, APNS_TOKEN, { service: "apns-voip" });
    await setBadge(FCM_TOKEN, 2);
    await setBadge(APNS_TOKEN, 2);
    expect((await post(ALICE, "/reset_badge", { token: FCM_TOKEN })).body).toEqual({
      reset: true,
      update: null,
    });
    expect((await postForm(ALICE, "/reset_badge", { token: APNS_TOKEN })).body).toEqual({
      reset: true,
      update: null,
    });
    expect((await rows(ALICE)).map((r) => r.badge)).toEqual([0, 0]);
    expect(notifier.toTokenCalls).toEqual([]);
  });

  it("answers 404 for a token the caller does not own, touching nothing", async () => {
    await store(BOB, APNS_TOKEN, { service: "apns" });
    await setBadge(APNS_TOKEN, 4);
    const r = await post(ALICE, "/reset_badge", { token: APNS_TOKEN });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("not_found");
    expect((await post(ALICE, "/reset_badge", { token: "never-registered" })).status).toBe(404);
    expect((await rows(BOB))[0]?.badge).toBe(4);
    expect(notifier.toTokenCalls).toEqual([]);
  });

  it("checks node when it is given, and wants a token", async () => {
    await store(ALICE, APNS_TOKEN, { service: "apns" });
    expect((await post(ALICE, "/reset_badge", { node: BOB.node, token: APNS_TOKEN })).status).toBe(403);
    expect((await post(ALICE, "/reset_badge", { node: ALICE.node, token: APNS_TOKEN })).status).toBe(200);
    const missing = await post(ALICE, "/reset_badge", {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/^token: /);
  });
});

describe("POST /mute and /unmute, GET /mutes", () => {
  const mutes = async (u: User): Promise<Answer> => {
    const r = await fetch(`${base}/mutes`, { headers: { authorization: basic(u) } });
    return { status: r.status, headers: r.headers, body: await r.json() };
  };

  it("mutes a chat for some minutes or until unmuted, lists the caller's own, unmutes", async () => {
    const forever = await post(ALICE, "/mute", { peer: "Bob@Oyo.Test" });
    expect(forever).toMatchObject({ status: 200, body: { peer: "bob@oyo.test", until: null } });
    const before = Date.now();
    const hour = await postForm(ALICE, "/mute", { peer: "carol@oyo.test", minutes: "60" });
    expect(hour.status).toBe(200);
    const until = Date.parse(hour.body.until);
    expect(until - before).toBeGreaterThan(59 * 60_000);
    expect(until - before).toBeLessThan(61 * 60_000);
    expect((await mutes(ALICE)).body.mutes.map((m: { peer: string }) => m.peer)).toEqual([
      "bob@oyo.test",
      "carol@oyo.test",
    ]);
    // another user sees only theirs
    expect((await mutes(BOB)).body).toEqual({ mutes: [] });
    expect((await post(ALICE, "/unmute", { peer: "bob@oyo.test" })).body).toEqual({ unmuted: true });
    expect((await post(ALICE, "/unmute", { peer: "bob@oyo.test" })).body).toEqual({ unmuted: false });
    expect((await mutes(ALICE)).body.mutes).toHaveLength(1);
  });

  it("refuses a peer that is no JID, minutes out of range, and a caller without credentials", async () => {
    for (const body of [
      { peer: "bob" },
      { peer: "bob@oyo.test", minutes: 0 },
      { peer: "bob@oyo.test", minutes: 1.5 },
      {},
    ]) {
      const r = await post(ALICE, "/mute", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
    }
    expect((await post(undefined, "/mute", { peer: "bob@oyo.test" })).status).toBe(401);
    expect((await mutes(ALICE)).body.mutes.some((m: { peer: string }) => m.peer === "bob")).toBe(false);
  });
});

describe("POST /channel_subscribe and /channel_unsubscribe", () => {
  const subs = async () =>
    (await db.pool.query("SELECT domain, channel, node FROM push_channel_subscriptions ORDER BY node")).rows;

  it("subscribes and unsubscribes idempotently, answering whether anything changed", async () => {
    const body = { node: ALICE.node, channel: "news/sports:eu-1.x_y", domain: ALICE.domain };
    expect((await post(ALICE, "/channel_subscribe", body)).body).toEqual({ subscribed: true });
    expect((await post(ALICE, "/channel_subscribe", body)).body).toEqual({ subscribed: false });
    expect(await subs()).toEqual([{ domain: "oyo.test", channel: "news/sports:eu-1.x_y", node: ALICE.node }]);
    expect((await post(ALICE, "/channel_unsubscribe", body)).body).toEqual({ unsubscribed: true });
    expect((await post(ALICE, "/channel_unsubscribe", body)).body).toEqual({ unsubscribed: false });
    expect(await subs()).toEqual([]);
  });

  it("accepts forms, a domain in any case, or no domain at all", async () => {
    const form = { node: ALICE.node, channel: "alerts", domain: "OYO.TEST" };
    expect((await postForm(ALICE, "/channel_subscribe", form)).body).toEqual({ subscribed: true });
    expect((await post(BOB, "/channel_subscribe", { node: BOB.node, channel: "alerts" })).body).toEqual({
      subscribed: true,
    });
    expect(await subs()).toEqual([
      { domain: "oyo.test", channel: "alerts", node: ALICE.node },
      { domain: "oyo.test", channel: "alerts", node: BOB.node },
    ]);
    expect((await postForm(ALICE, "/channel_unsubscribe", form)).body).toEqual({ unsubscribed: true });
  });

  it.each(["/channel_subscribe", "/channel_unsubscribe"])(
    "%s answers 403 for another node or another domain",
    async (path) => {
      const other = await post(ALICE, path, { node: BOB.node, channel: "news", domain: ALICE.domain });
      expect(other.status).toBe(403);
      const elsewhere = await post(ALICE, path, { node: ALICE.node, channel: "news", domain: "bare.test" });
      expect(elsewhere.status).toBe(403);
      expect(elsewhere.body.error).toMatchObject({ code: "forbidden" });
      expect(await subs()).toEqual([]);
    },
  );

  it.each([
    ["a missing channel", { node: ALICE.node }, /^channel: /],
    ["an empty channel", { node: ALICE.node, channel: "" }, /^channel: /],
    ["a channel with a space", { node: ALICE.node, channel: "a b" }, /^channel: /],
    ["a channel with a control character", { node: ALICE.node, channel: "a\u0000b" }, /^channel: /],
    ["a 201-character channel", { node: ALICE.node, channel: "c".repeat(201) }, /^channel: .*200/],
    ["a channel that is a number", { node: ALICE.node, channel: 7 }, /^channel: /],
    ["a malformed domain", { node: ALICE.node, channel: "news", domain: "oyo test" }, /^domain: /],
  ])("answers 400 for %s", async (_what, body, message) => {
    const r = await post(ALICE, "/channel_subscribe", body);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(message);
  });
});

describe("OpenAPI", () => {
  const routes = () =>
    deviceRoutes({
      pool: db.pool,
      config: { push: { apps: {}, domains: {} } } as unknown as Config,
      notifier,
    });
  const group = () => [{ name: "notifications", description: "", routes: routes() }];

  it("describes every route of the router, and only those", () => {
    const router = routesRouter(routes(), {
      base: "/api/v1",
      resolveCaller: createCallers({ core, apiKeys: {} }).resolve,
    });
    const mounted = router.stack.flatMap((layer) =>
      layer.route
        ? Object.keys((layer.route as unknown as { methods: object }).methods).map(
            (m) => `${m} /api/v1${layer.route?.path}`,
          )
        : [],
    );
    const described = Object.entries(buildOpenApiDocument(group()).paths ?? {}).flatMap(([path, item]) =>
      Object.keys(item ?? {}).map((m) => `${m} ${path}`),
    );
    expect(described.sort()).toEqual(mounted.sort());
  });

  it("is in the service's document, with the common answers", () => {
    const doc = buildOpenApiDocument(group());
    const op = doc.paths?.["/api/v1/notifications/store_token"]?.post;
    expect(op?.responses?.["401"]).toBeDefined();
    expect(Object.keys(op?.requestBody && "content" in op.requestBody ? op.requestBody.content : {})).toEqual(
      ["application/json", "application/x-www-form-urlencoded"],
    );
  });
});
