import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createDocument } from "zod-openapi";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { routesRouter } from "#common/http/route.ts";
import { routePaths } from "#common/http/route-openapi.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { recordingLogger } from "../../../../../test/support/recording-logger.ts";
import { resolveInternalCaller } from "../../callers.ts";
import { mute } from "../mutes.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { PushMessage, PushService } from "../senders/sender.ts";
import type { Owner, TokenRow } from "../token-store.ts";
import { MONGOOSEPUSH_PREFIXES, mongooseImRoutes, mongoosePushErrors } from "./routes.ts";

/**
 * What MongooseIM sees of its endpoints, over HTTP against a real database: the chat hook of 2.1.0 and 6.x
 * answered before the push, the MongoosePush API's answers from the notifier's results, the app of a device
 * we never stored, and the addresses allowed to call. The notifier is a recording fake with scripted results.
 */

type Call =
  | { to: "user"; owner: Owner; message: PushMessage }
  | { to: "token"; row: TokenRow; message: PushMessage };

class RecordingNotifier implements Notifier {
  calls: Call[] = [];
  finished = 0;
  delayMs = 0;
  fail = false;
  next: Pick<TokenResult, "status" | "reason"> = { status: "sent" };
  async toToken(row: TokenRow, message: PushMessage): Promise<TokenResult> {
    this.calls.push({ to: "token", row, message });
    return { service: row.service, token: row.token, ...this.next };
  }
  toTokens(rows: readonly TokenRow[], message: PushMessage): Promise<TokenResult[]> {
    return Promise.all(rows.map((row) => this.toToken(row, message)));
  }
  async toUser(owner: Owner, message: PushMessage): Promise<TokenResult[]> {
    this.calls.push({ to: "user", owner, message });
    await sleep(this.delayMs);
    this.finished += 1;
    if (this.fail) throw new Error("database went away");
    return [{ service: "fcm", token: "t", status: "sent" }];
  }
}

const { log, text: logText, clear: clearLog } = recordingLogger({ level: "debug" });

const APNS = { keyFile: "k.p8", keyId: "K", teamId: "T" };
let db: TestDatabase;
let server: RunningServer;
let base: string;
let config: Config;
const notifier = new RecordingNotifier();
/** How long a push started in the background may take to finish: seconds on a loaded 2-core machine. */
const SETTLED = { timeout: 10_000 };

beforeAll(async () => {
  db = await createTestDatabase();
  config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      push: {
        apps: {
          OyoChat: { fcm: { serviceAccountFile: "oyo.json" }, apns: { bundleId: "com.oyo.chat", ...APNS } },
          Other: { apns: { bundleId: "com.other.app", ...APNS } },
        },
        hooks: { allow: ["10.1.0.0/16"] },
      },
    },
  });
  // as app.ts builds the internal listener's app: MongooseIM's routes alone, no proxy trusted
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  app.use(
    routesRouter(mongooseImRoutes({ pool: db.pool, config, notifier, log }), {
      resolveCaller: resolveInternalCaller,
    }),
  );
  app.use(MONGOOSEPUSH_PREFIXES, mongoosePushErrors({ log }));
  server = await startServer(finishApp(app, log), { name: "http-utility", host: "127.0.0.1", port: 0, log });
  base = `http://127.0.0.1:${server.port}`;

  await db.pool.query(
    `INSERT INTO push_tokens (service, token, app, domain, node, badge) VALUES
       ('fcm', 'fcm-stored', 'OyoChat', 'oyo.test', '306900000002', 4),
       ('apns', 'aa01', 'Other', 'oyo.test', '306900000003', 0),
       ('apns-voip', 'bb02', 'OyoChat', 'oyo.test', '306900000003', 0)`,
  );
});

afterAll(async () => {
  await server?.close(100);
  await db?.drop();
});

beforeEach(() => {
  notifier.calls = [];
  notifier.finished = 0;
  notifier.delayMs = 0;
  notifier.fail = false;
  notifier.next = { status: "sent" };
  clearLog();
});

const FORM = { "content-type": "application/x-www-form-urlencoded" };

async function hook(body: string, headers: Record<string, string> = {}) {
  const started = performance.now();
  const r = await fetch(`${base}/api/v1/mongooseim/messages`, {
    method: "POST",
    headers: { ...FORM, ...headers },
    body,
  });
  const text = await r.text();
  return { status: r.status, text, ms: performance.now() - started };
}

