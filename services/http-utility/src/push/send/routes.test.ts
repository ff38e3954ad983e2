import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { PgBoss } from "pg-boss";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { sha256 } from "../../../../../test/support/bytes.ts";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { eventually } from "../../../../../test/support/eventually.ts";
import { ScriptedPushSender, sendersOf } from "../../../../../test/support/scripted-push-sender.ts";
import { createCallers } from "../../callers.ts";
import { createJobQueue } from "../jobs.ts";
import { createRelay, type Relay } from "../mongooseim/relay.ts";
import { createNotifier } from "../notifier.ts";
import type { PushService } from "../senders/sender.ts";
import { storeToken, subscribe } from "../token-store.ts";
import { type Broadcasts, createBroadcasts } from "./broadcast.ts";
import { sendRoutes } from "./routes.ts";

/**
 * send, channel_broadcast, replies and resolves through HTTP, with the real callers (API keys with scopes,
 * users' passwords), the real notifier, broadcasts and relay on pg-boss, a real database, scripted
 * senders, and a local server standing for the callback URLs.
 */

const log = pino({ level: "silent" });
const PUSH_KEY = "sk_test_pusher_0123456789";
const BROADCAST_KEY = "sk_test_broadcaster_0123456789";

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
type User = typeof ALICE;

let db: TestDatabase;
let core: AuthCore;
let boss: PgBoss;
let broadcasts: Broadcasts;
let relay: Relay;
let server: RunningServer;
let base: string;
let fcm: ScriptedPushSender;
let apns: ScriptedPushSender;
let callbacks: Awaited<ReturnType<typeof callbackServer>>;
let devices = 0;

/** Records what callback URLs receive; answers 200. */
async function callbackServer() {
  const received: { path: string; body: unknown }[] = [];
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(200).end();
    });
  });
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    received: (path: string) => received.filter((r) => r.path === path).map((r) => r.body),
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const config: Config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 } },
      // the callback server of these tests is on loopback: listed, as an operator lists an internal target
      push: { relay: { allowTargets: ["127.0.0.1"] } },
      services: {
        httpUtility: {
          apiKeys: {
            pusher: { sha256: sha256(PUSH_KEY), scopes: ["push"] },
            broadcaster: { sha256: sha256(BROADCAST_KEY), scopes: ["broadcast"] },
          },
        },
      },
    },
  });
  for (const u of [ALICE, BOB]) {
    await addUser(
      db.pool,
      u,
      { cleartext: u.password },
      config.domains[u.domain] as Config["domains"][string],
    );
  }
  core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  callbacks = await callbackServer();

  fcm = new ScriptedPushSender("fcm");
  apns = new ScriptedPushSender("apns");
  const notifier = createNotifier({
    pool: db.pool,
    senders: sendersOf({ OyoChat: [fcm, apns] }),
    retry: { attempts: 2, initialMs: 10, maxMs: 100 },
    log,
    metrics: new Registry(),
    sleep: async () => {},
  });
  boss = createJobQueue({ pool: db.pool, log });
  await boss.start();
  broadcasts = createBroadcasts({
    pool: db.pool,
    boss,
    notifier,
    log,
    concurrency: 1,
    options: { batchSize: 2, pollingIntervalSeconds: 0.5 },
  });
  relay = createRelay({
    boss,
    log,
    relay: { attempts: 2, timeoutMs: 1000, allowTargets: ["127.0.0.1"] },
    buddiesUrl: callbacks.url,
    hookKey: "bk_hook",
    retryDelaySeconds: 1,
    pollingIntervalSeconds: 0.5,
  });
  await broadcasts.start();
  await relay.start();

  const callers = createCallers({ core, apiKeys: config.services.httpUtility.apiKeys });
  const deps = { pool: db.pool, notifier, broadcasts, relay };
  const mount = { base: "/api/v1", resolveCaller: callers.resolve };
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  const parsers = [express.json(), express.urlencoded({ extended: false })];
  // config/test.json serves `localhost` too: two domains
  const routes = sendRoutes({ ...deps, config });
  const atRoot = routes.filter((r) => !r.path.startsWith("/api/v1/"));
  app.use(
    "/api/v1",
    ...parsers,
    routesRouter(
      routes.filter((r) => !atRoot.includes(r)),
      mount,
    ),
  );
  // the legacy root paths, mounted at the root as app.ts does
  app.use(
    atRoot.map((r) => r.path),
    ...parsers,
  );
  app.use(routesRouter(atRoot, { resolveCaller: callers.resolve }));
  app.use(
    "/single/api/v1",
    ...parsers,
    routesRouter(
      sendRoutes({
        ...deps,
        config: {
          domains: { "oyo.test": config.domains["oyo.test"] as Config["domains"][string] },
          push: config.push,
        },
      }).filter((r) => r.path.startsWith("/api/v1/")),
      mount,
    ),
  );
  finishApp(app, log);
  server = await startServer(app, { name: "http-utility", host: "127.0.0.1", port: 0, log });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.close(100);
  await broadcasts?.stop();
  await relay?.stop();
  await boss?.stop({ graceful: false });
  await core?.close();
  await callbacks?.close();
  await db?.drop();
});

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
}

