import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { PgBoss } from "pg-boss";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { eventually } from "../../../../../test/support/eventually.ts";
import { createJobQueue } from "../jobs.ts";
import { buddiesUrl, createRelay, type Relay, type RelayedAction } from "./relay.ts";

/**
 * The relay of replies and resolves, through a real pg-boss on a test database to a local HTTP server
 * standing for a callback URL and for the buddies service: retried until it answers 2xx, a try that takes
 * too long retried, a buddy's hook called with the hook key, giving up with a logged error.
 */

const ATTEMPTS = 3;
const TIMEOUT_MS = 300;
const HOOK_KEY = "bk_hook_key_for_tests";

interface Received {
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** A local server: answers each path with the statuses scripted for it in order (the last repeating). */
async function callbackServer() {
  const received: Received[] = [];
  const scripts = new Map<string, (number | "hang")[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      received.push({
        path,
        authorization: req.headers.authorization,
        contentType: req.headers["content-type"],
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
      });
      const script = scripts.get(path) ?? [200];
      const answer = script.length > 1 ? script.shift() : script[0];
      if (answer === "hang") return; // never answered: the relay's timeout ends the try
      res.writeHead(answer ?? 200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received: (path: string) => received.filter((r) => r.path === path),
    script: (path: string, ...answers: (number | "hang")[]) => scripts.set(path, answers),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Until `check` holds, polling (the shared `eventually`). */
const waitFor = (what: string, check: () => boolean, ms = 20_000) =>
  eventually(async () => check(), ms, what);

function action(notificationId: string, over: Partial<RelayedAction> = {}): RelayedAction {
  return {
    notificationId,
    action: "reply",
    text: "on my way",
    from: "306900000001@oyo.test",
    at: new Date().toISOString(),
    ...over,
  };
}

/** A relay on its own database, logging to `logs`. */
async function relayWith(hookKey: string | undefined, buddies: string) {
  const db = await createTestDatabase();
  const logs: { level: number; msg: string; err?: string }[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const boss = createJobQueue({ pool: db.pool, log });
  await boss.start();
  const relay = createRelay({
    boss,
    log,
    // the callback server is on loopback: listed, as an operator lists an internal target
    relay: { attempts: ATTEMPTS, timeoutMs: TIMEOUT_MS, allowTargets: ["127.0.0.1"] },
    buddiesUrl: buddies,
    hookKey,
    retryDelaySeconds: 1,
    pollingIntervalSeconds: 0.5,
  });
  await relay.start();
  return { db, boss, relay, logs };
}

let server: Awaited<ReturnType<typeof callbackServer>>;
let withKey: { db: TestDatabase; boss: PgBoss; relay: Relay; logs: { level: number; msg: string }[] };
let withoutKey: typeof withKey;

beforeAll(async () => {
  server = await callbackServer();
  withKey = await relayWith(HOOK_KEY, server.url);
  withoutKey = await relayWith(undefined, server.url);
});

afterAll(async () => {
  for (const r of [withKey, withoutKey]) {
    await r?.relay.stop();
    await r?.boss.stop({ graceful: false });
    await r?.db.drop();
  }
  await server?.close();
});

describe.concurrent("relay", () => {
  it("POSTs the action as JSON to the callback URL, retrying until it answers 2xx", async () => {
    server.script("/cb/retried?secret=s", 503, 500, 204);
    const sent = action("5b0f4f6e-0000-4000-8000-000000000001");
    await withKey.relay.enqueue({ kind: "url", url: `${server.url}/cb/retried?secret=s` }, sent);
    await waitFor("three tries", () => server.received("/cb/retried?secret=s").length === 3);
    const tries = server.received("/cb/retried?secret=s");
    expect(tries.map((t) => t.body)).toEqual([sent, sent, sent]);
    expect(tries[0]?.contentType).toBe("application/json");
    expect(tries[0]?.authorization).toBeUndefined();
    // delivered: no fourth try
    await new Promise((r) => setTimeout(r, 2500));
    expect(server.received("/cb/retried?secret=s")).toHaveLength(3);
    expect(withKey.logs.some((l) => l.msg === "relayed")).toBe(true);
  });

  it("retries a try that got no answer within push.relay.timeoutMs", async () => {
    server.script("/cb/slow", "hang", 200);
    const sent = action("5b0f4f6e-0000-4000-8000-000000000002", { action: "resolve", text: undefined });
    await withKey.relay.enqueue({ kind: "url", url: `${server.url}/cb/slow` }, sent);
    await waitFor("two tries", () => server.received("/cb/slow").length === 2);
    expect(server.received("/cb/slow")[1]?.body).toEqual(JSON.parse(JSON.stringify(sent)));
  });

  it("calls a buddy's notification-action hook on the buddies service with the hook key", async () => {
    const sent = action("5b0f4f6e-0000-4000-8000-000000000003");
    await withKey.relay.enqueue({ kind: "buddy", jid: "zabbix@oyo.test" }, sent);
    const path = "/hooks/oyo.test/zabbix/notification-action";
    await waitFor("the hook", () => server.received(path).length === 1);
    expect(server.received(path)[0]).toMatchObject({ authorization: `Bearer ${HOOK_KEY}`, body: sent });
  });

  it("gives up after push.relay.attempts tries, logging an error", async () => {
    server.script("/cb/down?token=secret", 500);
    await withKey.relay.enqueue(
      { kind: "url", url: `${server.url}/cb/down?token=secret` },
      action("5b0f4f6e-0000-4000-8000-000000000004"),
    );
    await waitFor("the last try", () => server.received("/cb/down?token=secret").length === ATTEMPTS);
    await waitFor("the error", () => withKey.logs.some((l) => l.level === 50 && /gave up/.test(l.msg)));
    const error = withKey.logs.find((l) => l.level === 50);
    expect(error?.msg).toBe(`relay gave up after ${ATTEMPTS} tries: ${server.url}/cb/down answered 500`);
    expect(JSON.stringify(withKey.logs)).not.toContain("token=secret");
  });

  it("fails to relay to a buddy without BUDDIES_HOOK_KEY, with an error naming it", async () => {
    await withoutKey.relay.enqueue(
      { kind: "buddy", jid: "zabbix@oyo.test" },
      action("5b0f4f6e-0000-4000-8000-000000000005"),
    );
    await waitFor("the error", () => withoutKey.logs.some((l) => l.level === 50), 30_000);
    const error = withoutKey.logs.find((l) => l.level === 50);
    expect(error?.msg).toMatch(
      new RegExp(
        `^relay gave up after ${ATTEMPTS} tries: cannot call the hook of buddy zabbix@oyo.test: BUDDIES_HOOK_KEY is not set`,
      ),
    );
    expect(
      withoutKey.logs.filter((l) => l.level === 40 && l.msg === "relay try failed; retrying"),
    ).toHaveLength(ATTEMPTS - 1);
  }, 40_000);
});

describe("buddiesUrl", () => {
  it("is the buddies listener, a wildcard address read as loopback", () => {
    const of = (host: string, port: number) =>
      buddiesUrl({ services: { buddies: { host, port } } } as Parameters<typeof buddiesUrl>[0]);
    expect(of("127.0.0.1", 5281)).toBe("http://127.0.0.1:5281");
    expect(of("0.0.0.0", 5281)).toBe("http://127.0.0.1:5281");
    expect(of("::1", 5281)).toBe("http://[::1]:5281");
    expect(of("buddies.internal", 80)).toBe("http://buddies.internal:80");
  });
});