async function push(
  version: "v2" | "v3",
  deviceId: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const r = await fetch(`${base}/${version}/notification/${encodeURIComponent(deviceId)}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

const TRICKY = 'Tom & Jerry: x=1, 50% off + "free" ünïcödé 😀 &message=again';
const fields = { author: "306900000001", server: "oyo.test", receiver: "306900000002", message: TRICKY };
const chat = (message = TRICKY): Call => ({
  to: "user",
  owner: { domain: "oyo.test", node: "306900000002" },
  message: {
    title: "306900000001",
    body: message,
    data: { type: "chat", from: "306900000001@oyo.test" },
    collapseKey: "306900000001@oyo.test",
    threadId: "306900000001@oyo.test",
  },
});

describe("POST /api/v1/mongooseim/messages (mod_http_notification, mod_event_pusher_http)", () => {
  it("pushes a 2.1.0 unencoded body's message, & and = included, to the receiver's devices", async () => {
    const body = `author=${fields.author}&server=${fields.server}&receiver=${fields.receiver}&message=${TRICKY}`;
    expect(await hook(body)).toMatchObject({ status: 204, text: "" });
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
    expect(notifier.calls).toEqual([chat()]);
  });

  it("pushes a 6.x encoded body's message, decoded", async () => {
    expect(await hook(new URLSearchParams(fields).toString())).toMatchObject({ status: 204 });
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
    expect(notifier.calls).toEqual([chat()]);
  });

  it("cuts a long message to 200 characters", async () => {
    await hook(new URLSearchParams({ ...fields, message: "é".repeat(300) }).toString());
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
    expect(notifier.calls).toEqual([chat(`${"é".repeat(199)}…`)]);
  });

  it("answers before the push is done", async () => {
    notifier.delayMs = 3000;
    const r = await hook(new URLSearchParams(fields).toString());
    expect(r.status).toBe(204);
    expect(r.ms).toBeLessThan(notifier.delayMs);
    expect(notifier.finished).toBe(0);
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
  });

  it("logs a failed push, never throws it", async () => {
    notifier.fail = true;
    expect((await hook(new URLSearchParams(fields).toString())).status).toBe(204);
    await vi.waitFor(() => expect(logText()).toContain("chat message push failed"), SETTLED);
    expect(logText()).not.toContain("Tom & Jerry");
  });

  it("pushes nothing for a chat the receiver muted, until the mute ends or is lifted", async () => {
    const receiver = { domain: "oyo.test", node: fields.receiver };
    await mute(db.pool, receiver, `${fields.author}@oyo.test`, undefined);
    // another author's messages still push
    await mute(db.pool, receiver, "306900000099@oyo.test", 5);
    expect((await hook(new URLSearchParams(fields).toString())).status).toBe(204);
    await vi.waitFor(() => expect(logText()).toContain("chat message not pushed"), SETTLED);
    expect(notifier.calls).toEqual([]);
    // an expired mute is none
    await db.pool.query("UPDATE chat_mutes SET until = now() - interval '1 second' WHERE peer = $1", [
      `${fields.author}@oyo.test`,
    ]);
    await hook(new URLSearchParams(fields).toString());
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
    expect(notifier.calls).toEqual([chat()]);
    await db.pool.query("DELETE FROM chat_mutes");
  });

  it("refuses a body without a receiver or a message, at once", async () => {
    for (const body of ["author=a&server=oyo.test&message=hi", "author=a&server=oyo.test&receiver=b", ""]) {
      const r = await hook(body);
      expect(r.status, body).toBe(400);
      expect(JSON.parse(r.text).error.code).toBe("invalid_request");
      // nothing to wait for: milliseconds, even on a loaded machine, where a wait would be seconds
      expect(r.ms).toBeLessThan(1000);
    }
    await sleep(20);
    expect(notifier.calls).toEqual([]);
  });

  it("reads the body whatever its content type (the /api/v1 parsers have not run)", async () => {
    const body = `author=${fields.author}&server=${fields.server}&receiver=${fields.receiver}&message=${TRICKY}`;
    expect((await hook(body, { "content-type": "text/plain" })).status).toBe(204);
    await vi.waitFor(() => expect(notifier.finished).toBe(1), SETTLED);
    expect(notifier.calls).toEqual([chat()]);
  });
});

// the refusal of any other address (403 forbidden_address) is the policy's: callers.test.ts "internal callers"
describe("who may call", () => {
  const body = new URLSearchParams(fields).toString();
  const fcmAlert = { service: "fcm", alert: { title: "t", body: "b" } };

  it("answers a loopback connection, whatever X-Forwarded-For claims", async () => {
    expect((await hook(body)).status).toBe(204);
    expect((await hook(body, { "x-forwarded-for": "203.0.113.9" })).status).toBe(204);
    expect((await push("v3", "fcm-stored", fcmAlert, { "x-forwarded-for": "10.2.0.1" })).status).toBe(200);
    // the two hooks' pushes run after their answers: a straggler landed in the next test's calls (seen once
    // in a full run on a loaded machine)
    await vi.waitFor(() => expect(notifier.finished).toBe(2), SETTLED);
  });
});

describe("POST /v3/notification/:deviceId and /v2 (the MongoosePush API)", () => {
  const stored = (service: PushService, token: string, app: string, node: string, badge = 0): TokenRow => ({
    service,
    token,
    app,
    domain: "oyo.test",
    node,
    badge,
  });

  it("pushes a 2.1.0 body (v2: nulls, numbers) to the stored token, answering 200 null", async () => {
    const r = await push("v2", "fcm-stored", {
      service: "fcm",
      mode: "prod",
      topic: null,
      alert: { title: "alice", body: "hi", badge: 5, tag: "alice@oyo.test", click_action: null },
    });
    expect(r).toEqual({ status: 200, text: "null" });
    expect(notifier.calls).toEqual([
      {
        to: "token",
        row: stored("fcm", "fcm-stored", "OyoChat", "306900000002", 4),
        message: { title: "alice", body: "hi", badge: 5, threadId: "alice@oyo.test" },
      },
    ]);
  });

  it("pushes a 6.x body (v3: strings for numbers and booleans) as the PushMessage it means", async () => {
    const r = await push("v3", "aa01", {
      service: "apns",
      mode: "dev",
      priority: "high",
      time_to_live: "3600",
      mutable_content: "true",
      topic: "com.other.app",
      alert: { title: "alice", body: "hi", badge: "1", click_action: "REPLY", sound: "default" },
      data: { "message-count": 1 },
    });
    expect(r).toEqual({ status: 200, text: "null" });
    expect(notifier.calls).toEqual([
      {
        to: "token",
        row: stored("apns", "aa01", "Other", "306900000003"),
        message: {
          title: "alice",
          body: "hi",
          badge: 1,
          sound: "default",
          category: "REPLY",
          data: { "message-count": "1" },
          sandbox: true,
          topic: "com.other.app",
          ttlSeconds: 3600,
          priority: "high",
          mutableContent: true,
        },
      },
    ]);
  });

  it("finds an APNs token stored as PushKit's, and pushes silently without an alert", async () => {
    expect(
      await push("v3", "bb02", { service: "apns", topic: "com.oyo.chat.voip", data: { a: "b" } }),
    ).toEqual({
      status: 200,
      text: "null",
    });
    expect(notifier.calls).toEqual([
      {
        to: "token",
        row: stored("apns-voip", "bb02", "OyoChat", "306900000003"),
        message: { silent: true, data: { a: "b" }, topic: "com.oyo.chat.voip" },
      },
    ]);
  });

  it("answers the notifier's results as MongoosePush does", async () => {
    const cases: [Pick<TokenResult, "status" | "reason">, number, string][] = [
      [{ status: "sent" }, 200, "null"],
      [{ status: "dead_token", reason: "Unregistered" }, 410, '{"reason":"unregistered"}'],
      [{ status: "failed", reason: "PayloadTooLarge" }, 413, '{"reason":"payload_too_large"}'],
      [{ status: "gave_up", reason: "TooManyRequests" }, 429, '{"reason":"too_many_requests"}'],
      [{ status: "gave_up", reason: "InternalServerError" }, 503, '{"reason":"unable_to_connect"}'],
      [{ status: "no_sender" }, 503, '{"reason":"unable_to_connect"}'],
      [{ status: "failed", reason: "BadTopic" }, 500, '{"reason":"internal_error"}'],
    ];
    for (const [result, status, text] of cases) {
      notifier.next = result;
      for (const version of ["v2", "v3"] as const) {
        const r = await push(version, "fcm-stored", { service: "fcm", data: { a: "b" } });
        expect(r, `${version} ${result.status} ${result.reason}`).toEqual({ status, text });
      }
    }
  });

  it("refuses a bad body with 400 invalid_request, the reason only", async () => {
    for (const body of [
      "{not json",
      { service: "fcm" },
      { service: "gcm", data: {} },
      { service: "fcm", data: {}, time_to_live: "soon" },
      { service: "fcm", alert: { body: "no title" } },
    ]) {
      expect(await push("v3", "fcm-stored", body), JSON.stringify(body)).toEqual({
        status: 400,
        text: '{"reason":"invalid_request"}',
      });
    }
    expect(notifier.calls).toEqual([]);
  });

  it("refuses a body in another charset and a device id that is not UTF-8 in its own words, not a 500", async () => {
    const body = { service: "fcm", data: { x: "y" } };
    for (const charset of ["latin1", "utf-16", "nonsense"]) {
      expect(
        await push("v3", "fcm-stored", body, { "content-type": `application/json; charset=${charset}` }),
        charset,
      ).toEqual({
        status: 400,
        text: '{"reason":"invalid_request"}',
      });
    }
    // %ED%A0%80 is a lone surrogate: no UTF-8 string decodes from it (found by test/security/fuzz.test.ts)
    const r = await fetch(`${base}/v2/notification/%ED%A0%80`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect({ status: r.status, text: await r.text() }).toEqual({
      status: 400,
      text: '{"reason":"invalid_request"}',
    });
    expect(notifier.calls).toEqual([]);
  });

  it("refuses an APNs payload over 4 KB with 413 before pushing, and a body over 64 KB", async () => {
    const big = { service: "apns", alert: { title: "t", body: "x".repeat(4100) } };
    expect(await push("v3", "aa01", big)).toEqual({ status: 413, text: '{"reason":"payload_too_large"}' });
    const huge = { service: "fcm", data: { x: "x".repeat(70_000) } };
    expect(await push("v3", "fcm-stored", huge)).toEqual({
      status: 413,
      text: '{"reason":"payload_too_large"}',
    });
    expect(notifier.calls).toEqual([]);
  });

  describe("a device we never stored", () => {
    const unknown = (service: PushService, token: string, app: string): TokenRow => ({
      service,
      token,
      app,
      domain: "",
      node: "",
      badge: 0,
    });
    const alert = { title: "t", body: "b" };

    it("is pushed with the app whose bundle id is the topic (.voip: PushKit)", async () => {
      await push("v3", "cc01", { service: "apns", topic: "com.other.app", tags: ["OyoChat"], alert });
      await push("v3", "cc02", { service: "apns", topic: "com.oyo.chat.voip", alert });
      expect(notifier.calls.map((c) => c.to === "token" && c.row)).toEqual([
        unknown("apns", "cc01", "Other"),
        unknown("apns-voip", "cc02", "OyoChat"),
      ]);
    });

    it("else with an app named in tags, else the only app of its service", async () => {
      await push("v3", "cc03", { service: "apns", tags: ["nope", "Other"], alert });
      await push("v3", "cc04", { service: "fcm", alert });
      expect(notifier.calls.map((c) => c.to === "token" && c.row)).toEqual([
        unknown("apns", "cc03", "Other"),
        unknown("fcm", "cc04", "OyoChat"),
      ]);
      expect(notifier.calls[1]?.message).toEqual(alert);
    });

    it("is refused with 400 invalid_request when no app can be chosen", async () => {
      expect(await push("v3", "cc05", { service: "apns", topic: "com.unknown", alert })).toEqual({
        status: 400,
        text: '{"reason":"invalid_request"}',
      });
      expect(notifier.calls).toEqual([]);
    });
  });
});

describe("the OpenAPI paths", () => {
  const routes = () => mongooseImRoutes({ pool: db.pool, config, notifier, log });
  const document = () =>
    JSON.parse(
      JSON.stringify(
        createDocument({
          openapi: "3.1.0",
          info: { title: "t", version: "1" },
          paths: routePaths(routes(), { bodyTypes: ["application/json"] }),
        }),
      ),
    );

  it("describe the three routes as a valid document", () => {
    expect(Object.keys(document().paths ?? {})).toEqual([
      "/api/v1/mongooseim/messages",
      "/v2/notification/{deviceId}",
      "/v3/notification/{deviceId}",
    ]);
  });

  it("take no credentials, and give MongoosePush's answers as { reason } alone", () => {
    const doc = document();
    const hookOp = doc.paths["/api/v1/mongooseim/messages"].post;
    expect(hookOp.security).toEqual([]);
    expect(Object.keys(hookOp.requestBody.content)).toEqual(["application/x-www-form-urlencoded"]);
    expect(Object.keys(hookOp.responses)).toEqual(["204", "400", "403", "413", "default"]);
    for (const version of ["v2", "v3"]) {
      const op = doc.paths[`/${version}/notification/{deviceId}`].post;
      expect(op.security).toEqual([]);
      expect(Object.keys(op.requestBody.content)).toEqual(["application/json"]);
      expect(Object.keys(op.responses)).toEqual([
        "200",
        "400",
        "403",
        "410",
        "413",
        "429",
        "500",
        "503",
        "default",
      ]);
      expect(op.responses["400"].description).toBe(
        "invalid_request: a bad body, or a device no app can be chosen for",
      );
      expect(op.responses["413"].content["application/json"].schema).toMatchObject({
        properties: { reason: {} },
      });
      // an address not allowed is refused in the common format
      expect(op.responses["403"].description).toMatch(/^- `forbidden_address`: /);
    }
  });
});
