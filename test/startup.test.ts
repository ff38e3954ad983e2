import { cpSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import https from "node:https";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCertificate } from "./support/certificates.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { eventually } from "./support/eventually.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT, runService } from "./support/processes.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

/** A copy of config/ with one environment file changed. */
function configWith(file: string, content: string | object): string {
  const dir = mkdtempSync(path.join(tmpdir(), "sidecars-config-"));
  cpSync(path.join(ROOT, "config"), dir, { recursive: true });
  writeFileSync(path.join(dir, file), typeof content === "string" ? content : JSON.stringify(content));
  return dir;
}

/** The backends of services' LISTEN connections (common/db/listener.ts) on the test's database. */
async function listenerBackends(): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'xmpp-sidecars-listener'",
  );
  return rows.map((r) => r.pid);
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  return lines[0] as string;
}

describe("every service", () => {
  it.each(["http-utility", "auth", "buddies"])(
    "%s starts, tells pm2 it is ready, answers, and stops on SIGTERM",
    async (service) => {
      const port = await freePort();
      const env = {
        DATABASE_URL: db.url,
        HTTP_UTILITY_PORT: String(port),
        AUTH_PORT: String(port),
        BUDDIES_ADMIN_PORT: String(port),
        AUTH_BASIC_AUTH: "mongooseim:s3cret",
        LOG_LEVEL: "info",
      };
      let health: unknown;
      let listeners: number[] = [];
      const exited = await runService(service, env, (child) => {
        fetch(`http://127.0.0.1:${port}/healthz`)
          .then((r) => r.json())
          .then(async (body) => {
            health = body;
            // one LISTEN connection per process, whoever in it listens (common/service.ts)
            listeners = await eventually(
              async () => {
                const pids = await listenerBackends();
                return pids.length > 0 && pids;
              },
              10_000,
              "a LISTEN connection",
            );
          })
          .finally(() => child.kill("SIGTERM"));
      });
      expect(exited).toMatchObject({ code: 0, ready: true, stderr: "" });
      expect(health).toEqual({ status: "ok" });
      expect(listeners).toHaveLength(1);
      const lines = exited.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { msg: string; url?: string });
      expect(lines.map((l) => l.msg)).toEqual([
        `${service} listening`,
        "shutting down: finishing in-flight requests",
        "stopped",
      ]);
    },
  );
});

describe("a service that cannot start", () => {
  it("exits 1 with one line for a malformed config file", async () => {
    const dir = configWith("test.json", '{ "log": { "level": "info" ');
    const r = await runService("http-utility", { CONFIG_DIR: dir, DATABASE_URL: db.url });
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(
      /^config: .*test\.json: not valid JSON \(.*\); fix the file or restore it from git$/,
    );
  });

  it("exits 1 listing every config problem with its key", async () => {
    const dir = configWith("test.json", {
      services: { auth: { host: "0.0.0.0" }, httpUtility: { port: -1 } },
    });
    const r = await runService("auth", { CONFIG_DIR: dir, DATABASE_URL: db.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^config: 2 problems:\n/);
    expect(r.stderr).toMatch(/ {2}- services\.httpUtility\.port: /);
    expect(r.stderr).toMatch(
      / {2}- services\.auth\.host: is not loopback: use 127\.0\.0\.1, or set services\.auth\.allowNonLoopback/,
    );
  });

  it("exits 1 with one line when its port is taken", async () => {
    const port = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", r));
    try {
      const r = await runService("http-utility", { DATABASE_URL: db.url, HTTP_UTILITY_PORT: String(port) });
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toBe(
        `http-utility: 127.0.0.1:${port} is already in use; stop the other process or choose another port (HTTP_UTILITY_PORT)`,
      );
    } finally {
      blocker.close();
    }
  });

  it("exits 1 with one line when the database is unreachable", async () => {
    const url = `postgres://sidecars:pw@127.0.0.1:${await freePort()}/nothing`;
    const r = await runService("auth", { DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(
      /^database 127\.0\.0\.1:\d+\/nothing unreachable \(ECONNREFUSED\): start it .* or fix DATABASE_URL$/,
    );
  });

  it("exits 1 with one line when a certificate is missing", async () => {
    const prod = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8"));
    prod.services.httpUtility.tls = { cert: "/nonexistent/server.crt", key: "/nonexistent/server.key" };
    const r = await runService("http-utility", {
      CONFIG_DIR: configWith("test.json", prod),
      DATABASE_URL: db.url,
    });
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(
      /^TLS certificate \/nonexistent\/server\.crt: cannot be read \(ENOENT\); create the ssl\/ links/,
    );
  });
});

describe("http-utility over TLS", () => {
  it("serves the renewed certificate as soon as it gets SIGHUP", async () => {
    const [first, second] = await Promise.all([makeCertificate("first"), makeCertificate("second")]);
    const dir = mkdtempSync(path.join(tmpdir(), "sidecars-ssl-"));
    writeFileSync(path.join(dir, "server.crt"), first.cert);
    writeFileSync(path.join(dir, "server.key"), first.key);
    const config = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8"));
    config.services.httpUtility.tls = {
      cert: path.join(dir, "server.crt"),
      key: path.join(dir, "server.key"),
    };
    const port = await freePort();
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        https
          .get(
            { host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false, agent: false },
            (res) => {
              res.resume();
              resolve((res.socket as TLSSocket).getPeerCertificate().fingerprint256);
            },
          )
          .on("error", reject);
      });
    let seen: string[] = [];
    const exited = await runService(
      "http-utility",
      { CONFIG_DIR: configWith("test.json", config), DATABASE_URL: db.url, HTTP_UTILITY_PORT: String(port) },
      async (child) => {
        try {
          seen.push(await fingerprint());
          for (const [name, pem] of [
            ["server.crt", second.cert],
            ["server.key", second.key],
          ] as const) {
            writeFileSync(path.join(dir, `${name}.new`), pem);
            renameSync(path.join(dir, `${name}.new`), path.join(dir, name));
          }
          child.kill("SIGHUP");
          await new Promise((r) => setTimeout(r, 300)); // well before the 2 s file poll would notice
          seen.push(await fingerprint());
        } catch (err) {
          seen = [String(err)];
        } finally {
          child.kill("SIGTERM");
        }
      },
    );
    expect(exited).toMatchObject({ code: 0, ready: true });
    expect(seen).toEqual([first.fingerprint256, second.fingerprint256]);
  });
});
