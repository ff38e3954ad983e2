import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type { AuthApi } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import { finishApp } from "#common/http/app-base.ts";
import { defineRoute, routesRouter } from "#common/http/route.ts";
import { startServer } from "#common/http/server.ts";
import { projectRoot } from "#common/paths.ts";
import { sha256 } from "../../../../test/support/bytes.ts";
import { type CliResult, runSidecars } from "../../../../test/support/cli.ts";
import { caller, createCallers } from "../../../http-utility/src/callers.ts";

/** `sidecars api-keys`, run as operators run it (bin/sidecars.js), and its keys checked by the real callers.ts. */

const sidecars = runSidecars;

/** The key and the config entry that `create` printed. */
function created(r: CliResult): { key: string; entry: Record<string, { sha256: string; scopes: string[] }> } {
  const lines = r.stdout.split("\n");
  const json = lines.indexOf("{");
  return { key: lines[1] ?? "", entry: JSON.parse(lines.slice(json).join("\n")) };
}

const configDirs: string[] = [];
/** A copy of config/ whose test.json has these API keys. */
function configWith(apiKeys: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "sidecars-api-keys-"));
  configDirs.push(dir);
  cpSync(path.join(projectRoot, "config"), dir, { recursive: true });
  const test = JSON.parse(readFileSync(path.join(dir, "test.json"), "utf8"));
  test.services.httpUtility.apiKeys = apiKeys;
  writeFileSync(path.join(dir, "test.json"), JSON.stringify(test));
  return dir;
}
afterAll(() => {
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
});

