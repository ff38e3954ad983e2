import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { type AuthCore, createAuthCore } from "../../../common/src/auth/auth-core.ts";
import { loadConfig } from "../../../common/src/config/load.ts";
import type { Config } from "../../../common/src/config/schema.ts";
import { type RunningServer, startServer } from "../../../common/src/http/server.ts";
import { addUser } from "../../../common/src/users/web-users.ts";
import { createHttpUtilityApp } from "../app.ts";
import { createMediaDeps, type MediaDeps } from "./media-deps.ts";

/**
 * The attachment endpoints against the real app, auth core, database, sharp and fs storage: what an app
 * sees (status, code, headers, bytes) and what is left on disk and in the tables.
 */

const log = pino({ level: "silent" });
const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
type User = typeof ALICE;

let db: TestDatabase;
let core: AuthCore;
let media: MediaDeps;
let server: RunningServer;
let base: string;
let root: string;

const basic = (u: User) => `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`;

async function upload(kind: string, user: User, files: Array<{ data: Buffer; name: string; type?: string }>) {
  const form = new FormData();
  for (const f of files) {
    form.append(
      "attachments",
      new Blob([new Uint8Array(f.data)], { type: f.type ?? "application/octet-stream" }),
      f.name,
    );
  }
  return fetch(`${base}/api/v1/attachments/${kind}`, {
    method: "POST",
    headers: { authorization: basic(user) },
    body: form,
  });
}

const photo = (width = 640, height = 480) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 20 } } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();

/** Every stored file under the storage root (partials included). */
async function filesOnDisk(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of await readdir(root).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(root, dir)).catch(() => [] as string[])) out.push(`${dir}/${f}`);
  }
  return out.sort();
}

beforeAll(async () => {
  db = await createTestDatabase();
  root = await mkdtemp(path.join(tmpdir(), "media-"));
  const config: Config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 } },
      media: { storage: { kind: "fs", options: { root } }, tmpDir: path.join(root, ".scratch") },
    },
  });
  for (const u of [ALICE, BOB]) {
    const domain = config.domains[u.domain];
    if (!domain) throw new Error(`test config lacks ${u.domain}`);
    await addUser(db.pool, u, { cleartext: u.password }, domain);
  }
  core = await createAuthCore({ config, pool: db.pool, log });
  media = await createMediaDeps(config, log);
  const app = createHttpUtilityApp({ config, log, pool: db.pool, core, media });
  server = await startServer(app, { name: "http-utility", host: "127.0.0.1", port: 0, log });
  base = server.url;
});

afterAll(async () => {
  await server?.close(1000);
  await core?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

describe("pictures", () => {
  it("stores a picture rotated, answers its names and serves it and its thumbnails", async () => {
    const res = await upload("pictures", ALICE, [
      { data: await photo(), name: "holiday.jpg", type: "image/jpeg" },
    ]);
    const body = (await res.json()) as {
      attachments: Array<Record<string, unknown>>;
      files: { attachments: Record<string, unknown> };
    };
    expect(res.status, JSON.stringify(body)).toBe(201);
    const a = body.files.attachments;
    expect(a).toMatchObject({ name: "holiday.jpg", contentType: "image/jpeg", width: 480, height: 640 });
    expect(String(a.fileName)).toMatch(/^[A-Za-z0-9_-]{24}\.jpg$/);

    const got = await fetch(String(a.url));
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("image/jpeg");
    expect(got.headers.get("x-content-type-options")).toBe("nosniff");
    expect(got.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const meta = await sharp(Buffer.from(await got.arrayBuffer())).metadata();
    expect(meta.exif).toBeUndefined();
    expect([meta.width, meta.height]).toEqual([480, 640]);

    const thumb = await fetch(String(a.thumbnailUrl));
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/webp");
    const again = await fetch(String(a.url), {
      // fetch adds `Cache-Control: no-cache` (an end-to-end reload) to conditional requests unless told otherwise
      headers: { "if-none-match": String(got.headers.get("etag")), "cache-control": "max-age=0" },
    });
    expect(again.status).toBe(304);
    expect((await filesOnDisk()).filter((f) => !f.startsWith("."))).toHaveLength(3);
  });

  it("refuses a file whose bytes are not an accepted image (415) and keeps nothing", async () => {
    const before = await filesOnDisk();
    const res = await upload("pictures", ALICE, [
      { data: Buffer.from("#!/bin/sh\necho hi\n".repeat(400)), name: "x.jpg", type: "image/jpeg" },
    ]);
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_type");
    expect(await filesOnDisk()).toEqual(before);
  });
});

describe("videos", () => {
  it("serves byte ranges", async () => {
    const mp4 = Buffer.concat([
      Buffer.from("000000186674797069736f6d0000020069736f6d69736f32", "hex"),
      Buffer.alloc(100_000, 7),
    ]);
    const res = await upload("videos", BOB, [{ data: mp4, name: "clip.mp4", type: "video/mp4" }]);
    const body = (await res.json()) as { files: { attachments: { url: string; size: number } } };
    expect(res.status, JSON.stringify(body)).toBe(201);
    const url = body.files.attachments.url;
    const part = await fetch(url, { headers: { range: "bytes=0-9" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 0-9/${mp4.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(mp4.subarray(0, 10));
    const suffix = await fetch(url, { headers: { range: "bytes=-5" } });
    expect(Buffer.from(await suffix.arrayBuffer())).toEqual(mp4.subarray(-5));
    const bad = await fetch(url, { headers: { range: `bytes=${mp4.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get("content-range")).toBe(`bytes */${mp4.length}`);
  });
});
