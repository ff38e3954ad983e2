import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { generate } from "selfsigned";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import type { RunningServer } from "#common/http/server.ts";
import { startAuthServer } from "../../../test/support/auth-stack.ts";
import { runSidecars, SIDECARS_BIN } from "../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.ts";
import { type FakeFcm, startFakeFcm, writeServiceAccount } from "../../../test/support/fake-fcm.ts";
import { deadPort } from "../../../test/support/free-port.ts";
import { type CheckResult, runDoctor } from "./doctor.ts";

/**
 * `sidecars doctor` against real parts: the test database, the auth service's real app listening as MongooseIM
 * reaches it, a health endpoint standing for buddies, fs storage in a temporary folder, the local FCM for the
 * real FCM sender's token fetch (a trusted and an unknown service-account key), and certificates made here.
 */

const BASIC_AUTH = "mongooseim:doctor-secret";
const log = pino({ level: "silent" });

let db: TestDatabase;
let fcm: FakeFcm;
let dir: string;
let auth: RunningServer;
let buddies: http.Server;
let buddiesPort: number;
let down: { port: number; close(): Promise<void> };
let trustedKey: string;
let unknownKey: string;

beforeAll(async () => {
  db = await createTestDatabase();
  fcm = await startFakeFcm();
  dir = mkdtempSync(path.join(tmpdir(), "sidecars-doctor-"));
  trustedKey = (await fcm.addServiceAccount(path.join(dir, "trusted.json"), "doctor-project")).file;
  unknownKey = path.join(dir, "unknown.json");
  await writeServiceAccount(unknownKey, "doctor-project"); // never added to the fake: its grants are refused
  const config = configWith({});
  const core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  auth = await startAuthServer({ config, core, db });
  buddies = http.createServer((req, res) => res.writeHead(req.url === "/healthz" ? 200 : 404).end());
  await new Promise<void>((resolve) => buddies.listen(0, "127.0.0.1", resolve));
  buddiesPort = (buddies.address() as { port: number }).port;
  down = await deadPort();
}, 60_000);

afterAll(async () => {
  await auth?.close(0);
  await new Promise((resolve) => buddies?.close(resolve));
  await down?.close();
  await fcm?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function configWith(o: {
  auth?: Record<string, unknown>;
  push?: Record<string, unknown>;
  tls?: { cert: string; key: string };
  domains?: Record<string, unknown>;
}): Config {
  return loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      database: { url: db.url },
      services: {
        auth: { basicAuth: BASIC_AUTH, ...(auth ? { port: auth.port } : {}), ...o.auth },
        httpUtility: { port: down?.port ?? 1, ...(o.tls ? { tls: o.tls } : {}) },
        buddies: { port: buddiesPort ?? 1 },
      },
      media: { storage: { kind: "fs", options: { root: path.join(dir, "media") } } },
      ...(o.push ? { push: o.push } : {}),
      ...(o.domains ? { domains: o.domains } : {}),
    },
  });
}

function doctor(config: Config): Promise<CheckResult[]> {
  return runDoctor({
    config,
    log,
    pool: async () => db.pool,
    listener: async () => db.listener,
    authCore: (pool, listener) => createAuthCore({ config, pool, listener, log }),
    timeoutMs: 5000,
    endpoints: { fcmAgent: fcm.agent() },
  });
}

let yamls = 0;
function writeYaml(text: string): string {
  const file = path.join(dir, `ejabberd-${++yamls}.yml`);
  writeFileSync(file, text);
  return file;
}

const find = (results: CheckResult[], check: string) => results.filter((r) => r.check === check);