describe("sidecars api-keys create", () => {
  it("prints a new sk_ key once and the config entry with its SHA-256 and scopes", async () => {
    const r = await sidecars(["api-keys", "create", "backend", "--scopes", "push, locations:read,push"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const { key, entry } = created(r);
    expect(key).toMatch(/^sk_[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    expect(Buffer.from(key.slice(3), "base64url")).toHaveLength(32);
    expect(r.stdout.split(key)).toHaveLength(2); // once
    expect(entry).toEqual({ backend: { sha256: sha256(key), scopes: ["push", "locations:read"] } });
    expect(r.stdout).toMatch(/^API key "backend" \(shown this once; the services keep only its SHA-256\):\n/);
    expect(r.stdout).toContain(
      "Add to services.httpUtility.apiKeys in config/<env>.json, then reload the services:",
    );

    const other = created(await sidecars(["api-keys", "create", "backend", "--scopes", "push"]));
    expect(other.key).not.toBe(key);
  });

  it("limits a key to one domain with --domain (a legacy backend's send names none)", async () => {
    const r = await sidecars([
      "api-keys",
      "create",
      "legacy-backend",
      "--scopes",
      "push",
      "--domain",
      "oyo.test",
    ]);
    expect(r.code).toBe(0);
    const { key, entry } = created(r);
    expect(entry).toEqual({
      "legacy-backend": { sha256: sha256(key), scopes: ["push"], domain: "oyo.test" },
    });
    const bad = await sidecars(["api-keys", "create", "x", "--scopes", "push", "--domain", "Not A Domain"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--domain");
  });

  it("makes keys the services accept, with exactly their scopes", async () => {
    const { key, entry } = created(await sidecars(["api-keys", "create", "pusher", "--scopes", "push"]));
    const config = loadConfig({ env: { APP_ENV: "test", CONFIG_DIR: configWith(entry) } });
    const callers = createCallers({ core: {} as AuthApi, apiKeys: config.services.httpUtility.apiKeys });
    const app = express();
    const ok = (path: string, scope: "push" | "broadcast") =>
      defineRoute({
        method: "post",
        path,
        summary: path,
        caller: caller.server(scope),
        responses: { 200: { description: "ok" } },
        handler: ({ res }) => res.json({ ok: true }),
      });
    app.use(
      routesRouter([ok("/push", "push"), ok("/broadcast", "broadcast")], { resolveCaller: callers.resolve }),
    );
    finishApp(app, pino({ level: "silent" }));
    const server = await startServer(app, {
      name: "test",
      host: "127.0.0.1",
      port: 0,
      log: pino({ level: "silent" }),
    });
    const base = server.url;
    try {
      const call = (p: string) =>
        fetch(`${base}${p}`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
      expect((await call("/push")).status).toBe(200);
      expect(await (await call("/broadcast")).json()).toMatchObject({
        error: { code: "insufficient_scope" },
      });
    } finally {
      await server.close(100);
    }
  });

  it("warns that re-using a configured name replaces that key, and says how to rotate instead", async () => {
    const env = { CONFIG_DIR: configWith({ backend: { sha256: "a".repeat(64), scopes: ["push"] } }) };
    const r = await sidecars(["api-keys", "create", "backend", "--scopes", "push"], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'note: "backend" is configured already: this entry replaces its key, and the old key stops working at the reload. To rotate without an outage, give the new key a new name, move the callers to it, then remove "backend".\n',
    );
  });

  it("refuses an unknown scope, no scope and a bad name: one line, exit 2", async () => {
    const unknown = await sidecars(["api-keys", "create", "backend", "--scopes", "push,admin"]);
    expect(unknown).toEqual({
      code: 2,
      stdout: "",
      stderr:
        'sidecars: unknown scope "admin": use any of push, broadcast, locations:read (comma-separated)\n',
    });
    const empty = await sidecars(["api-keys", "create", "backend", "--scopes", " , "]);
    expect(empty).toEqual({
      code: 2,
      stdout: "",
      stderr: "sidecars: --scopes: give at least one of push, broadcast, locations:read\n",
    });
    const name = await sidecars(["api-keys", "create", "my key", "--scopes", "push"]);
    expect(name).toMatchObject({
      code: 2,
      stderr: 'sidecars: "my key" is not a key name: use letters, digits, dots, dashes, underscores\n',
    });
    const missing = await sidecars(["api-keys", "create", "backend"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--scopes <list>' not specified/);
  });
});

describe("sidecars api-keys hash", () => {
  it("prints the SHA-256 of the key on standard input, as create would configure it", async () => {
    const { key, entry } = created(await sidecars(["api-keys", "create", "x", "--scopes", "push"]));
    expect(await sidecars(["api-keys", "hash"], { input: `${key}\n` })).toEqual({
      code: 0,
      stdout: `${entry.x?.sha256}\n`,
      stderr: "",
    });
    expect((await sidecars(["api-keys", "hash"], { input: "made-elsewhere\r\n" })).stdout).toBe(
      `${sha256("made-elsewhere")}\n`,
    );
  });

  it("refuses no key and a key with white space: one line, exit 2", async () => {
    expect(await sidecars(["api-keys", "hash"])).toEqual({
      code: 2,
      stdout: "",
      stderr: 'sidecars: no key on standard input: pipe one in (echo "$KEY" | …)\n',
    });
    expect(await sidecars(["api-keys", "hash"], { input: "two words\n" })).toEqual({
      code: 2,
      stdout: "",
      stderr: "sidecars: the key contains white space: it could never be sent as `Bearer <key>`\n",
    });
  });
});

describe("sidecars api-keys list", () => {
  it("shows names, scopes and a short fingerprint, never the whole hash", async () => {
    const hash1 = sha256("one");
    const env = {
      CONFIG_DIR: configWith({
        backend: { sha256: hash1, scopes: ["push", "broadcast"] },
        tracker: { sha256: sha256("two"), scopes: ["locations:read"] },
      }),
    };
    const r = await sidecars(["api-keys", "list"], { env });
    expect(r).toEqual({
      code: 0,
      stdout: `backend\tpush,broadcast\tsha256:${hash1.slice(0, 12)}\ntracker\tlocations:read\tsha256:${sha256("two").slice(0, 12)}\n`,
      stderr: "",
    });
    expect(r.stdout).not.toContain(hash1);
  });

  it("says when there is none", async () => {
    expect((await sidecars(["api-keys", "list"])).stdout).toBe(
      "no API keys configured (services.httpUtility.apiKeys)\n",
    );
  });
});