async function call(
  method: string,
  path: string,
  auth: string | undefined,
  body?: Record<string, unknown> | URLSearchParams,
  prefix = "/api/v1/notifications",
): Promise<Answer> {
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  let payload: string | URLSearchParams | undefined;
  if (body instanceof URLSearchParams) payload = body;
  else if (body) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(`${base}${prefix}${path}`, { method, headers, ...(payload && { body: payload }) });
  return { status: r.status, body: await r.json() };
}

const bearer = (key: string) => `Bearer ${key}`;
const basic = (u: User) => `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`;
const send = (body: Record<string, unknown> | URLSearchParams, key = PUSH_KEY) =>
  call("POST", "/send", bearer(key), body);

/** A new user of oyo.test with these devices. */
async function userWith(...services: PushService[]): Promise<{ node: string; tokens: string[] }> {
  const node = `3069100${String(++devices).padStart(5, "0")}`;
  const tokens: string[] = [];
  for (const service of services) {
    const token = service === "fcm" ? `fcm-${node}-${tokens.length}` : `abcdef${node}${tokens.length}`;
    await storeToken(db.pool, { domain: "oyo.test", node, service, token, app: "OyoChat" }, 10);
    tokens.push(token);
  }
  return { node, tokens };
}

async function notificationRow(id: string) {
  const r = await db.pool.query("SELECT domain, node, origin FROM push_notifications WHERE id = $1", [id]);
  return r.rows[0];
}