describe("sidecars doctor", () => {
  it("checks every part, says what is down and what to do, and proves FCM credentials by a dry run", async () => {
    const sendsBefore = fcm.sends().length;
    const results = await doctor(
      configWith({
        push: {
          apps: {
            Good: { fcm: { serviceAccountFile: trustedKey } },
            Revoked: { fcm: { serviceAccountFile: unknownKey } },
          },
        },
      }),
    );
    expect(find(results, "database")).toEqual([
      expect.objectContaining({
        status: "ok",
        detail: expect.stringMatching(/^reachable; all \d+ migrations applied$/),
      }),
    ]);
    expect(find(results, "domain localhost")[0]).toMatchObject({ status: "ok" });
    expect(find(results, "auth service")[0]).toMatchObject({
      status: "ok",
      detail: expect.stringContaining("answers as MongooseIM expects (basic_auth, path_prefix /authorize/)"),
    });
    expect(find(results, "http-utility")[0]).toMatchObject({
      status: "fail",
      detail: expect.stringContaining("healthz: the connection was cut"),
      fix: expect.stringContaining("npm start"),
    });
    expect(find(results, "buddies")[0]).toMatchObject({ status: "ok" });
    const storage = find(results, "storage");
    expect(storage[0]).toMatchObject({ status: "ok", detail: expect.stringContaining("writable") });
    expect(storage[1]?.detail).toMatch(/GiB free/);
    expect(find(results, "certificates")[0]).toMatchObject({ status: "ok" });

    const push = find(results, "push");
    expect(push.find((r) => r.detail.startsWith("Good fcm"))).toMatchObject({
      status: "ok",
      detail: "Good fcm: credentials accepted (a dry run to a made-up token)",
    });
    expect(push.find((r) => r.detail.startsWith("Revoked fcm"))).toMatchObject({
      status: "fail",
      detail: expect.stringContaining("dry run refused: oauth"),
      fix: "fix push.apps.Revoked (docs/push.md)",
    });
    // the dry run reached FCM as validate_only: nothing was pushed to a device
    const sent = fcm.sends().slice(sendsBefore);
    expect(sent.length).toBeGreaterThan(0);
    for (const s of sent) expect((s as { validate_only?: unknown }).validate_only).toBe(true);
  });

  it("takes a token domain's 'every user exists' for what it is, and still WARNs a backend that says so", async () => {
    const jwt = (userExists: string) => ({
      authenticator: {
        kind: "jwt",
        options: {
          secret: "a-shared-secret-of-at-least-32-bytes!!",
          algorithms: ["HS256"],
          issuer: "https://sso.example.org",
          audience: "xmpp",
          userExists,
        },
      },
      passwordFormat: "plain",
    });
    const results = await doctor(configWith({ domains: { "tokens.test": jwt("any") } }));
    expect(find(results, "domain tokens.test")[0]).toMatchObject({
      status: "ok",
      detail: expect.stringContaining("every user exists"),
    });
    const byTable = await doctor(configWith({ domains: { "tokens.test": jwt("web_users") } }));
    expect(find(byTable, "domain tokens.test")[0]).toMatchObject({ status: "ok" });
    expect(find(byTable, "domain tokens.test")[0]?.detail).not.toContain("every user exists");
  });

  it("FAILs a basic_auth or a path_prefix MongooseIM would not get through", async () => {
    const wrongKey = find(
      await doctor(configWith({ auth: { basicAuth: "mongooseim:other" } })),
      "auth service",
    );
    expect(wrongKey[0]).toMatchObject({ status: "fail", detail: expect.stringContaining(": 401") });
    expect(wrongKey[0]?.fix).toMatch(/basic_auth/);
    const wrongPrefix = find(await doctor(configWith({ auth: { pathPrefix: "/auth/" } })), "auth service");
    expect(wrongPrefix[0]).toMatchObject({ status: "fail", detail: expect.stringContaining(": 404") });
    expect(wrongPrefix[0]?.fix).toMatch(/path_prefix \/auth\//);
  });

  it("WARNs a certificate about to expire and FAILs an expired one", async () => {
    const cert = async (name: string, notBeforeDate: Date, notAfterDate: Date) => {
      const pems = await generate([{ name: "commonName", value: "xmpp.example.org" }], {
        keySize: 2048,
        algorithm: "sha256",
        notBeforeDate,
        notAfterDate,
      });
      const files = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
      writeFileSync(files.cert, pems.cert);
      writeFileSync(files.key, pems.private);
      return files;
    };
    const day = 86_400_000;
    const soon = await cert(
      "soon",
      new Date(Date.now() - 80 * day),
      new Date(Date.now() + 10 * day + 3600_000),
    );
    const gone = await cert("gone", new Date(Date.now() - 100 * day), new Date(Date.now() - day));
    const soonCheck = find(await doctor(configWith({ tls: soon })), "certificates")[0];
    expect(soonCheck).toMatchObject({ status: "warn", detail: expect.stringMatching(/expires in 10 days/) });
    const goneCheck = find(await doctor(configWith({ tls: gone })), "certificates")[0];
    expect(goneCheck).toMatchObject({ status: "fail", detail: expect.stringContaining("expired") });
  }, 60_000);

  it("asks ejabberd's extauth_program as ejabberd does, when ejabberd's config uses external auth", async () => {
    const config = configWith({});
    const yml = (program: string, method = "external") =>
      writeYaml(`auth_method: ${method}\nextauth_program: "${program}"\n`);
    // the wrapper ejabberd would start (docs/auth.md): the environment, then `sidecars extauth`
    const wrapper = path.join(dir, "sidecars-extauth");
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexport APP_ENV=test DATABASE_URL='${db.url}'\nexec '${process.execPath}' '${SIDECARS_BIN}' extauth\n`,
      { mode: 0o755 },
    );
    const run = (ejabberdConfig: string) =>
      runDoctor({
        config,
        log,
        pool: async () => db.pool,
        listener: async () => db.listener,
        authCore: (pool, listener) => createAuthCore({ config, pool, listener, log }),
        timeoutMs: 20_000,
        ejabberdConfig,
      }).then((r) => find(r, "ejabberd extauth"));
    expect(await run(yml(wrapper))).toEqual([
      expect.objectContaining({ status: "ok", detail: `${wrapper} answers isuser as ejabberd asks it` }),
    ]);
    expect(await run(yml("/bin/false"))).toEqual([
      expect.objectContaining({
        status: "fail",
        detail: expect.stringContaining("exited (1) before answering"),
      }),
    ]);
    expect(await run(yml(wrapper, "sql"))).toEqual([
      expect.objectContaining({
        status: "ok",
        detail: expect.stringContaining("does not use external auth"),
      }),
    ]);
    // no ejabberd config on this machine: no line at all
    expect(await run(path.join(dir, "absent.yml"))).toEqual([]);
  }, 60_000);

  it("FAILs a database with migrations not applied", async () => {
    const empty = await createTestDatabase({ empty: true });
    try {
      const results = await runDoctor({
        config: configWith({}),
        log,
        pool: async () => empty.pool,
        listener: async () => empty.listener,
        authCore: (pool, listener) => createAuthCore({ config: configWith({}), pool, listener, log }),
        timeoutMs: 5000,
      });
      expect(find(results, "database")[0]).toMatchObject({
        status: "fail",
        detail: expect.stringMatching(/migrations not applied/),
        fix: expect.stringContaining("sidecars migrate"),
      });
    } finally {
      await empty.drop();
    }
  });

  it("as a command: a line per check and exit 1 on a FAIL; --json for scripts", async () => {
    const env = {
      DATABASE_URL: db.url,
      AUTH_PORT: String(auth.port),
      AUTH_BASIC_AUTH: BASIC_AUTH,
      HTTP_UTILITY_PORT: String(down.port),
      BUDDIES_ADMIN_PORT: String(buddiesPort),
    };
    const text = await runSidecars(["doctor"], { env });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^OK {4}database +reachable; all \d+ migrations applied$/m);
    expect(text.stdout).toMatch(
      /^FAIL {2}http-utility +http:\/\/127\.0\.0\.1:\d+\/healthz: the connection was cut/m,
    );
    expect(text.stdout).toMatch(/^\d+ OK, \d+ WARN, 1 FAIL$/m);

    const json = await runSidecars(["doctor", "--json"], { env });
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; ms: number; checks: CheckResult[] };
    expect(report.ok).toBe(false);
    expect(report.checks.map((c) => c.check)).toEqual(
      expect.arrayContaining([
        "database",
        "domain localhost",
        "auth service",
        "http-utility",
        "storage",
        "push",
      ]),
    );
  }, 60_000);
});
