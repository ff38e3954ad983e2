import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isKey } from "#common/media/keys.ts";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import { runSidecars, runSidecarsOnTerminal, SIDECARS_BIN } from "../../../../test/support/cli.ts";
import { testConfigDir } from "../../../../test/support/config-dir.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import { noisy, png, realVideo } from "../../../http-utility/src/attachments/test-fixtures.ts";

/**
 * `sidecars media import` as the operator runs it (bin/sidecars.js) on a legacy media tree made here (real
 * JPEG and PNG from sharp, a real MP4 from ffmpeg, an avatar named by its user, and files that cannot be
 * served), then the legacy URLs asked of the http-utility app that shares its database and config.
 */

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
/** the legacy files' mtime: milliseconds included, as `created` and Last-Modified keep them */
const LEGACY_MTIME = new Date("2017-05-12T10:30:00.123Z");

let dir: string;
let legacy: string;
let store: string;
let configDir: string;
let app: HttpUtilityTestApp;
const bytes: Record<string, Buffer> = {};

async function put(rel: string, data: Buffer) {
  const file = path.join(legacy, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data);
  await utimes(file, LEGACY_MTIME, LEGACY_MTIME);
  bytes[rel] = data;
}

/** What a run should report, as `path reason`. */
const KEY_SHAPED = "1546300800000-a1B2c3D4e5.jpg";
const BAD = [
  ".hidden.jpg unsafe_name",
  "bad name.jpg unsafe_name",
  "random.bin unknown_type",
  "dangling.jpg not_a_file",
  "passwd.jpg not_a_file",
  "folder.jpg/ unexpected_entry",
  "empty.jpg empty",
  "clip.mp4 unsupported_type",
  "truncated.png invalid_image",
].map((l) => `pictures/${l}`);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "media-import-"));
  legacy = path.join(dir, "legacy");
  store = path.join(dir, "store");
  const video = await realVideo(dir);
  await put("pictures/IMG_20170512_103000.jpg", await noisy(640, 480).jpeg().toBuffer());
  // a PNG under a .gif name: the bytes decide
  await put("pictures/1526383939393-pic.gif", await png(300, 200));
  await put("pictures/thumbnails/IMG_20170512_103000.jpg", await png(16, 16));
  await put("videos/VID_20170512_103000.mp4", video);
  await put("avatars/306900000001.jpg", await noisy(300, 200).jpeg().toBuffer());
  await put("avatars/someone-unknown.png", await png(64, 64));
  // one name in two kind directories: the table knows a name once, the second is reported (pictures/ come first)
  await put("pictures/dup-name.png", await png(40, 30));
  await put("avatars/dup-name.png", await png(30, 30));
  // what cannot be served
  await put("pictures/.hidden.jpg", await png());
  await put("pictures/bad name.jpg", await png());
  await put("pictures/random.bin", Buffer.concat([Buffer.from("not media\n"), randomBytes(5000)]));
  await put("pictures/empty.jpg", Buffer.alloc(0));
  await put("pictures/clip.mp4", video);
  await put("pictures/truncated.png", (await png(64, 48)).subarray(0, 20));
  await symlink(path.join(dir, "nowhere.jpg"), path.join(legacy, "pictures/dangling.jpg"));
  await symlink("/etc/passwd", path.join(legacy, "pictures/passwd.jpg"));
  await mkdir(path.join(legacy, "pictures/folder.jpg"));
  await writeFile(path.join(legacy, "README.txt"), "the legacy media");
  // a legacy name of the stored names' form (`<13-digit time>-<10 characters>.jpg` is one): imported like any
  // other, served from the legacy root as its row says
  await put(`pictures/${KEY_SHAPED}`, await png());
  BAD.push("README.txt unexpected_entry");

  configDir = testConfigDir((t) => {
    t.domains = { ...(t.domains as object), "oyo.test": { scramIterations: 4096 } };
    t.media = {
      storage: { kind: "fs", options: { root: store } },
      tmpDir: path.join(dir, "scratch"),
      legacyRoot: legacy,
      // rows are cached, bodies only of the smallest files (the tiny PNG avatar): a changed legacy file's
      // old bytes are not kept in memory, so the test sees what a file on disk answers
      cache: { maxFileBytes: 1024 },
    };
  });
  app = await startHttpUtilityApp({ configDir, users: [ALICE] });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const env = () => ({ DATABASE_URL: app.db.url, CONFIG_DIR: configDir });
