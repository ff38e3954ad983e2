import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainExample } from "#common/config/mongooseim.ts";
import { realVideo } from "../services/http-utility/src/attachments/test-fixtures.ts";
import { sha256 } from "./support/bytes.ts";
import { runSidecars } from "./support/cli.ts";
import { testConfigDir } from "./support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { ejabberdUnavailable, login, startEjabberd } from "./support/ejabberd.ts";
import { freePort } from "./support/free-port.ts";
import { runService, waitForOk } from "./support/processes.ts";

/**
 * The cut-over of docs/cutover.md, end to end: a legacy-shaped database (the legacy `web_users` with its
 * varchar columns and cleartext tokens) and a legacy media tree (old file names: a picture, a video, an avatar
 * named by its user), the runbook's commands (`sidecars migrate`, `sidecars media import`, `sidecars doctor`),
 * then what installed apps, old links and MongooseIM's users see: legacy calls without credentials taken with
 * compatibility on and refused with it off, old media URLs with their type, ETag and ranges, a legacy user
 * logging in to ejabberd through `sidecars extauth`, and the doctor passing against the running services.
 */

const DOMAIN = "oyo.test";
const ALICE = { node: "306900000001", password: "alice's legacy pw" };
const BOB = { node: "306900000002", password: "bob legacy" };
const PICTURE = "1546300800000_holiday.jpg";
const VIDEO = "1546300900000_clip.mp4";
const NEXT_YEAR = new Date(Date.now() + 365 * 86_400_000).toISOString();
const BASIC_AUTH = "mongooseim:cutover-secret";

let db: TestDatabase;
let work: string;
let legacyRoot: string;
let configOn: string;
let configOff: string;
let picture: Buffer;
let video: Buffer;
let avatar: Buffer;
let ports: { http: number; internal: number; auth: number; buddies: number };

interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function env(configDir: string): NodeJS.ProcessEnv {
  return { CONFIG_DIR: configDir, DATABASE_URL: db.url };
}

/** A service of the stack on `configDir`, ready. */
async function start(service: string, configDir: string, health: string): Promise<Running> {
  let child: ChildProcess | undefined;
  const exited = runService(service, env(configDir), (c) => {
    child = c;
  });
  await waitForOk(health, 30_000);
  if (!child) throw new Error(`${service} answered before it said ready`);
  return { child, exited };
}

async function stop(r: Running | undefined): Promise<void> {
  if (!r) return;
  r.child.kill("SIGTERM");
  expect((await r.exited).code).toBe(0);
}

const form = (fields: Record<string, string>): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

beforeAll(async () => {
  // the legacy database: web_users as the legacy services made it, nothing else
  db = await createTestDatabase({ empty: true });
  await db.pool.query("CREATE TABLE web_users (node varchar(250), token varchar(250), domain varchar(250))");
  for (const u of [ALICE, BOB]) {
    await db.pool.query("INSERT INTO web_users (node, token, domain) VALUES ($1, $2, $3)", [
      u.node,
      u.password,
      DOMAIN,
    ]);
  }

  work = await mkdtemp(path.join(tmpdir(), "sidecars-cutover-"));
  legacyRoot = path.join(work, "legacy-media");
  for (const dir of ["pictures", "videos", "avatars"])
    await mkdir(path.join(legacyRoot, dir), { recursive: true });
  picture = await sharp({ create: { width: 800, height: 600, channels: 3, background: "#468" } })
    .jpeg()
    .toBuffer();
  avatar = await sharp({ create: { width: 256, height: 256, channels: 3, background: "#a42" } })
    .png()
    .toBuffer();
  video = await realVideo(work);
  await writeFile(path.join(legacyRoot, "pictures", PICTURE), picture);
  await writeFile(path.join(legacyRoot, "videos", VIDEO), video);
  await writeFile(path.join(legacyRoot, "avatars", `${ALICE.node}.png`), avatar);

  ports = {
    http: await freePort(),
    internal: await freePort(),
    auth: await freePort(),
    buddies: await freePort(),
  };
  const config = (legacy: boolean) =>
    testConfigDir((t) => {
      const test = t as Record<string, Record<string, unknown>>;
      test.services = {
        httpUtility: {
          host: "127.0.0.1",
          port: ports.http,
          internal: { host: "127.0.0.1", port: ports.internal },
        },
        auth: { port: ports.auth, basicAuth: BASIC_AUTH },
        buddies: { port: ports.buddies },
      };
      // the runbook's 2.1.0 entry, keeping cleartext for the weeks when going back must stay possible
      test.domains = { ...test.domains, [DOMAIN]: { ...domainExample("2.1.0"), keepCleartext: true } };
      test.apps = {
        OyoChat: {
          default: true,
          minimumVersion: { default: "1.0" },
          ...(legacy ? { legacy: { domains: [DOMAIN], belowVersion: "3.0", until: NEXT_YEAR } } : {}),
        },
      };
      test.push = { apps: { OyoChat: { log: {} } }, domains: { [DOMAIN]: { app: "OyoChat" } } };
      test.media = {
        storage: { kind: "fs", options: { root: path.join(work, "store") } },
        tmpDir: path.join(work, "scratch"),
        legacyRoot,
      };
    }, work);
  configOn = config(true);
  configOff = config(false);
}, 60_000);

