import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { specialUse } from "#common/http/outbound-address.ts";
import { routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import type { AuthenticatorDeps } from "../../services/auth/src/authenticators/authenticator.ts";
import {
  createHttpAuthenticator as createParsed,
  httpOptionsSchema,
} from "../../services/auth/src/authenticators/http-authenticator.ts";
import { type AuthCore, createAuthCore } from "../../services/auth/src/core/auth-core.ts";
import { createCallers } from "../../services/http-utility/src/callers.ts";
import { createJobQueue } from "../../services/http-utility/src/push/jobs.ts";
import { createRelay } from "../../services/http-utility/src/push/mongooseim/relay.ts";
import { createNotifier } from "../../services/http-utility/src/push/notifier.ts";
import { createBroadcasts } from "../../services/http-utility/src/push/send/broadcast.ts";
import { sendRoutes } from "../../services/http-utility/src/push/send/routes.ts";
import { storeToken } from "../../services/http-utility/src/push/token-store.ts";
import { smsSenderKinds } from "../../services/http-utility/src/registration/sms/registry.ts";
import type { SmsSenderDeps } from "../../services/http-utility/src/registration/sms/sender.ts";
import { sha256 } from "../support/bytes.ts";
import { createTestDatabase } from "../support/database.ts";
import { eventually } from "../support/eventually.ts";
import { ScriptedPushSender, sendersOf } from "../support/scripted-push-sender.ts";

/**
 * The attack: the services make requests to URLs that others name. A backend (or whoever holds a push key)
 * gives a notification's callbackUrl; a config names the `http` authenticator's backend and the SMS gateway.
 * Pointed at loopback, the private network or the cloud metadata service (169.254.169.254), such a request
 * reaches what the internet never should (server-side request forgery). They are refused after DNS, on the
 * address actually connected to, unless the operator lists the target (docs/security.md "Internal
 * endpoints, push tokens and outbound requests"). Every target here is on loopback: nothing leaves the machine.
 */

const PUSH_KEY = "sk_test_outbound_pusher_01234";
const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const silent = pino({ level: "silent" });

/** A local server that records what reaches it: were a refused request sent, it would land here. */
async function target() {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.push(req.url ?? "");
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let victim: Awaited<ReturnType<typeof target>>;

beforeAll(async () => {
  victim = await target();
});
afterAll(async () => {
  await victim?.close();
});

describe("which addresses are special", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.20.0.1", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "shared"],
    ["0.0.0.0", "unspecified"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "link-local"],
    ["fd00:ec2::254", "unique local"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["64:ff9b::a00:1", "private"],
    ["2002:a9fe:a9fe::1", "link-local"],
  ])("%s is refused (%s)", (address, what) => {
    expect(specialUse(address)).toContain(what);
  });

  it.each(["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])("%s is public", (address) => {
    expect(specialUse(address)).toBeUndefined();
  });
});

/** sendRoutes and a relay on their own database, as app.ts and push/deps.ts wire them. */
async function startPushStack(allowTargets: string[]) {
  const db = await createTestDatabase();
  const logs: { level: number; msg: string }[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const config: Config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 } },
      services: { httpUtility: { apiKeys: { pusher: { sha256: sha256(PUSH_KEY), scopes: ["push"] } } } },
      push: { relay: { attempts: 1, timeoutMs: 2000, allowTargets } },
    },
  });
  await addUser(
    db.pool,
    ALICE,
    { cleartext: ALICE.password },
    config.domains["oyo.test"] as Config["domains"][string],
  );
  await storeToken(db.pool, { ...ALICE, service: "fcm", token: "alice-phone", app: "OyoChat" }, 10);
  const core: AuthCore = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const notifier = createNotifier({
    pool: db.pool,
    senders: sendersOf({ OyoChat: [new ScriptedPushSender("fcm")] }),
    retry: { attempts: 1, initialMs: 10, maxMs: 100 },
    log,
    metrics: new Registry(),
  });
  const boss = createJobQueue({ pool: db.pool, log });
  await boss.start();
  const broadcasts = createBroadcasts({ pool: db.pool, boss, notifier, log, concurrency: 0 });
  const relay = createRelay({
    boss,
    log,
    relay: config.push.relay,
    buddiesUrl: "http://127.0.0.1:9",
    hookKey: undefined,
    retryDelaySeconds: 1,
    pollingIntervalSeconds: 0.5,
  });
  await relay.start();
  const callers = createCallers({ core, apiKeys: config.services.httpUtility.apiKeys });
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  app.use(
    "/api/v1",
    express.json(),
    routesRouter(
      // the routes under /api/v1 (the legacy root /replies and /resolves are the same handlers)
      sendRoutes({ pool: db.pool, config, notifier, broadcasts, relay }).filter((r) =>
        r.path.startsWith("/api/v1/"),
      ),
      { base: "/api/v1", resolveCaller: callers.resolve },
    ),
  );
  const server: RunningServer = await startServer(finishApp(app, log), {
    name: "http-utility",
    host: "127.0.0.1",
    port: 0,
    log,
  });
  const base = `http://127.0.0.1:${server.port}/api/v1/notifications`;
  const post = async (path: string, authorization: string, body: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
    return { status: r.status, body: (await r.json()) as any };
  };
  const alice = `Basic ${Buffer.from(`${ALICE.node}@${ALICE.domain}:${ALICE.password}`).toString("base64")}`;
  return {
    db,
    logs,
    send: (callbackUrl: string) =>
      post("/send", `Bearer ${PUSH_KEY}`, { node: ALICE.node, domain: "oyo.test", body: "hi", callbackUrl }),
    reply: (id: string) => post("/replies", alice, { id, text: "yes" }),
    notifications: async () =>
      (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM push_notifications")).rows[0]?.n,
    async close() {
      await server.close(100);
      await relay.stop();
      await boss.stop({ graceful: false });
      await core.close();
      await db.drop();
    },
  };
}

