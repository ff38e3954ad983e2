import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { finishApp } from "#common/http/app-base.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import type { Jid } from "#common/users/jid.ts";
import { rowsOf, seedUser } from "#common/users/lifecycle-test-fixtures.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { requireAdmin, sameOrigin } from "./admin-auth.ts";
import { usersRouter } from "./users-routes.ts";

/**
 * The users of the admin API (`/api/users…`) on a real HTTP server, behind the admin keys and the same-origin
 * rule of the rest of the admin API (mounted as app.ts mounts them), against a real PostgreSQL and an fs
 * storage.
 */

const KEY = "sk_admin_test_key_0123456789";
const DOMAINS = { "oyo.test": { buddies: ["zabbix"] } };

let db: TestDatabase;
let dir: string;
let storage: Storage;
let server: RunningServer;
let config: Config;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-users-api-"));
  const media = { kind: "fs", options: { root: path.join(dir, "media") } };
  config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      database: { url: db.url },
      domains: DOMAINS,
      media: { storage: media },
      services: {
        buddies: { admins: { ops: { sha256: createHash("sha256").update(KEY).digest("hex") } } },
      },
    },
  });
  storage = await createStorage(config.media.storage);
  const log = pino({ level: "silent" });
  const app = express();
  app.use(
    requireAdmin(() => config.services.buddies.admins),
    sameOrigin,
  );
  app.use(usersRouter({ config, pool: db.pool }));
  finishApp(app, log);
  server = await startServer(app, { name: "buddies", host: "127.0.0.1", port: 0, log });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server.close(100);
  await storage.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, p: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${p}`, { method, headers: { authorization: `Bearer ${KEY}`, ...headers } });
const json = async (r: Response) => ({
  status: r.status,
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: (await r.json()) as Record<string, any>,
});

let n = 0;
const nextJid = (): Jid => ({ node: `3069${String(++n).padStart(8, "0")}`, domain: "oyo.test" });
const text = (jid: Jid) => `${jid.node}@${jid.domain}`;

describe("the users admin API", () => {
  it("answers only to an admin key", async () => {
    const r = await fetch(`${base}/api/users`);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toMatch(/^Basic realm="xmpp-sidecars buddies admin"/);
    expect((await call("GET", "/api/users", { authorization: "Bearer wrong" })).status).toBe(401);
    // Basic `name:key`, as a browser sends it
    const basic = `Basic ${Buffer.from(`ops:${KEY}`).toString("base64")}`;
    expect((await call("GET", "/api/users", { authorization: basic })).status).toBe(200);
  });

  it("searches, shows, disables, enables and unlocks a user", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { locations: 3 });
    const found = await json(await call("GET", `/api/users?search=${user.jid.node.slice(-4)}&limit=5`));
    expect(found).toEqual({
      status: 200,
      body: { users: [{ jid: text(user.jid), disabled: false, createdAt: expect.any(String) }] },
    });

    const shown = await json(await call("GET", `/api/users/${text(user.jid)}`));
    expect(shown.status).toBe(200);
    expect(shown.body.user).toMatchObject({
      jid: text(user.jid),
      profile: { node: user.jid.node, disabledAt: null, credentials: ["scram"] },
      rows: { web_users: 1, locations: 3, push_tokens: 2, attachments: 8, avatars: 1 },
      avatar: user.avatar,
      removal: null,
    });
    expect(JSON.stringify(shown.body)).not.toContain(user.password);

    const disabled = await json(await call("POST", `/api/users/${text(user.jid)}/disable`));
    expect(disabled.status).toBe(200);
    expect(disabled.body.result).toBe("disabled");
    expect(disabled.body.user.profile.disabledAt).toEqual(expect.any(String));
    expect((await json(await call("POST", `/api/users/${text(user.jid)}/disable`))).body.result).toBe(
      "unchanged",
    );
    const enabled = await json(await call("POST", `/api/users/${text(user.jid)}/enable`));
    expect(enabled.body).toMatchObject({ result: "enabled", user: { profile: { disabledAt: null } } });
    expect(await json(await call("POST", `/api/users/${text(user.jid)}/unlock`))).toEqual({
      status: 200,
      body: { forgotten: 0 },
    });
  });

  it("exports a user's data as a JSON download", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { locations: 12 });
    const r = await call("GET", `/api/users/${text(user.jid)}/export`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(r.headers.get("content-disposition")).toBe(
      `attachment; filename="${encodeURIComponent(text(user.jid))}.json"`,
    );
    expect(r.headers.get("cache-control")).toBe("no-store");
    const doc = (await r.json()) as { jid: string; locations: unknown[]; pushTokens: unknown[] };
    expect(doc.jid).toBe(text(user.jid));
    expect(doc.locations).toHaveLength(12);
    expect(doc.pushTokens).toHaveLength(2);
    expect((await json(await call("GET", `/api/users/${text(nextJid())}/export`))).body).toMatchObject({
      error: { code: "not_found" },
    });
  });

  it("removes a user with everything of theirs, from this origin only, never a buddy", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { pictures: 2 });
    // a browser on another site posting with the admin's remembered credentials
    const csrf = await json(
      await call("DELETE", `/api/users/${text(user.jid)}`, { origin: "https://evil.example" }),
    );
    expect(csrf).toMatchObject({ status: 403, body: { error: { code: "cross_origin" } } });
    expect((await rowsOf(db.pool, user)).web_users).toBe(1);

    const removed = await json(await call("DELETE", `/api/users/${text(user.jid)}?attachments=delete`));
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({
      removed: text(user.jid),
      status: "removed",
      resumed: false,
      attachments: "delete",
      summary: { files: user.keys.length, rows: { web_users: 1, attachments: 8 } },
    });
    const rows = await rowsOf(db.pool, user);
    expect(Object.entries(rows).filter(([t, c]) => c !== (t === "user_removals" ? 1 : 0))).toEqual([]);
    const shown = await json(await call("GET", `/api/users/${text(user.jid)}`));
    expect(shown.body.user).toMatchObject({ profile: null, removal: { state: "done", pendingFiles: 0 } });

    expect(await json(await call("DELETE", `/api/users/${text(user.jid)}`))).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
    expect(await json(await call("DELETE", "/api/users/zabbix@oyo.test"))).toMatchObject({
      status: 409,
      body: {
        error: { code: "user_is_buddy", message: expect.stringMatching(/domains\.oyo\.test\.buddies/) },
      },
    });
    expect(await json(await call("DELETE", `/api/users/${text(nextJid())}?attachments=shred`))).toMatchObject(
      {
        status: 400,
        body: { error: { code: "invalid_request" } },
      },
    );
  });

  it("refuses what is not a user of a served domain", async () => {
    expect(await json(await call("GET", "/api/users/no-domain"))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_jid" } },
    });
    expect(await json(await call("GET", "/api/users/alice@elsewhere.test"))).toMatchObject({
      status: 422,
      body: { error: { code: "domain_not_served" } },
    });
    expect(await json(await call("GET", `/api/users/${text(nextJid())}`))).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
    expect(await json(await call("POST", `/api/users/${text(nextJid())}/disable`))).toMatchObject({
      status: 404,
    });
  });
});
