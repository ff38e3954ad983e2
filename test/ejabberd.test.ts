import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { addUser } from "#common/users/web-users.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { type Ejabberd, ejabberdUnavailable, login, startEjabberd } from "./support/ejabberd.ts";
import { ROOT } from "./support/processes.ts";

/**
 * ejabberd 23.01 (Debian) logging users in through `sidecars extauth`: web_users passwords, a domain with an
 * `http` authenticator (a REST backend started here) and a buddy of that domain checked against web_users.
 */

const unavailable = ejabberdUnavailable();

/** The REST backend of ext.test: the password `rest-pass` is right for anyone; `failing` makes it answer 500. */
function startBackend() {
  const calls: string[] = [];
  const state = { failing: false };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      const { username, domain, password } = JSON.parse(body) as Record<string, string>;
      calls.push(`${username}@${domain}`);
      if (state.failing) {
        res.writeHead(500).end();
        return;
      }
      const ok = req.url === "/check" && password === "rest-pass";
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok }));
    });
  });
  const listening = new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  return { calls, state, listening, close: () => new Promise((r) => server.close(r)) };
}

// Not skipped when ejabberd cannot run here: a run that cannot check the XMPP path fails and says why.
describe("ejabberd with external auth", () => {
  let db: TestDatabase;
  let ej: Ejabberd;
  let config: Config;
  const backend = startBackend();

  beforeAll(async () => {
    if (unavailable) throw new Error(`ejabberd end-to-end tests cannot run: ${unavailable}`);
    db = await createTestDatabase();
    const backendPort = await backend.listening;
    const testJson = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8"));
    const domains = {
      localhost: { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
      "ext.test": {
        authenticator: {
          kind: "http",
          // the test backend is on loopback: listed, as an operator lists a backend on a private address
          options: { url: `http://127.0.0.1:${backendPort}/check`, allowTargets: ["127.0.0.1"] },
        },
        passwordFormat: "plain",
        buddies: ["zabbix"],
      },
    };
    const started = Date.now();
    ej = await startEjabberd({
      hosts: ["localhost", "ext.test"],
      files: {
        "config/default.json": readFileSync(path.join(ROOT, "config/default.json"), "utf8"),
        "config/test.json": JSON.stringify({
          ...testJson,
          log: { level: "debug", pretty: false },
          domains,
        }),
      },
      extauthEnv: (dir) => ({
        APP_ENV: "test",
        DATABASE_URL: db.url,
        CONFIG_DIR: path.join(dir, "config"),
      }),
    });
    console.info(`ejabberd started in ${Date.now() - started} ms`);
    config = loadConfig({ configDir: path.join(ej.dir, "config"), env: { APP_ENV: "test" } });
    const add = (node: string, domain: "localhost" | "ext.test", password: string) =>
      addUser(
        db.pool,
        { node, domain },
        { cleartext: password },
        config.domains[domain] as Config["domains"][string],
      );
    await add("alice", "localhost", "alice: pässwörd:");
    await add("zabbix", "ext.test", "buddy-pw");
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === "fail") console.error(await ej?.logs());
  });

  afterAll(async () => {
    await ej?.stop();
    await backend.close();
    await db?.drop();
  });

  const at = (domain: string, username: string, password: string) =>
    login({ port: ej.tlsPort, ca: ej.ca, domain, username, password });
  const refused = { condition: "not-authorized" };

  it("logs a web_users user in with the right password (':' and UTF-8 included)", async () => {
    await expect(at("localhost", "alice", "alice: pässwörd:")).resolves.toBe("alice@localhost/test");
  });

  it("refuses a wrong password and an unknown user", async () => {
    await expect(at("localhost", "alice", "alice: pässwörd")).rejects.toMatchObject(refused);
    await expect(at("localhost", "nobody", "whatever")).rejects.toMatchObject(refused);
  });

  it("checks an http domain against its REST backend", async () => {
    await expect(at("ext.test", "rest-user", "rest-pass")).resolves.toBe("rest-user@ext.test/test");
    await expect(at("ext.test", "rest-user", "wrong")).rejects.toMatchObject(refused);
    expect(backend.calls).toContain("rest-user@ext.test");
  });

  it("checks a buddy of that domain against web_users, never the backend", async () => {
    await expect(at("ext.test", "zabbix", "buddy-pw")).resolves.toBe("zabbix@ext.test/test");
    await expect(at("ext.test", "zabbix", "rest-pass")).rejects.toMatchObject(refused);
    expect(backend.calls).not.toContain("zabbix@ext.test");
  });

  it("refuses while a backend fails, and the same extauth program goes on serving", async () => {
    backend.state.failing = true;
    try {
      // another user than before: a successful check is cached (cacheTtlSeconds) and would not reach it
      await expect(at("ext.test", "rest-other", "rest-pass")).rejects.toMatchObject(refused);
    } finally {
      backend.state.failing = false;
    }
    await expect(at("localhost", "alice", "alice: pässwörd:")).resolves.toBe("alice@localhost/test");
    expect(await ej.extauthPids()).toHaveLength(1); // never restarted by ejabberd
  });

  it("the extauth program exits when ejabberd stops", async () => {
    const pids = await ej.extauthPids();
    await ej.stop();
    const until = Date.now() + 10_000;
    const alive = () =>
      pids.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
    while (alive().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toEqual([]);
  });
});