describe("POST /send", () => {
  it("pushes to each of the user's devices and answers per token, recording the notification and its origin", async () => {
    const { node, tokens } = await userWith("fcm", "apns");
    const [f, a] = tokens as [string, string];
    const callbackUrl = `${callbacks.url}/alerts?x=1`;
    const r = await send({
      node,
      domain: "oyo.test",
      title: "Alarm",
      body: "Disk full",
      data: { host: "db1" },
      callbackUrl,
    });
    expect(r.status).toBe(200);
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.results).toHaveLength(2);
    expect(r.body.results).toEqual(
      expect.arrayContaining([
        { service: "fcm", token: f, status: "sent", id: expect.any(String) },
        { service: "apns", token: a, status: "sent", id: expect.any(String) },
      ]),
    );
    expect(fcm.pushesTo(f)).toEqual([
      { title: "Alarm", body: "Disk full", data: { host: "db1", notificationId: r.body.id }, badge: 1 },
    ]);
    expect(await notificationRow(r.body.id)).toEqual({
      domain: "oyo.test",
      node,
      origin: { kind: "url", url: callbackUrl },
    });
  });

  it("takes a form: numbers, booleans and data as text; all the delivery fields", async () => {
    const { node, tokens } = await userWith("apns");
    const form = new URLSearchParams({
      node,
      domain: "oyo.test",
      body: "hello",
      data: JSON.stringify({ chat: "42", n: 7 }),
      badge: "3",
      sound: "default",
      silent: "false",
      collapseKey: "chat-42",
      threadId: "chat-42",
      ttl: "3600",
      priority: "normal",
      category: "MESSAGE",
      buddy: "Zabbix@oyo.test",
    });
    const r = await send(form);
    expect(r.status).toBe(200);
    expect(apns.pushesTo(tokens[0] as string)).toEqual([
      {
        body: "hello",
        data: { chat: "42", n: "7", notificationId: r.body.id },
        badge: 3,
        sound: "default",
        silent: false,
        collapseKey: "chat-42",
        threadId: "chat-42",
        ttlSeconds: 3600,
        priority: "normal",
        category: "MESSAGE",
      },
    ]);
    expect((await notificationRow(r.body.id)).origin).toEqual({ kind: "buddy", jid: "zabbix@oyo.test" });
  });

  it("pushes to the node exactly as written: `+X` and `X` are two accounts, neither falls back to the other", async () => {
    const plus = `+3069200${String(++devices).padStart(5, "0")}`;
    await storeToken(
      db.pool,
      { domain: "oyo.test", node: plus, service: "fcm", token: `fcm-${plus}`, app: "OyoChat" },
      10,
    );
    const bare = await send({ node: plus.slice(1), domain: "oyo.test", body: "x" });
    expect(bare.status).toBe(404);
    expect(bare.body.error.code).toBe("no_tokens");
    expect(fcm.pushesTo(`fcm-${plus}`)).toEqual([]);
    const r = await send({ node: plus, domain: "oyo.test", body: "x" });
    expect(r.status).toBe(200);
    expect((await notificationRow(r.body.id)).node).toBe(plus);
    const { node, tokens } = await userWith("fcm");
    const plused = await send({ node: `+${node}`, domain: "oyo.test", body: "x" });
    expect(plused.status).toBe(404);
    expect(fcm.pushesTo(tokens[0] as string)).toEqual([]);
  });

  it("pushes to the one device named by token", async () => {
    const { node, tokens } = await userWith("fcm", "fcm");
    const r = await send({ node, domain: "oyo.test", body: "x", token: tokens[1] });
    expect(r.body.results.map((t: { token: string }) => t.token)).toEqual([tokens[1]]);
    expect(fcm.pushesTo(tokens[0] as string)).toEqual([]);
  });

  it("answers 404 no_tokens for a user without devices (or without that one), recording nothing", async () => {
    const before = (await db.pool.query("SELECT count(*)::int AS n FROM push_notifications")).rows[0].n;
    const none = await send({ node: "306999999999", domain: "oyo.test", body: "x" });
    expect(none.status).toBe(404);
    expect(none.body.error.code).toBe("no_tokens");
    const { node } = await userWith("fcm");
    const other = await send({ node, domain: "oyo.test", body: "x", token: "not-this-users" });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe("no_tokens");
    expect((await db.pool.query("SELECT count(*)::int AS n FROM push_notifications")).rows[0].n).toBe(before);
  });

  it("answers dead, failed and given-up tokens as such, forgetting the dead", async () => {
    const { node, tokens } = await userWith("fcm", "fcm", "apns");
    const [dead, busy, fine] = tokens as [string, string, string];
    fcm.script(dead, { status: "dead_token", reason: "UNREGISTERED" });
    fcm.script(busy, { status: "retry", reason: "UNAVAILABLE" });
    const r = await send({ node, domain: "oyo.test", body: "x" });
    const byToken = Object.fromEntries(r.body.results.map((t: { token: string }) => [t.token, t]));
    expect(byToken[dead]).toEqual({
      service: "fcm",
      token: dead,
      status: "dead_token",
      reason: "UNREGISTERED",
    });
    expect(byToken[busy]).toEqual({ service: "fcm", token: busy, status: "gave_up", reason: "UNAVAILABLE" });
    expect(byToken[fine]).toMatchObject({ status: "sent" });
    const left = await db.pool.query("SELECT token FROM push_tokens WHERE node = $1 ORDER BY token", [node]);
    expect(left.rows.map((t) => t.token).sort()).toEqual([busy, fine].sort());
  });

  it("needs the domain when the server serves several; takes the only one otherwise", async () => {
    const { node } = await userWith("fcm");
    const missing = await send({ node, body: "x" });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toEqual({
      code: "invalid_request",
      message: expect.stringMatching(/^domain: required: this server serves several domains/),
    });
    const unknown = await send({ node, domain: "elsewhere.test", body: "x" });
    expect(unknown.body.error.message).toBe("domain: elsewhere.test is not a domain of this server");
    const single = await call(
      "POST",
      "/send",
      bearer(PUSH_KEY),
      { node, body: "x" },
      "/single/api/v1/notifications",
    );
    expect(single.status).toBe(200);
    expect((await notificationRow(single.body.id)).domain).toBe("oyo.test");
  });

  it.each([
    [{ node: undefined }, /^node: is required/],
    [{ node: "a b" }, /^node: may not contain spaces/],
    [{ title: undefined, body: undefined }, /^give a title, a body or data \(or silent: true\)/],
    [{ badge: -1 }, /^badge: badge must be between 0 and 99999/],
    [{ badge: "three" }, /^badge: badge must be a whole number/],
    [{ data: "{not json" }, /^data: data must be a JSON object of strings/],
    [{ data: "[1,2]" }, /^data: data must be an object of strings/],
    [{ data: { nested: { a: 1 } } }, /^data\.nested: data values must be strings/],
    [{ silent: "maybe" }, /^silent: silent must be true or false/],
    [{ ttl: 99_999_999 }, /^ttl: ttl must be between 0 and 2419200/],
    [{ priority: "urgent" }, /^priority: priority must be "normal" or "high"/],
    [{ collapseKey: "x".repeat(65) }, /^collapseKey: collapseKey is longer than 64 characters/],
    [{ callbackUrl: "ftp://example.test/x" }, /^callbackUrl: callbackUrl must be an http or https URL/],
    [{ buddy: "no-domain" }, /^buddy: buddy: "no-domain" is not a JID/],
    [
      { callbackUrl: "https://example.test/cb", buddy: "z@oyo.test" },
      /^buddy: give callbackUrl or buddy, not both/,
    ],
  ])("refuses %j with 400 invalid_request naming the field", async (over, message) => {
    const r = await send({ node: "306900000001", domain: "oyo.test", title: "t", body: "b", ...over });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_request");
    expect(r.body.error.message).toMatch(message);
  });

  it("needs an API key with the push scope", async () => {
    const body = { node: ALICE.node, domain: "oyo.test", body: "x" };
    const noScope = await send(body, BROADCAST_KEY);
    expect(noScope.status).toBe(403);
    expect(noScope.body.error.code).toBe("insufficient_scope");
    expect((await call("POST", "/send", undefined, body)).body.error.code).toBe("invalid_api_key");
    const user = await call("POST", "/send", basic(ALICE), body);
    expect(user.status).toBe(401);
    expect(user.body.error.code).toBe("invalid_api_key");
  });
});

