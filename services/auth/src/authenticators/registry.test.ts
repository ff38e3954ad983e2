import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { makeCertificate } from "../../../../test/support/certificates.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { buildRegistry } from "./registry.ts";

/** The test backends listen on loopback: listed, as an operator lists a backend on a private address. */
const LOCAL_BACKEND = ["127.0.0.1", "localhost"];

const log = pino({ level: "silent" });
let db: TestDatabase;

/** A fake REST backend: records what it was sent, answers as told. */
interface Backend {
  url: string;
  seen: { path: string; body: Record<string, unknown>; headers: http.IncomingHttpHeaders }[];
  answer: (body: Record<string, unknown>) => { status: number; json?: unknown; delayMs?: number };
  close(): Promise<void>;
}

async function startBackend(tls?: { cert: string; key: string }): Promise<Backend> {
  const backend: Backend = {
    url: "",
    seen: [],
    answer: () => ({ status: 200, json: { ok: true } }),
    close: async () => {},
  };
  const handler: http.RequestListener = (req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => {
      raw += c.toString();
    });
    req.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      backend.seen.push({ path: req.url ?? "", body, headers: req.headers });
      const a = backend.answer(body);
      setTimeout(() => {
        res.writeHead(a.status, { "content-type": "application/json" });
        res.end(a.json === undefined ? "" : JSON.stringify(a.json));
      }, a.delayMs ?? 0);
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  backend.url = `${tls ? "https" : "http"}://${tls ? "localhost" : "127.0.0.1"}:${port}`;
  backend.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return backend;
}

function config(domains: Record<string, unknown>): Pick<Config, "domains"> {
  return loadConfig({ env: { APP_ENV: "test" }, overrides: { domains } });
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe("authenticator registry", () => {
  it("refuses bad options and a missing module before anything listens, naming the domain and the fix", async () => {
    await expect(
      buildRegistry(config({ "a.test": { authenticator: { kind: "http", options: { url: "ftp://x" } } } }), {
        pool: db.pool,
        log,
      }),
    ).rejects.toThrow(/^domains\.a\.test\.authenticator \(http\): url: .*; fix the options in config$/);
    await expect(
      buildRegistry(config({ "b.test": { authenticator: { kind: "http", options: {} } } }), {
        pool: db.pool,
        log,
      }),
    ).rejects.toThrow(/domains\.b\.test\.authenticator \(http\): url: /);
    await expect(
      buildRegistry(config({ "nomodule.test": { authenticator: { kind: "module" } } }), {
        pool: db.pool,
        log,
      }),
    ).rejects.toThrow(/authenticator "module" needs .*externals-auth\/nomodule\.test\.ts; create it/);
  });

  it("asks an http backend, with its headers, and tells no from could-not-tell", async () => {
    const backend = await startBackend();
    try {
      const registry = await buildRegistry(
        config({
          "ext.test": {
            authenticator: {
              kind: "http",
              options: {
                url: `${backend.url}/check`,
                timeoutMs: 300,
                headers: { "x-api-key": "k1" },
                allowTargets: LOCAL_BACKEND,
              },
            },
          },
        }),
        { pool: db.pool, log },
      );
      const a = registry.get("ext.test")?.authenticator;
      const jid = { node: "joe", domain: "ext.test" };
      backend.answer = (b) => ({ status: 200, json: { ok: b.password === "right" } });
      expect(await a?.checkPassword(jid, "right")).toEqual({ ok: true });
      expect(await a?.checkPassword(jid, "wrong")).toEqual({ ok: false, reason: "bad_password" });
      expect(backend.seen[0]).toMatchObject({
        path: "/check",
        body: { username: "joe", domain: "ext.test", password: "right" },
        headers: { "x-api-key": "k1", "content-type": "application/json" },
      });
      backend.answer = () => ({ status: 404 });
      expect(await a?.checkPassword(jid, "x")).toEqual({ ok: false, reason: "unknown_user" });
      backend.answer = () => ({ status: 500 });
      await expect(a?.checkPassword(jid, "x")).rejects.toThrow(/backend answered 500/);
      backend.answer = () => ({ status: 200, json: { ok: true }, delayMs: 1000 });
      const t0 = Date.now();
      await expect(a?.checkPassword(jid, "x")).rejects.toThrow(/did not answer within 300 ms/);
      expect(Date.now() - t0).toBeLessThan(900);
      expect(await a?.userExists(jid)).toBe(false); // no userExistsUrl configured
    } finally {
      await backend.close();
    }
  });

  it("trusts an https backend through its configured CA only", async () => {
    const cert = await makeCertificate("localhost");
    const backend = await startBackend(cert);
    const caFile = path.join(mkdtempSync(path.join(tmpdir(), "sidecars-ca-")), "ca.pem");
    writeFileSync(caFile, cert.cert);
    try {
      const build = (tls: unknown) =>
        buildRegistry(
          config({
            "tls.test": {
              authenticator: {
                kind: "http",
                options: { url: `${backend.url}/c`, tls, allowTargets: LOCAL_BACKEND },
              },
            },
          }),
          {
            pool: db.pool,
            log,
          },
        );
      const jid = { node: "joe", domain: "tls.test" };
      const trusted = (await build({ ca: caFile })).get("tls.test")?.authenticator;
      expect(await trusted?.checkPassword(jid, "pw")).toEqual({ ok: true });
      const untrusted = (await build({})).get("tls.test")?.authenticator;
      await expect(untrusted?.checkPassword(jid, "pw")).rejects.toThrow(/backend unreachable/);
    } finally {
      await backend.close();
    }
  });

  it("loads a domain module (the example maps joe\\40example.com to the address the backend knows)", async () => {
    const backend = await startBackend();
    try {
      backend.answer = (b) => ({
        status: 200,
        json: { ok: b.username === "joe@example.com" && b.password === "pw" },
      });
      const registry = await buildRegistry(
        config({
          "example.org": {
            authenticator: {
              kind: "module",
              options: { url: `${backend.url}/check`, allowTargets: LOCAL_BACKEND },
            },
          },
        }),
        { pool: db.pool, log },
      );
      const a = registry.get("example.org")?.authenticator;
      expect(await a?.checkPassword({ node: "joe\\40example.com", domain: "example.org" }, "pw")).toEqual({
        ok: true,
      });
      expect(await a?.checkPassword({ node: "joe#example.com", domain: "example.org" }, "pw")).toEqual({
        ok: true,
      });
      expect(
        await a?.checkPassword({ node: "ann\\40example.com", domain: "example.org" }, "pw"),
      ).toMatchObject({ ok: false });
    } finally {
      await backend.close();
    }
  });

  it("reads a changed module anew at the next build (SIGHUP)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sidecars-externals-"));
    const file = path.join(dir, "mod.test.ts");
    const write = (answer: boolean) =>
      writeFileSync(
        file,
        `export default () => ({ kind: "module", checkPassword: async () => (${answer} ? { ok: true } : { ok: false, reason: "bad_password" }), userExists: async () => ${answer} });\n`,
      );
    const cfg = config({ "mod.test": { authenticator: { kind: "module" } } });
    const jid = { node: "x", domain: "mod.test" };
    write(false);
    const first = await buildRegistry(cfg, { pool: db.pool, log, externalsDir: dir });
    expect(await first.get("mod.test")?.authenticator.userExists(jid)).toBe(false);
    write(true);
    const second = await buildRegistry(cfg, { pool: db.pool, log, externalsDir: dir });
    expect(await second.get("mod.test")?.authenticator.userExists(jid)).toBe(true);
  });
});
