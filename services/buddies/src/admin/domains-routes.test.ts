import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type StartedService, startService } from "#common/service.ts";
import { testConfigDir } from "../../../../test/support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { buddiesService } from "../service.ts";

/**
 * The admin API's domains (GET/PUT/DELETE /api/domains), on the real buddies service started as main.ts
 * starts it, on this file's database: the admin key model of the rest of the API, the config schema's checks,
 * and a change that this very process (like every other) serves within a second.
 */

const KEY = "domains-admin-key-0123456789";
let db: TestDatabase;
let configDir: string;
let service: StartedService;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  configDir = testConfigDir((t) => {
    t.services.buddies = {
      ...t.services.buddies,
      admins: { ops: { sha256: createHash("sha256").update(KEY).digest("hex") } },
    };
  });
  service = await startService(buddiesService, {
    APP_ENV: "test",
    CONFIG_DIR: configDir,
    DATABASE_URL: db.url,
  });
  base = service.server.url;
});
afterAll(async () => {
  await service?.shutdown();
  await db?.drop();
  rmSync(configDir, { recursive: true, force: true });
});

const auth = { authorization: `Basic ${Buffer.from(`ops:${KEY}`).toString("base64")}` };

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = auth) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

describe("buddies admin API: domains", () => {
  it("answers only to an admin key, and refuses changes from another origin", async () => {
    expect((await call("GET", "/api/domains", undefined, {})).status).toBe(401);
    const wrong = { authorization: `Bearer not-${KEY}` };
    expect((await call("PUT", "/api/domains/x.example", {}, wrong)).status).toBe(401);
    const crossOrigin = await call(
      "PUT",
      "/api/domains/x.example",
      {},
      { ...auth, origin: "https://evil.example" },
    );
    expect(crossOrigin).toMatchObject({ status: 403, body: { error: { code: "cross_origin" } } });
    const list = await call("GET", "/api/domains", undefined, { authorization: `Bearer ${KEY}` });
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({
      domains: [
        { name: "localhost", source: "config", hidesDatabaseRow: false, config: { passwordFormat: "plain" } },
      ],
      invalid: [],
      problems: [],
    });
  });

  it("adds, replaces and removes a domain that this process serves within a second", async () => {
    let started = performance.now();
    const added = await call("PUT", "/api/domains/api.example", {
      passwordFormat: "plain",
      buddies: ["echo"],
    });
    expect(added).toMatchObject({
      status: 201,
      body: {
        domain: {
          name: "api.example",
          source: "database",
          config: { passwordFormat: "plain", scramIterations: 10_000 },
        },
      },
    });
    await vi.waitFor(() => expect(service.config.domains["api.example"]).toBeDefined(), {
      timeout: 5000,
      interval: 10,
    });
    expect(performance.now() - started).toBeLessThan(1000);
    // the buddies of the new domain can be defined at once
    const buddy = await call("PUT", "/api/buddies/echo@api.example", {
      kind: "echo",
      password: { env: "ECHO_PW" },
    });
    expect(buddy.status, JSON.stringify(buddy.body)).toBe(201);
    expect((await call("DELETE", "/api/buddies/echo@api.example")).status).toBe(204);

    const replaced = await call("PUT", "/api/domains/api.example", { passwordFormat: "scram" });
    expect(replaced.status).toBe(200);
    await vi.waitFor(() => expect(service.config.domains["api.example"]?.passwordFormat).toBe("scram"), {
      timeout: 5000,
    });
    const list = await call("GET", "/api/domains");
    expect(list.body.domains).toContainEqual(
      expect.objectContaining({
        name: "api.example",
        source: "database",
        updatedBy: "ops (buddies admin API)",
      }),
    );

    started = performance.now();
    expect((await call("DELETE", "/api/domains/api.example")).status).toBe(204);
    await vi.waitFor(() => expect(service.config.domains["api.example"]).toBeUndefined(), {
      timeout: 5000,
      interval: 10,
    });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await call("DELETE", "/api/domains/api.example")).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
  });

  it("refuses an entry the config schema refuses, naming each problem, and a config-file domain's removal", async () => {
    const invalid = await call("PUT", "/api/domains/bad.example", {
      passwordFormat: "md5",
      keepCleartext: "yes",
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error.code).toBe("invalid_domain");
    expect(invalid.body.error.message).toContain(
      'domains.bad.example.passwordFormat: Invalid option: expected one of "plain"|"scram"',
    );
    expect(invalid.body.error.message).toContain(
      "domains.bad.example.keepCleartext: Invalid input: expected boolean",
    );
    const kind = await call("PUT", "/api/domains/bad.example", { authenticator: { kind: "kerberos" } });
    expect(kind).toMatchObject({
      status: 422,
      body: { error: { message: expect.stringMatching(/kind "kerberos" is unknown/) } },
    });
    const name = await call("PUT", "/api/domains/Bad_Name", {});
    expect(name).toMatchObject({ status: 422, body: { error: { code: "invalid_domain" } } });
    const notObject = await call("PUT", "/api/domains/bad.example", "[1]");
    expect(notObject).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    expect((await call("GET", "/api/domains")).body.domains.map((d: { name: string }) => d.name)).toEqual([
      "localhost",
    ]);

    expect(await call("DELETE", "/api/domains/localhost")).toMatchObject({
      status: 409,
      body: { error: { code: "defined_in_config" } },
    });
    // a row the config files win over: stored, said so, and the files' entry stays in force
    const hidden = await call("PUT", "/api/domains/localhost", { passwordFormat: "scram" });
    expect(hidden).toMatchObject({
      status: 201,
      body: {
        domain: { source: "config" },
        warning: expect.stringMatching(/also in the config files, which win/),
      },
    });
    expect((await call("GET", "/api/domains")).body.domains).toEqual([
      expect.objectContaining({
        name: "localhost",
        source: "config",
        hidesDatabaseRow: true,
        config: expect.objectContaining({ passwordFormat: "plain" }),
      }),
    ]);
    expect((await call("DELETE", "/api/domains/localhost")).status).toBe(204);
    expect(service.config.domains.localhost?.passwordFormat).toBe("plain");
  });
});
