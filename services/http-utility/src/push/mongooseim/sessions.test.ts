import http from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import { routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { deadPort } from "../../../../../test/support/free-port.ts";
import { recordingLogger } from "../../../../../test/support/recording-logger.ts";
import { resolveInternalCaller } from "../../callers.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { Owner } from "../token-store.ts";
import { mongooseImRoutes } from "./routes.ts";

/**
 * MongooseIM 2.1.0 calls the chat hook for every message, online or not: with `push.hooks.sessions` only a
 * receiver without a session is pushed, as a local stand-in of MongooseIM's admin REST API (`GET
 * /api/sessions/<host>`, mod_commands' list_sessions) lists them. The hook is called over HTTP as MongooseIM
 * calls it; the notifier records whom it was asked to push.
 */

class RecordingNotifier implements Notifier {
  pushed: string[] = [];
  async toToken(): Promise<TokenResult> {
    throw new Error("not used");
  }
  async toTokens(): Promise<TokenResult[]> {
    throw new Error("not used");
  }
  async toUser(owner: Owner): Promise<TokenResult[]> {
    this.pushed.push(`${owner.node}@${owner.domain}`);
    return [{ service: "fcm", token: "t", status: "sent" }];
  }
}

const { log, text: logText, clear: clearLog } = recordingLogger({ level: "debug" });
const SETTLED = { timeout: 10_000, interval: 20 };

let db: TestDatabase;
let mongooseim: http.Server;
let mongooseimUrl: string;
/** The sessions the stand-in lists per host, and the calls it got. */
const sessions = new Map<string, string[]>();
const calls: string[] = [];
let failing = false;
const servers: RunningServer[] = [];
let down: { port: number; close(): Promise<void> };

beforeAll(async () => {
  db = await createTestDatabase();
  mongooseim = http.createServer((req, res) => {
    calls.push(req.url ?? "");
    const host = decodeURIComponent(/^\/api\/sessions\/([^/]+)$/.exec(req.url ?? "")?.[1] ?? "");
    if (failing || !host) {
      res.writeHead(failing ? 500 : 404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(sessions.get(host) ?? []));
  });
  await new Promise<void>((resolve) => mongooseim.listen(0, "127.0.0.1", resolve));
  mongooseimUrl = `http://127.0.0.1:${(mongooseim.address() as { port: number }).port}/api`;
  down = await deadPort();
});

afterAll(async () => {
  for (const s of servers) await s.close(100);
  await new Promise((resolve) => mongooseim?.close(resolve));
  await down?.close();
  await db?.drop();
});

beforeEach(() => {
  sessions.clear();
  calls.length = 0;
  failing = false;
  clearLog();
});

/** The internal app as app.ts builds it, with these `push.hooks.sessions`; answers a function calling its hook. */
async function hookWith(sessionsConfig: Record<string, unknown>) {
  const config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: { push: { hooks: { sessions: sessionsConfig } } },
  });
  const notifier = new RecordingNotifier();
  const app = createBaseApp({ service: "http-utility", config, log, pool: db.pool });
  app.use(
    routesRouter(mongooseImRoutes({ pool: db.pool, config, notifier, log }), {
      resolveCaller: resolveInternalCaller,
    }),
  );
  const server = await startServer(finishApp(app, log), {
    name: "internal",
    host: "127.0.0.1",
    port: 0,
    log,
  });
  servers.push(server);
  const send = async (receiver: string, server_ = "oyo.test") => {
    // as mod_http_notification sends it: a form, values not encoded
    const r = await fetch(`http://127.0.0.1:${server.port}/api/v1/mongooseim/messages`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `author=306900000001&server=${server_}&receiver=${receiver}&message=hi`,
    });
    expect(r.status).toBe(204);
  };
  return { send, notifier };
}

describe("chat pushes with MongooseIM 2.1.0's session list (push.hooks.sessions)", () => {
  it("pushes a receiver with no session and not one who is connected (JIDs compared case-insensitively)", async () => {
    const { send, notifier } = await hookWith({ url: mongooseimUrl, cacheMs: 0 });
    sessions.set("oyo.test", ["306900000002@oyo.test/phone", "Alice@OYO.test/desktop"]);
    await send("306900000002");
    await send("alice");
    await send("306900000003");
    await vi.waitFor(() => expect(notifier.pushed).toEqual(["306900000003@oyo.test"]), SETTLED);
    // both online receivers' lookups done (not only the first): none of this test's calls may still be on its
    // way to the fake MongooseIM when the next test starts counting
    await vi.waitFor(
      () => expect(logText().split("chat message not pushed: receiver online").length - 1).toBe(2),
      SETTLED,
    );
    expect(calls.every((c) => c === "/api/sessions/oyo.test")).toBe(true);

    // the receiver disconnects: the next message is pushed
    sessions.set("oyo.test", []);
    await send("306900000002");
    await vi.waitFor(() => expect(notifier.pushed).toContain("306900000002@oyo.test"), SETTLED);
  });

  it("asks once per host and period, however many messages arrive", async () => {
    const { send, notifier } = await hookWith({ url: mongooseimUrl, cacheMs: 60_000 });
    sessions.set("oyo.test", ["306900000002@oyo.test/phone"]);
    await Promise.all(Array.from({ length: 20 }, () => send("306900000003")));
    await vi.waitFor(() => expect(notifier.pushed).toHaveLength(20), SETTLED);
    expect(calls).toEqual(["/api/sessions/oyo.test"]);
    await send("306900000003", "other.test");
    await vi.waitFor(
      () => expect(calls).toEqual(["/api/sessions/oyo.test", "/api/sessions/other.test"]),
      SETTLED,
    );
  });

  it("pushes when the list cannot be had, unless onError is skip; says so in the log", async () => {
    const open = await hookWith({ url: mongooseimUrl, cacheMs: 0 });
    failing = true;
    await open.send("306900000002");
    await vi.waitFor(() => expect(open.notifier.pushed).toEqual(["306900000002@oyo.test"]), SETTLED);
    expect(logText()).toContain("MongooseIM sessions unavailable");

    const closed = await hookWith({ url: `http://127.0.0.1:${down.port}/api`, cacheMs: 0, onError: "skip" });
    await closed.send("306900000002");
    await vi.waitFor(() => expect(logText()).toContain("chat message not pushed"), SETTLED);
    expect(closed.notifier.pushed).toEqual([]);
  });

  it("refuses a sessions URL that is not http(s) when the config loads", () => {
    expect(() =>
      loadConfig({
        env: { APP_ENV: "test" },
        overrides: { push: { hooks: { sessions: { url: "ftp://x/api" } } } },
      }),
    ).toThrow(/push\.hooks\.sessions\.url/);
  });
});
