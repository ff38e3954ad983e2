import express from "express";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { type AuthCore, createAuthCore } from "../../services/auth/src/core/auth-core.ts";
import { createCallers } from "../../services/http-utility/src/callers.ts";
import { deviceRoutes } from "../../services/http-utility/src/push/devices/routes.ts";
import type { Notifier } from "../../services/http-utility/src/push/notifier.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { recordingLogger } from "../support/recording-logger.ts";

/**
 * The attack: a device token is no secret (it travels in provider logs, crash reports, a shared phone's
 * backups). Registered by a second user, it used to move to them (their notifications now on the victim's
 * phone, the victim's no longer) and the answer said `moved`: the token was somebody's. Now it moves only
 * with the same install's deviceSecret or after `push.tokenMoveAfterDays`, and no answer tells whose it was
 * (docs/push.md "Tokens", docs/security.md "Internal endpoints, push tokens and outbound requests").
 */

const DOMAIN = "oyo.test";
const ALICE = { node: "306900000001", domain: DOMAIN, password: "alice pw" };
const MALLORY = { node: "306900000066", domain: DOMAIN, password: "mallory pw" };
const BOB = { node: "306900000002", domain: DOMAIN, password: "bob pw" };
type User = typeof ALICE;
const TOKEN = "fcm:APA91b-alices-phone-token";
const ALICES_INSTALL = "k3J9-alice-install-secret-Zq81xw";
const MOVE_AFTER_DAYS = 30;

const { log, lines: logLines, clear: clearLog } = recordingLogger({ level: "debug" });

/** Never asked to push by these routes' registrations; present because the routes take one. */
const notifier: Notifier = {
  toToken: async () => {
    throw new Error("not expected");
  },
  toTokens: async () => [],
  toUser: async () => [],
};

let db: TestDatabase;
let core: AuthCore;
let server: RunningServer;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  const config: Config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      domains: { [DOMAIN]: { scramIterations: 4096 } },
      push: {
        apps: { OyoChat: { fcm: { serviceAccountFile: "/nonexistent/fcm.json" } } },
        domains: { [DOMAIN]: { app: "OyoChat" } },
        tokenMoveAfterDays: MOVE_AFTER_DAYS,
      },
    },
  });
  for (const u of [ALICE, MALLORY, BOB]) {
    await addUser(db.pool, u, { cleartext: u.password }, config.domains[DOMAIN] as Config["domains"][string]);
  }
  core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  app.use(
    "/api/v1",
    express.json(),
    routesRouter(deviceRoutes({ pool: db.pool, config, notifier }), {
      base: "/api/v1",
      resolveCaller: createCallers({ core, apiKeys: {} }).resolve,
    }),
  );
  server = await startServer(finishApp(app, log), { name: "http-utility", host: "127.0.0.1", port: 0, log });
  base = `http://127.0.0.1:${server.port}/api/v1/notifications`;
});

afterAll(async () => {
  await server?.close(100);
  await core?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query("TRUNCATE push_tokens");
  clearLog();
});

async function register(u: User, extra: Record<string, unknown> = {}) {
  const r = await fetch(`${base}/store_token`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`,
    },
    body: JSON.stringify({ node: u.node, token: TOKEN, service: "fcm", ...extra }),
  });
  const text = await r.text();
  return { status: r.status, text, body: JSON.parse(text) };
}

async function ownerOfToken(): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ node: string }>("SELECT node FROM push_tokens WHERE token = $1", [
    TOKEN,
  ]);
  return rows[0]?.node;
}

/** Moves the token's registration back in time: Alice's phone has not registered it since. */
const ageRegistration = (days: number) =>
  db.pool.query(`UPDATE push_tokens SET updated_at = now() - make_interval(days => $1) WHERE token = $2`, [
    days,
    TOKEN,
  ]);

describe("a token registered by a second user", () => {
  it("is refused with 409 token_in_use, the answer naming nobody, nothing changed", async () => {
    expect((await register(ALICE, { deviceSecret: ALICES_INSTALL })).status).toBe(200);

    const stolen = await register(MALLORY);
    expect(stolen.status).toBe(409);
    expect(stolen.body.error.code).toBe("token_in_use");
    // neither the owner's number (with or without +) nor their JID, nor a date
    expect(stolen.text).not.toContain(ALICE.node);
    expect(stolen.text).not.toMatch(/\d{4}-\d{2}-\d{2}/);
    expect(await ownerOfToken()).toBe(ALICE.node);

    // guessing the install's secret is the same refusal
    const guessed = await register(MALLORY, { deviceSecret: "guessed-secret-0000000000" });
    expect(guessed.status).toBe(409);
    expect(guessed.body.error.code).toBe("token_in_use");
    expect(await ownerOfToken()).toBe(ALICE.node);
  });

  it("moves with the same install's deviceSecret, answered exactly as a new token is", async () => {
    const fresh = await register(ALICE, { deviceSecret: ALICES_INSTALL });
    // the same phone, the app now registered under another number
    const moved = await register(BOB, { deviceSecret: ALICES_INSTALL });
    expect(moved.status).toBe(200);
    expect(moved.body).toEqual(fresh.body);
    expect(moved.body).toEqual({ stored: true, outcome: "new", app: "OyoChat", evicted: 0 });
    expect(await ownerOfToken()).toBe(BOB.node);
    // whose it was is in the debug log only, never at info
    const lines = logLines.filter((l) => l.msg === "push token moved");
    expect(lines.map((l) => l.level)).toEqual([20]);
    expect(logLines.filter((l) => l.level >= 30).map((l) => JSON.stringify(l))).not.toContainEqual(
      expect.stringContaining(ALICE.node),
    );
  });

  it(`moves without proof only once the old registration is ${MOVE_AFTER_DAYS} days old`, async () => {
    await register(ALICE);
    await ageRegistration(MOVE_AFTER_DAYS - 1);
    expect((await register(MALLORY)).status).toBe(409);
    await ageRegistration(MOVE_AFTER_DAYS + 1);
    const taken = await register(MALLORY);
    expect(taken.body).toEqual({ stored: true, outcome: "new", app: "OyoChat", evicted: 0 });
    expect(await ownerOfToken()).toBe(MALLORY.node);
  });

  it("stays the owner's while their phone keeps registering it", async () => {
    await register(ALICE);
    await ageRegistration(MOVE_AFTER_DAYS - 1);
    expect((await register(MALLORY)).status).toBe(409);
    // the owner's phone registering again renews it: the clock starts over
    expect((await register(ALICE)).body.outcome).toBe("refreshed");
    await ageRegistration(2);
    expect((await register(MALLORY)).status).toBe(409);
  });
});