afterAll(async () => {
  await db?.drop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the cut-over runbook (docs/cutover.md)", () => {
  it("migrates the legacy web_users in place and imports the legacy media, idempotently", async () => {
    const migrated = await runSidecars(["migrate"], { env: env(configOn) });
    expect(migrated.code, migrated.stderr).toBe(0);
    // the legacy rows are there, cleartext and all: the legacy services still work on the table
    const rows = await db.pool.query("SELECT node, token FROM web_users ORDER BY node");
    expect(rows.rows).toEqual([
      { node: ALICE.node, token: ALICE.password },
      { node: BOB.node, token: BOB.password },
    ]);

    const dry = await runSidecars(
      ["media", "import", "--from", legacyRoot, "--domain", DOMAIN, "--dry-run"],
      {
        env: env(configOn),
      },
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect((await db.pool.query("SELECT 1 FROM attachments")).rowCount).toBe(0);

    const report = path.join(work, "import.jsonl");
    const imported = await runSidecars(
      ["media", "import", "--from", legacyRoot, "--domain", DOMAIN, "--report", report],
      {
        env: env(configOn),
      },
    );
    expect(imported.code, imported.stderr).toBe(0);
    const names = await db.pool.query<{ name: string; kind: string }>(
      "SELECT name, kind FROM attachments WHERE parent IS NULL",
    );
    expect(names.rows.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual([
      { name: PICTURE, kind: "picture" },
      { name: VIDEO, kind: "video" },
      { name: `${ALICE.node}.png`, kind: "avatar" },
    ]);
    const again = await runSidecars(["media", "import", "--from", legacyRoot, "--domain", DOMAIN], {
      env: env(configOn),
    });
    expect(again.code, again.stderr).toBe(0);
    expect((await db.pool.query("SELECT 1 FROM attachments WHERE parent IS NULL")).rowCount).toBe(3);
  });

  it("serves old media URLs with their type, ETag and byte ranges, and thumbnails made on request", async () => {
    const http = await start("http-utility", configOn, `http://127.0.0.1:${ports.http}/healthz`);
    try {
      const base = `http://127.0.0.1:${ports.http}/api/v1/attachments`;
      const got = await fetch(`${base}/pictures/${PICTURE}`);
      expect(got.status).toBe(200);
      expect(got.headers.get("content-type")).toBe("image/jpeg");
      expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(picture));
      const etag = got.headers.get("etag") ?? "";
      expect(etag).not.toBe("");
      expect(
        (
          await fetch(`${base}/pictures/${PICTURE}`, {
            // fetch adds `cache-control: no-cache` to a conditional request unless told otherwise (Fetch spec)
            headers: { "if-none-match": etag, "cache-control": "max-age=0" },
          })
        ).status,
      ).toBe(304);

      const range = await fetch(`${base}/videos/${VIDEO}`, { headers: { range: "bytes=100-199" } });
      expect(range.status).toBe(206);
      expect(range.headers.get("content-type")).toBe("video/mp4");
      expect(range.headers.get("content-range")).toBe(`bytes 100-199/${video.length}`);
      expect(Buffer.from(await range.arrayBuffer()).equals(video.subarray(100, 200))).toBe(true);

      const byNode = await fetch(`${base}/avatars/${ALICE.node}`);
      expect(byNode.status).toBe(200);
      expect(byNode.headers.get("content-type")).toBe("image/png");
      expect(sha256(Buffer.from(await byNode.arrayBuffer()))).toBe(sha256(avatar));

      const thumbnail = await fetch(`${base}/pictures/thumbnails/${PICTURE}`);
      expect(thumbnail.status).toBe(200);
      const meta = await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata();
      expect(Math.max(meta.width ?? 0, meta.height ?? 0)).toBeLessThan(800);
    } finally {
      await stop(http);
    }
  }, 60_000);

  it("takes installed apps' calls without credentials with compatibility on, in the legacy shapes", async () => {
    const http = await start("http-utility", configOn, `http://127.0.0.1:${ports.http}/healthz`);
    try {
      const base = `http://127.0.0.1:${ports.http}`;
      const stored = await fetch(
        `${base}/api/v1/notifications/store_token`,
        form({ node: ALICE.node, token: "legacy-device", service: "fcm" }),
      );
      expect(stored.status).toBe(200);
      expect(await stored.json()).toMatchObject({ stored: true });
      const report = await fetch(
        `${base}/api/v1/locations`,
        form({
          msisdn: ALICE.node,
          latitude: "37.98",
          longitude: "23.72",
          date: new Date().toISOString(),
          app_type: "android",
          app_version: "2.0",
        }),
      );
      expect(report.status).toBe(201);
      const upload = new FormData();
      upload.append("attachments", new Blob([new Uint8Array(picture)], { type: "image/jpeg" }), "new.jpg");
      const uploaded = await fetch(`${base}/api/v1/attachments/pictures?node=${BOB.node}`, {
        method: "POST",
        body: upload,
      });
      expect(uploaded.status).toBe(201);
      const files = ((await uploaded.json()) as { files: { attachments: Record<string, unknown> } }).files;
      expect(files.attachments).toMatchObject({ name: "new.jpg", contentType: "image/jpeg" });
      expect(typeof files.attachments.fileName).toBe("string");
      // how installed apps ask for the minimum version: no appName
      const minimum = await fetch(`${base}/api/v1/minimum_app_version`);
      expect(await minimum.json()).toEqual({
        appName: "OyoChat",
        platform: "default",
        minimumVersion: "1.0",
      });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/legacy_calls_total\{[^}]*endpoint="store_token"[^}]*\} 1/);
    } finally {
      await stop(http);
    }
  }, 60_000);

  it("refuses the same calls with compatibility off: 401 invalid_credentials, saying what to send", async () => {
    const http = await start("http-utility", configOff, `http://127.0.0.1:${ports.http}/healthz`);
    try {
      const r = await fetch(
        `http://127.0.0.1:${ports.http}/api/v1/notifications/store_token`,
        form({ node: BOB.node, token: "bob-device", service: "fcm" }),
      );
      expect(r.status).toBe(401);
      expect(await r.json()).toMatchObject({
        error: { code: "invalid_credentials", message: expect.stringContaining("HTTP Basic") },
      });
    } finally {
      await stop(http);
    }
  }, 60_000);

  it("logs a legacy user in to ejabberd through sidecars extauth, with the cleartext password", async () => {
    const unavailable = ejabberdUnavailable();
    if (unavailable) throw new Error(`ejabberd end-to-end tests cannot run: ${unavailable}`);
    // ejabberd runs extauth as its own user: the config goes into ejabberd's folder, which that user reads
    const ej = await startEjabberd({
      hosts: [DOMAIN],
      files: Object.fromEntries(
        ["default.json", "test.json"].map((f) => [
          `config/${f}`,
          readFileSync(path.join(configOn, f), "utf8"),
        ]),
      ),
      extauthEnv: (dir) => ({ APP_ENV: "test", DATABASE_URL: db.url, CONFIG_DIR: path.join(dir, "config") }),
    });
    try {
      await expect(
        login({ port: ej.tlsPort, ca: ej.ca, domain: DOMAIN, username: BOB.node, password: BOB.password }),
      ).resolves.toBe(`${BOB.node}@${DOMAIN}/test`);
      await expect(
        login({ port: ej.tlsPort, ca: ej.ca, domain: DOMAIN, username: BOB.node, password: "wrong" }),
      ).rejects.toMatchObject({ condition: "not-authorized" });
    } catch (err) {
      console.error(await ej.logs());
      throw err;
    } finally {
      await ej.stop();
    }
  }, 120_000);

  it("passes sidecars doctor against the running stack", async () => {
    const [http, auth, buddies] = await Promise.all([
      start("http-utility", configOn, `http://127.0.0.1:${ports.http}/healthz`),
      start("auth", configOn, `http://127.0.0.1:${ports.auth}/healthz`),
      start("buddies", configOn, `http://127.0.0.1:${ports.buddies}/healthz`),
    ]);
    try {
      const started = performance.now();
      const r = await runSidecars(["doctor", "--json"], { env: env(configOn) });
      const ms = performance.now() - started;
      const results = JSON.parse(r.stdout) as {
        checks: Array<{ check: string; status: string; detail: string }>;
      };
      const failed = results.checks.filter((c) => c.status === "fail");
      expect(failed, JSON.stringify(failed)).toEqual([]);
      expect(r.code).toBe(0);
      expect(results.checks.map((c) => c.check)).toEqual(
        expect.arrayContaining([
          "database",
          `domain ${DOMAIN}`,
          "auth service",
          "http-utility",
          "storage",
          "legacy media",
        ]),
      );
      console.info(`sidecars doctor ran in ${Math.round(ms)} ms`);
    } finally {
      await Promise.all([stop(http), stop(auth), stop(buddies)]);
    }
  }, 90_000);
});