describe("channel broadcasts", () => {
  it("queues a broadcast (202), pushes every subscriber's devices once, and reports its progress", async () => {
    const subscribers = [await userWith("fcm", "apns"), await userWith("fcm"), await userWith("apns", "fcm")];
    const outsider = await userWith("fcm");
    const otherChannel = await userWith("fcm");
    for (const s of subscribers) await subscribe(db.pool, { domain: "oyo.test", node: s.node }, "news");
    await subscribe(db.pool, { domain: "oyo.test", node: otherChannel.node }, "sports");
    // subscribers without a device are walked past
    for (const node of ["3069100", "306910000001a", "3069999"])
      await subscribe(db.pool, { domain: "oyo.test", node }, "news");
    const [dead, failing] = [subscribers[0]?.tokens[0], subscribers[1]?.tokens[0]] as [string, string];
    fcm.script(dead, { status: "dead_token", reason: "UNREGISTERED" });
    fcm.script(failing, { status: "failed", reason: "INVALID_ARGUMENT" });

    const r = await call("POST", "/channel_broadcast", bearer(BROADCAST_KEY), {
      domain: "oyo.test",
      channel: "news",
      title: "Breaking",
      body: "news",
    });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: "queued" });

    const progress = await eventually(
      async () => {
        const p = (await call("GET", `/channel_broadcast/${r.body.id}`, bearer(BROADCAST_KEY))).body;
        return p.state === "done" && p;
      },
      20_000,
      "the broadcast to finish",
    );
    expect(progress).toEqual({
      id: r.body.id,
      domain: "oyo.test",
      channel: "news",
      state: "done",
      total: 5,
      sent: 3,
      dead: 1,
      failed: 1,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      finishedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    for (const token of subscribers.flatMap((s) => s.tokens)) {
      const pushes = [...fcm.pushesTo(token), ...apns.pushesTo(token)];
      expect(pushes, token).toHaveLength(1);
      expect(pushes[0]).toEqual({
        title: "Breaking",
        body: "news",
        data: { broadcastId: r.body.id },
        badge: 1,
      });
    }
    expect(fcm.pushesTo(outsider.tokens[0] as string)).toEqual([]);
    expect(fcm.pushesTo(otherChannel.tokens[0] as string)).toEqual([]);
  });

  it("answers 404 for an unknown broadcast, 400 for a malformed id or body", async () => {
    const unknown = await call(
      "GET",
      "/channel_broadcast/5b0f4f6e-0000-4000-8000-00000000dead",
      bearer(BROADCAST_KEY),
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    const bad = await call("GET", "/channel_broadcast/42", bearer(BROADCAST_KEY));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe("id: id must be a broadcast id (a UUID)");
    const noChannel = await call("POST", "/channel_broadcast", bearer(BROADCAST_KEY), {
      domain: "oyo.test",
      body: "x",
    });
    expect(noChannel.body.error.message).toMatch(/^channel: /);
    const badChannel = await call("POST", "/channel_broadcast", bearer(BROADCAST_KEY), {
      domain: "oyo.test",
      channel: "news sports",
      body: "x",
    });
    expect(badChannel.body.error.message).toBe("channel: may contain letters, digits and . _ - : / only");
    const noDomain = await call("POST", "/channel_broadcast", bearer(BROADCAST_KEY), {
      channel: "news",
      body: "x",
    });
    expect(noDomain.body.error.message).toMatch(/^domain: required/);
  });

  it("needs an API key with the broadcast scope, to queue and to read", async () => {
    const post = await call("POST", "/channel_broadcast", bearer(PUSH_KEY), {
      domain: "oyo.test",
      channel: "n",
      body: "x",
    });
    expect(post.status).toBe(403);
    expect(post.body.error.code).toBe("insufficient_scope");
    const get = await call(
      "GET",
      "/channel_broadcast/5b0f4f6e-0000-4000-8000-00000000dead",
      bearer(PUSH_KEY),
    );
    expect(get.status).toBe(403);
    expect(get.body.error.code).toBe("insufficient_scope");
  });
});

describe("POST /replies and /resolves", () => {
  /** A notification sent to ALICE, with this origin. */
  async function toAlice(origin: Record<string, string>) {
    await storeToken(db.pool, { ...ALICE, service: "fcm", token: "alice-phone", app: "OyoChat" }, 10);
    const r = await send({ node: ALICE.node, domain: ALICE.domain, body: "x", ...origin });
    expect(r.status).toBe(200);
    return r.body.id as string;
  }

  it("relays the recipient's reply and resolve to the callback URL (202)", async () => {
    const id = await toAlice({ callbackUrl: `${callbacks.url}/replies-here` });
    const reply = await call("POST", "/replies", basic(ALICE), { id, text: "on it" });
    expect(reply).toEqual({ status: 202, body: { relayed: "queued" } });
    // a form, with the id named notificationId
    const resolve = await call(
      "POST",
      "/resolves",
      basic(ALICE),
      new URLSearchParams({ notificationId: id }),
    );
    expect(resolve).toEqual({ status: 202, body: { relayed: "queued" } });
    const received = await eventually(
      async () => callbacks.received("/replies-here").length === 2 && callbacks.received("/replies-here"),
      20_000,
      "both actions",
    );
    const byAction = Object.fromEntries(received.map((b) => [(b as { action: string }).action, b]));
    expect(byAction.reply).toEqual({
      notificationId: id,
      action: "reply",
      text: "on it",
      from: `${ALICE.node}@${ALICE.domain}`,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(byAction.resolve).toEqual({
      notificationId: id,
      action: "resolve",
      from: `${ALICE.node}@${ALICE.domain}`,
      at: expect.any(String),
    });
  });

  it("answers at the root too, where the legacy services served /replies and /resolves", async () => {
    const id = await toAlice({ callbackUrl: `${callbacks.url}/from-the-root` });
    expect(await call("POST", "/replies", basic(ALICE), { id, text: "root" }, "")).toEqual({
      status: 202,
      body: { relayed: "queued" },
    });
    const form = new URLSearchParams({ notificationId: id });
    expect(await call("POST", "/resolves", basic(ALICE), form, "")).toEqual({
      status: 202,
      body: { relayed: "queued" },
    });
    const received = await eventually(
      async () => callbacks.received("/from-the-root").length === 2 && callbacks.received("/from-the-root"),
      20_000,
      "both actions from the root paths",
    );
    expect(received.map((b) => (b as { action: string }).action).sort()).toEqual(["reply", "resolve"]);
    // the same callers and checks as under /api/v1/notifications
    expect((await call("POST", "/replies", undefined, { id, text: "x" }, "")).status).toBe(401);
    expect((await call("POST", "/resolves", basic(BOB), { id }, "")).status).toBe(404);
  });

  it("relays to a buddy's hook", async () => {
    const id = await toAlice({ buddy: "zabbix@oyo.test" });
    expect((await call("POST", "/resolves", basic(ALICE), { id })).status).toBe(202);
    const hook = "/hooks/oyo.test/zabbix/notification-action";
    const received = await eventually(
      async () => callbacks.received(hook).length === 1 && callbacks.received(hook),
      20_000,
      "the hook",
    );
    expect(received[0]).toMatchObject({ notificationId: id, action: "resolve" });
  });

  it("lets only the recipient act (404 for anyone else or an unknown id); 409 without an origin", async () => {
    const id = await toAlice({ callbackUrl: `${callbacks.url}/not-bob` });
    const bob = await call("POST", "/replies", basic(BOB), { id, text: "mine now" });
    expect(bob.status).toBe(404);
    expect(bob.body.error.code).toBe("not_found");
    expect((await call("POST", "/resolves", basic(BOB), { id })).status).toBe(404);
    const unknown = await call("POST", "/replies", basic(ALICE), {
      id: "5b0f4f6e-0000-4000-8000-00000000dead",
      text: "?",
    });
    expect(unknown.status).toBe(404);
    const bare = await toAlice({});
    const noOrigin = await call("POST", "/replies", basic(ALICE), { id: bare, text: "x" });
    expect(noOrigin.status).toBe(409);
    expect(noOrigin.body.error.code).toBe("no_origin");
  });

  const ID = "5b0f4f6e-0000-4000-8000-000000000001";
  it.each([
    ["without an id", { text: "x" }, /^id: id is required \(the notification's id\)/],
    ["with a malformed id", { id: "42", text: "x" }, /^id: must be a notification id \(a UUID\)/],
    ["with a blank text", { id: ID, text: "   " }, /^text: text is empty/],
    ["with a text too long", { id: ID, text: "x".repeat(4001) }, /^text: text is longer than 4000/],
    ["without a text", { id: ID }, /^text: text must be a string/],
  ])("refuses a reply %s with 400", async (_, body, message) => {
    const r = await call("POST", "/replies", basic(ALICE), body);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(message);
  });

  it("needs the user's credentials", async () => {
    const body = { id: "5b0f4f6e-0000-4000-8000-000000000001", text: "x" };
    expect((await call("POST", "/replies", undefined, body)).body.error.code).toBe("invalid_credentials");
    expect((await call("POST", "/resolves", bearer(PUSH_KEY), body)).status).toBe(401);
  });
});