const sidecars = (args: string[]) => runSidecars(["media", ...args], { env: env() });
const importArgs = (...more: string[]) => ["import", "--from", legacy, "--domain", "oyo.test", ...more];
const url = (rest: string) => app.url(`/api/v1/attachments${rest}`);

async function rows() {
  const r = await app.db.pool.query<{
    name: string;
    parent: string | null;
    node: string;
    kind: string;
    legacy_path: string | null;
    content_type: string;
    size: string;
    created_at: Date;
    width: number | null;
  }>(
    'SELECT name, parent, node, kind, legacy_path, content_type, size, created_at, width FROM attachments ORDER BY name COLLATE "C"',
  );
  return r.rows;
}

async function reportOf(file: string): Promise<string[]> {
  const lines = (await readFile(file, "utf8")).split("\n").filter(Boolean);
  return lines.map((l) => {
    const p = JSON.parse(l) as { path: string; reason: string; detail: string };
    expect(p.detail.length).toBeGreaterThan(0);
    return `${p.path} ${p.reason}`;
  });
}

const etagOf = (data: Buffer) => `"${Buffer.from(sha256(data), "hex").toString("base64url")}"`;

describe("sidecars media import", () => {
  it("--dry-run counts and reports, writing no row", async () => {
    const report = path.join(dir, "dry.jsonl");
    const r = await sidecars(importArgs("--dry-run", "--report", report));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // a dry run writes nothing, so it cannot see that the second dup-name.png would find its name taken
    expect(r.stdout).toContain("would import 8 file(s) (4 picture(s), 1 video(s), 3 avatar(s)) from");
    expect(r.stdout).toContain("1 avatar(s) would become their user's");
    expect(r.stdout).toContain(`${BAD.length} not imported`);
    expect((await reportOf(report)).sort()).toEqual([...BAD].sort());
    expect(await rows()).toEqual([]);
    expect((await app.db.pool.query("SELECT * FROM avatars")).rows).toEqual([]);
  });

  it("registers every servable file in place, reports the others, and links the avatar named by its user", async () => {
    const report = path.join(dir, "report.jsonl");
    const r = await sidecars(importArgs("--report", report, "--batch", "3"));
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(
      /imported 7 file\(s\) \(4 picture\(s\), 1 video\(s\), 2 avatar\(s\), [\d.]+ MiB\) from .* into oyo\.test; 1 avatar\(s\) became their user's; 0 changed since the last import updated; 0 already imported; 11 not imported; 16 file\(s\) in [\d.]+ s \(\d+ files\/s, [\d.]+ MiB\/s imported\)/,
    );
    expect(r.stdout).toContain("skipped pictures/thumbnails/: legacy thumbnails are not imported");
    expect(r.stdout).toContain("not imported: empty 1, invalid_image 1, name_taken 1, not_a_file 2,");
    expect(r.stdout).toContain("  pictures/random.bin: unknown_type: its first bytes are of no known type");
    expect((await reportOf(report)).sort()).toEqual([...BAD, "avatars/dup-name.png name_taken"].sort());

    const all = await rows();
    expect(all.map((x) => [x.name, x.kind, x.legacy_path, x.content_type, x.node])).toEqual([
      ["1526383939393-pic.gif", "picture", "pictures/1526383939393-pic.gif", "image/png", ""],
      [KEY_SHAPED, "picture", `pictures/${KEY_SHAPED}`, "image/png", ""],
      ["306900000001.jpg", "avatar", "avatars/306900000001.jpg", "image/jpeg", ""],
      ["IMG_20170512_103000.jpg", "picture", "pictures/IMG_20170512_103000.jpg", "image/jpeg", ""],
      ["VID_20170512_103000.mp4", "video", "videos/VID_20170512_103000.mp4", "video/mp4", ""],
      ["dup-name.png", "picture", "pictures/dup-name.png", "image/png", ""],
      ["someone-unknown.png", "avatar", "avatars/someone-unknown.png", "image/png", ""],
    ]);
    for (const x of all) expect(x.created_at.toISOString()).toBe(LEGACY_MTIME.toISOString());
    expect(Number(all.find((x) => x.name.startsWith("VID"))?.size)).toBe(
      bytes["videos/VID_20170512_103000.mp4"]?.length,
    );
    expect(all.find((x) => x.name.startsWith("IMG"))?.width).toBe(640);
    // the avatar of an account named by its node; a name no account has stays an avatar by name only
    expect((await app.db.pool.query("SELECT domain, node, name FROM avatars")).rows).toEqual([
      { domain: "oyo.test", node: ALICE.node, name: "306900000001.jpg" },
    ]);
    // nothing was copied
    expect(existsSync(store) ? await readdir(store) : []).toEqual([]);
  });

  it("serves the legacy URLs with the type from the bytes, the ETag, 304 and ranges", async () => {
    const cases = [
      ["/pictures/IMG_20170512_103000.jpg", "pictures/IMG_20170512_103000.jpg", "image/jpeg"],
      ["/pictures/1526383939393-pic.gif", "pictures/1526383939393-pic.gif", "image/png"],
      ["/videos/VID_20170512_103000.mp4", "videos/VID_20170512_103000.mp4", "video/mp4"],
      ["/avatars/306900000001.jpg", "avatars/306900000001.jpg", "image/jpeg"],
      ["/avatars/someone-unknown.png", "avatars/someone-unknown.png", "image/png"],
    ] as const;
    for (const [rest, rel, type] of cases) {
      const data = bytes[rel] as Buffer;
      const res = await fetch(url(rest));
      expect(res.status, rest).toBe(200);
      expect(res.headers.get("content-type"), rest).toBe(type);
      expect(res.headers.get("etag"), rest).toBe(etagOf(data));
      expect(res.headers.get("last-modified"), rest).toBe(LEGACY_MTIME.toUTCString());
      expect(res.headers.get("cache-control"), rest).toBe("public, max-age=86400");
      expect(res.headers.get("content-length"), rest).toBe(String(data.length));
      expectSameBytes(Buffer.from(await res.arrayBuffer()), data, rest);

      const again = await fetch(url(rest), {
        headers: { "if-none-match": etagOf(data), "cache-control": "max-age=0" },
      });
      expect(again.status, rest).toBe(304);

      const part = await fetch(url(rest), { headers: { range: "bytes=10-109" } });
      expect(part.status, rest).toBe(206);
      expect(part.headers.get("content-range"), rest).toBe(`bytes 10-109/${data.length}`);
      expectSameBytes(Buffer.from(await part.arrayBuffer()), data.subarray(10, 110), `${rest} range`);
    }
    // a user's avatar by node is the imported one, revalidated like any avatar by node
    const byNode = await fetch(url(`/avatars/${ALICE.node}`));
    expect(byNode.status).toBe(200);
    expect(byNode.headers.get("cache-control")).toBe("public, max-age=60, must-revalidate");
    expectSameBytes(
      Buffer.from(await byNode.arrayBuffer()),
      bytes["avatars/306900000001.jpg"] as Buffer,
      "by node",
    );
  });

  it("answers 404 for what was not imported, a kind's other names and any path leaving the root", async () => {
    for (const rest of [
      "/pictures/random.bin",
      "/pictures/passwd.jpg",
      "/pictures/README.txt",
      "/pictures/VID_20170512_103000.mp4",
      "/videos/IMG_20170512_103000.jpg",
      "/pictures/..%2f..%2fetc%2fpasswd",
      "/pictures/%2e%2e%2fREADME.txt",
      "/pictures/.hidden.jpg",
    ]) {
      const res = await fetch(url(rest));
      expect(res.status, rest).toBe(404);
    }
  });

  it("serves a legacy name of the stored names' form from the legacy root, as its row says", async () => {
    expect(isKey(KEY_SHAPED)).toBe(true);
    const res = await fetch(url(`/pictures/${KEY_SHAPED}`));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expectSameBytes(
      Buffer.from(await res.arrayBuffer()),
      bytes[`pictures/${KEY_SHAPED}`] as Buffer,
      KEY_SHAPED,
    );
  });

  it("makes thumbnails on first request and stores them as variants", async () => {
    const thumb = await fetch(url("/pictures/thumbnails/IMG_20170512_103000.jpg"));
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/webp");
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([128, 96]);

    const large = await fetch(url("/pictures/IMG_20170512_103000.jpg?size=512"));
    expect(large.status).toBe(200);
    expect((await sharp(Buffer.from(await large.arrayBuffer())).metadata()).width).toBe(512);

    const avatarThumb = await fetch(url(`/avatars/thumbnails/${ALICE.node}`));
    expect(avatarThumb.status).toBe(200);
    const square = await sharp(Buffer.from(await avatarThumb.arrayBuffer())).metadata();
    expect([square.width, square.height]).toEqual([128, 128]);

    const variants = (await rows()).filter((x) => x.parent !== null);
    expect(variants.map((v) => [v.parent, v.node, v.legacy_path]).sort()).toEqual([
      ["306900000001.jpg", "", null],
      ["306900000001.jpg", "", null],
      ["IMG_20170512_103000.jpg", "", null],
      ["IMG_20170512_103000.jpg", "", null],
    ]);
    // asked again: the same stored thumbnail, no new one
    const again = await fetch(url("/pictures/thumbnails/IMG_20170512_103000.jpg"));
    expect(again.headers.get("etag")).toBe(thumb.headers.get("etag"));
    expect((await rows()).length).toBe(7 + 4);
  });

  it("registers nothing on a second run", async () => {
    const before = await rows();
    const r = await sidecars(importArgs());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /imported 0 file\(s\) .*; 0 avatar\(s\) became their user's; 0 changed since the last import updated; 7 already imported; 11 not imported/,
    );
    expect(await rows()).toEqual(before);
  });

  it("media gc keeps imported files, their rows and their thumbnails", async () => {
    const before = await rows();
    const gc = await sidecars(["gc", "--older-than", "1d"]);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toMatch(/^deleted 0 attachment\(s\)/);
    expect(await rows()).toEqual(before);
    for (const rel of Object.keys(bytes)) expect(existsSync(path.join(legacy, rel)), rel).toBe(true);
  });

  it("a file changed on disk answers 404 until the next run takes its new content", async () => {
    const rel = "pictures/IMG_20170512_103000.jpg";
    const changed = await noisy(320, 240).jpeg().toBuffer();
    await writeFile(path.join(legacy, rel), changed);
    // a HEAD looks at the file too (an app checking a link before downloading it)
    const staleHead = await fetch(url("/pictures/IMG_20170512_103000.jpg"), { method: "HEAD" });
    expect(staleHead.status).toBe(404);
    const stale = await fetch(url("/pictures/IMG_20170512_103000.jpg"));
    expect(stale.status).toBe(404);
    const oldThumbs = (await rows()).filter((x) => x.parent === "IMG_20170512_103000.jpg").map((x) => x.name);

    const r = await sidecars(importArgs());
    expect(r.stdout).toMatch(
      /imported 0 file\(s\).*; 1 changed since the last import updated; 6 already imported/,
    );
    // the thumbnails of the old content are gone, rows and files
    const files = await readdir(store, { recursive: true });
    for (const name of oldThumbs)
      expect(
        files.some((f) => f.endsWith(name)),
        name,
      ).toBe(false);
    expect((await rows()).filter((x) => x.parent === "IMG_20170512_103000.jpg")).toEqual([]);

    const fresh = await fetch(url("/pictures/IMG_20170512_103000.jpg"));
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("etag")).toBe(etagOf(changed));
    expectSameBytes(Buffer.from(await fresh.arrayBuffer()), changed, "the new content");
    const thumb = await fetch(url("/pictures/thumbnails/IMG_20170512_103000.jpg"));
    expect((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width).toBe(128);
  });

  it("a new avatar upload replaces the link, not the imported file", async () => {
    const form = new FormData();
    form.append("attachments", new Blob([new Uint8Array(await png(100, 100))]), "new.png");
    const auth = `Basic ${Buffer.from(`${ALICE.node}@${ALICE.domain}:${ALICE.password}`).toString("base64")}`;
    const up = await fetch(url("/avatars"), { method: "POST", headers: { authorization: auth }, body: form });
    expect(up.status).toBe(201);
    const fileName = ((await up.json()) as { attachments: Array<{ fileName: string }> }).attachments[0]
      ?.fileName;
    const link = await app.db.pool.query("SELECT name FROM avatars WHERE node = $1", [ALICE.node]);
    expect(link.rows).toEqual([{ name: fileName }]);
    expect((await fetch(url("/avatars/306900000001.jpg"))).status).toBe(200);
    expect(existsSync(path.join(legacy, "avatars/306900000001.jpg"))).toBe(true);
    // and a rerun leaves the user's new avatar alone
    await sidecars(importArgs());
    expect((await app.db.pool.query("SELECT name FROM avatars WHERE node = $1", [ALICE.node])).rows).toEqual([
      { name: fileName },
    ]);
  });

  it("draws a progress bar on a terminal", async () => {
    const out = await runSidecarsOnTerminal(["media", ...importArgs("--dry-run")], env());
    expect(out).toMatch(/media import \[=+\] 16\/16 files/);
  });

  it("stops with one line when the root is unusable or the domain unclear", async () => {
    const missing = await sidecars(["import", "--from", path.join(dir, "nope"), "--domain", "oyo.test"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^sidecars: cannot read the legacy root .*nope: ENOENT\n$/);
    const elsewhere = await sidecars(["import", "--from", store, "--domain", "oyo.test"]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(
      /holds none of pictures\/, videos\/, avatars\/: is it the legacy media directory\?/,
    );
    const noDomain = await sidecars(["import", "--from", legacy]);
    expect(noDomain).toMatchObject({ code: 2, stdout: "" });
    expect(noDomain.stderr).toMatch(/several domains are configured \(.*\): say which .* with --domain/);
  });
});

describe("sidecars media import, killed half-way", () => {
  let many: string;
  let other: HttpUtilityTestApp;
  const FILES = 400;

  beforeAll(async () => {
    many = path.join(dir, "many");
    const image = await png(32, 32);
    await mkdir(path.join(many, "pictures"), { recursive: true });
    for (let i = 0; i < FILES; i++) await writeFile(path.join(many, "pictures", `p${i}.png`), image);
    other = await startHttpUtilityApp({ configDir });
  });
  afterAll(async () => {
    await other?.close();
  });

  const count = async () =>
    Number((await other.db.pool.query("SELECT count(*) AS n FROM attachments")).rows[0].n);

  it("resumes: a rerun registers what the first run had not reached", async () => {
    const args = [SIDECARS_BIN, "media", "import", "--from", many, "--domain", "oyo.test", "--batch", "1"];
    const child = spawn(process.execPath, args, {
      env: {
        PATH: process.env.PATH ?? "",
        APP_ENV: "test",
        DATABASE_URL: other.db.url,
        CONFIG_DIR: configDir,
      },
      stdio: "ignore",
    });
    let done = false;
    const exited = new Promise((resolve) => child.once("exit", resolve)).then(() => {
      done = true;
    });
    while (!done && (await count()) < 5) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    await exited;
    const first = await count();
    expect(first).toBeGreaterThanOrEqual(5);
    expect(first).toBeLessThan(FILES);

    const rerun = await runSidecars(["media", "import", "--from", many, "--domain", "oyo.test"], {
      env: { DATABASE_URL: other.db.url, CONFIG_DIR: configDir },
    });
    expect(rerun.code).toBe(0);
    expect(rerun.stdout).toContain(`imported ${FILES - first} file(s)`);
    expect(rerun.stdout).toContain(`; ${first} already imported; 0 not imported`);
    expect(await count()).toBe(FILES);
  });
});

describe("imported files behind nginx (media.legacyAccelRedirect)", () => {
  let accelConfig: string;
  let behind: HttpUtilityTestApp;

  beforeAll(async () => {
    accelConfig = testConfigDir((t) => {
      t.domains = { ...(t.domains as object), "oyo.test": { scramIterations: 4096 } };
      t.media = {
        storage: { kind: "fs", options: { root: store } },
        tmpDir: path.join(dir, "scratch"),
        legacyRoot: legacy,
        legacyAccelRedirect: "/legacy-media/",
      };
    });
    behind = await startHttpUtilityApp({ configDir: accelConfig });
    const r = await runSidecars(["media", "import", "--from", legacy, "--domain", "oyo.test"], {
      env: { DATABASE_URL: behind.db.url, CONFIG_DIR: accelConfig },
    });
    expect(r.code).toBe(0);
  });
  afterAll(async () => {
    await behind?.close();
    await rm(accelConfig, { recursive: true, force: true });
  });

  it("hands the file to nginx with the headers, or answers 404 when it is no longer as imported", async () => {
    const rel = "videos/VID_20170512_103000.mp4";
    const res = await fetch(behind.url(`/api/v1/attachments/${rel}`));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-accel-redirect")).toBe(`/legacy-media/${rel}`);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(res.headers.get("etag")).toBe(etagOf(bytes[rel] as Buffer));
    expect((await res.arrayBuffer()).byteLength).toBe(0);

    await utimes(path.join(legacy, rel), new Date(), new Date());
    const changed = await fetch(behind.url(`/api/v1/attachments/${rel}`));
    expect(changed.status).toBe(404);
    expect(changed.headers.get("x-accel-redirect")).toBeNull();
  });
});