describe("a notification's callbackUrl", () => {
  let stack: Awaited<ReturnType<typeof startPushStack>>;
  let listed: Awaited<ReturnType<typeof startPushStack>>;
  beforeAll(async () => {
    stack = await startPushStack([]);
    listed = await startPushStack(["localhost"]);
  });
  afterAll(async () => {
    await stack?.close();
    await listed?.close();
  });

  it.each([
    ["loopback", () => `http://127.0.0.1:${victim.port}/admin`],
    ["the cloud metadata service", () => "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
    ["a private address", () => "http://10.0.0.5/internal"],
    ["loopback written as IPv4-mapped IPv6", () => `http://[::ffff:127.0.0.1]:${victim.port}/admin`],
  ])("at %s is refused at send with 400 forbidden_callback, nothing recorded or pushed", async (_, url) => {
    const before = await stack.notifications();
    const r = await stack.send(url());
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("forbidden_callback");
    expect(r.body.error.message).toMatch(/push\.relay\.allowTargets/);
    expect(await stack.notifications()).toBe(before);
    expect(victim.received).not.toContain("/admin");
  });

  it("at a name that resolves to 127.0.0.1 is refused when relaying, on the address connected to", async () => {
    const sent = await stack.send(`http://localhost:${victim.port}/admin`);
    expect(sent.status).toBe(200);
    expect((await stack.reply(sent.body.id)).status).toBe(202);
    await eventually(
      async () => stack.logs.some((l) => l.level === 50 && /relay gave up/.test(l.msg)),
      20_000,
      "the relay's refusal",
    );
    const refusal = stack.logs.find((l) => /relay gave up/.test(l.msg))?.msg;
    expect(refusal).toMatch(/localhost \((127\.0\.0\.1|::1)\) is a loopback address/);
    expect(refusal).toMatch(/push\.relay\.allowTargets/);
    expect(victim.received).not.toContain("/admin");
  });

  it("is delivered when the operator lists the target", async () => {
    const sent = await listed.send(`http://localhost:${victim.port}/listed`);
    expect(sent.status).toBe(200);
    expect((await listed.reply(sent.body.id)).status).toBe(202);
    await eventually(async () => victim.received.includes("/listed"), 20_000, "the relayed reply");
  });
});

const createHttpAuthenticator = (options: Record<string, unknown>, deps: AuthenticatorDeps) =>
  createParsed(httpOptionsSchema.parse(options), deps);
const createHttpSender = (options: Record<string, unknown>, deps: SmsSenderDeps) =>
  smsSenderKinds.create("sms", { kind: "http", options }, deps);

describe("the http authenticator pointed at a private address", () => {
  const deps = { domain: "ext.test", log: silent } as AuthenticatorDeps;
  const jid = { node: "joe", domain: "ext.test" };

  it("refuses every check with a message naming the address and the option that allows it", async () => {
    const metadata = createHttpAuthenticator({ url: "http://169.254.169.254/latest/meta-data/" }, deps);
    await expect(metadata.checkPassword(jid, "pw")).rejects.toThrow(
      /169\.254\.169\.254 is a link-local address.*domains\.ext\.test\.authenticator\.options\.allowTargets/,
    );
    const byName = createHttpAuthenticator({ url: `http://localhost:${victim.port}/check-by-name` }, deps);
    await expect(byName.checkPassword(jid, "pw")).rejects.toThrow(/localhost \(.*\) is a loopback address/);
    expect(victim.received).not.toContain("/check-by-name");
  });

  it("asks a listed backend", async () => {
    const listed = createHttpAuthenticator(
      { url: `http://127.0.0.1:${victim.port}/check`, allowTargets: ["127.0.0.0/8"] },
      deps,
    );
    expect(await listed.checkPassword(jid, "pw")).toEqual({ ok: true });
    expect(victim.received).toContain("/check");
  });
});

describe("the HTTP SMS gateway pointed at a private address", () => {
  const deps = { domain: "oyo.test", env: "test" as const, log: silent };

  it("refuses to send, saying what to do, and sends nothing", async () => {
    const privateGateway = createHttpSender({ url: "http://192.168.1.20/sms?to={to}", method: "GET" }, deps);
    await expect(privateGateway.send("+306912345678", "code 123456", "123456")).rejects.toThrow(
      /SMS gateway refused: 192\.168\.1\.20 is a private address \(RFC 1918\).*registration\.sms\.options\.allowTargets/,
    );
    const loopback = createHttpSender(
      { url: `http://localhost:${victim.port}/sms`, json: { to: "{to}" } },
      deps,
    );
    await expect(loopback.send("+306912345678", "code 123456", "123456")).rejects.toThrow(
      /SMS gateway refused: localhost \(.*\) is a loopback address/,
    );
    expect(victim.received.filter((u) => u.startsWith("/sms"))).toEqual([]);
  });

  it("sends through a listed gateway", async () => {
    const listed = createHttpSender(
      {
        url: `http://localhost:${victim.port}/sms-listed`,
        json: { to: "{to}" },
        allowTargets: ["localhost"],
      },
      deps,
    );
    await listed.send("+306912345678", "code 123456", "123456");
    expect(victim.received).toContain("/sms-listed");
  });
});
