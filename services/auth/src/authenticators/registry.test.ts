import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { type Config, configSchema } from "#common/config/schema.ts";
import { StartupProblems } from "#common/errors.ts";
import { makeCertificate } from "../../../../test/support/certificates.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { createAuthenticatorKinds, createAuthenticators } from "./registry.ts";

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
  it("has every kind named in the config reference (the config schema cannot import the registry)", () => {
    const described =
      configSchema.shape.domains.valueType.shape.authenticator.unwrap().shape.kind.description;
    for (const kind of createAuthenticatorKinds().kinds) expect(described).toContain(`\`${kind}\``);
  });

  it("refuses bad options and a missing module before anything listens, naming the key and the fix", async () => {
    await expect(
      createAuthenticators(
        config({ "a.test": { authenticator: { kind: "http", options: { url: "ftp://x" } } } }),
        { pool: db.pool, log },
      ),
    ).rejects.toThrow(/^domains\.a\.test\.authenticator\.options\.url: [^\n]+$/);
    await expect(
      createAuthenticators(config({ "b.test": { authenticator: { kind: "http", options: {} } } }), {
        pool: db.pool,
        log,
      }),
    ).rejects.toThrow(
      /^domains\.b\.test\.authenticator\.options\.url: required: where password checks are POSTed$/,
    );
    await expect(
      createAuthenticators(config({ "nomodule.test": { authenticator: { kind: "module" } } }), {
        pool: db.pool,
        log,
      }),
    ).rejects.toThrow(
      /^domains\.nomodule\.test\.authenticator: kind "module" needs a module: create .*externals-auth\/nomodule\.test\.ts /,
    );
  });

  it("refuses an unknown kind, and options web_users does not take, listing every domain's problem at once", async () => {
    const err = await createAuthenticators(
      config({
        "a.test": { authenticator: { kind: "ldapp" } },
        "b.test": { authenticator: { kind: "web_users", options: { url: "https://meant.for/http" } } },
        "c.test": { authenticator: { kind: "web_users" } },
      }),
      { pool: db.pool, log },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupProblems);
    expect((err as StartupProblems).problems).toEqual([
      'domains.a.test.authenticator: kind "ldapp" is unknown: use one of web_users, http, module, jwt, ldap (docs/auth.md)',
      "domains.b.test.authenticator.options.url: unknown key: none is taken here: remove it",
    ]);
    expect((err as Error).message).toMatch(/^2 problems:\n {2}- domains\.a\.test/);
  });

  it("asks an http backend, with its headers, and tells no from could-not-tell", async () => {
    const backend = await startBackend();
    try {
      const registry = await createAuthenticators(
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
        createAuthenticators(
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
      const registry = await createAuthenticators(
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
    const first = await createAuthenticators(cfg, { pool: db.pool, log, externalsDir: dir });
    expect(await first.get("mod.test")?.authenticator.userExists(jid)).toBe(false);
    write(true);
    const second = await createAuthenticators(cfg, { pool: db.pool, log, externalsDir: dir });
    expect(await second.get("mod.test")?.authenticator.userExists(jid)).toBe(true);
  });

  it("checks the options of a module defined with defineAuthenticator, and says what is wrong with a module", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sidecars-externals-"));
    writeFileSync(
      path.join(dir, "typed.test.js"),
      `export default {
        kind: "module",
        summary: "a module with options",
        options: { parse: (o) => o, safeParse: (o) => o.realm ? { success: true, data: o } : { success: false, error: { issues: [{ code: "invalid_type", path: ["realm"], message: "Invalid input: expected string, received undefined" }] } } },
        create: (o) => ({ kind: "module", checkPassword: async () => ({ ok: true }), userExists: async () => o.realm === "r" }),
      };\n`,
    );
    writeFileSync(
      path.join(dir, "nocreate.test.js"),
      'export default { summary: "x", options: { parse: (o) => o } };\n',
    );
    writeFileSync(path.join(dir, "broken.test.js"), "export default {\n");
    const build = (domains: Record<string, unknown>) =>
      createAuthenticators(config(domains), { pool: db.pool, log, externalsDir: dir });
    const good = await build({
      "typed.test": { authenticator: { kind: "module", options: { realm: "r" } } },
    });
    expect(await good.get("typed.test")?.authenticator.userExists({ node: "x", domain: "typed.test" })).toBe(
      true,
    );
    const err = await build({
      "typed.test": { authenticator: { kind: "module" } },
      "nocreate.test": { authenticator: { kind: "module" } },
      "broken.test": { authenticator: { kind: "module" } },
    }).catch((e: unknown) => e);
    expect((err as StartupProblems).problems).toEqual([
      "domains.typed.test.authenticator.options.realm: required: add it",
      `domains.nocreate.test.authenticator: ${path.join(dir, "nocreate.test.js")} is not an authenticator module: \`create(options, ctx)\` must be a function`,
      expect.stringMatching(
        new RegExp(
          `^domains\\.broken\\.test\\.authenticator: ${path.join(dir, "broken.test.js")} failed to load: .*: fix the module$`,
        ),
      ),
    ]);
  });
});
