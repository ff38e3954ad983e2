import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { newKey } from "#common/media/keys.ts";
import { projectRoot } from "#common/paths.ts";
import { runSidecars, runSidecarsOnTerminal } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";

/**
 * `sidecars media gc`, run as the operator runs it (bin/sidecars.js) against this file's database and an fs
 * storage in a temporary directory (the config's `media.storage.options.root`, set in a copy of config/).
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let db: TestDatabase;
let configDir: string;
let root: string;

beforeAll(async () => {
  db = await createTestDatabase();
  root = await mkdtemp(path.join(tmpdir(), "sidecars-media-root-"));
  configDir = await mkdtemp(path.join(tmpdir(), "sidecars-media-config-"));
  await cp(path.join(projectRoot, "config"), configDir, { recursive: true });
  const testConfig = JSON.parse(await readFile(path.join(configDir, "test.json"), "utf8"));
  testConfig.media = { ...testConfig.media, storage: { kind: "fs", options: { root } } };
  await writeFile(path.join(configDir, "test.json"), JSON.stringify(testConfig));
});
afterAll(async () => {
  await db.drop();
  await rm(root, { recursive: true, force: true });
  await rm(configDir, { recursive: true, force: true });
});

const env = () => ({ DATABASE_URL: db.url, CONFIG_DIR: configDir });
const sidecars = (args: string[]) => runSidecars(["media", "gc", ...args], { env: env() });

const fileOf = (name: string) => path.join(root, name.slice(0, 2), name);

/** A file under the storage root, last changed `ageMs` ago. */
async function storeFile(name: string, ageMs: number): Promise<void> {
  const file = fileOf(name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `bytes of ${name}`);
  const when = new Date(Date.now() - ageMs);
  await utimes(file, when, when);
}

/** A partial upload (`<root>/.partial/…`), last changed `ageMs` ago. */
async function storePartial(ageMs: number): Promise<string> {
  const file = path.join(root, ".partial", `${randomBytes(12).toString("hex")}.part`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, "half an upload");
  const when = new Date(Date.now() - ageMs);
  await utimes(file, when, when);
  return path.basename(file);
}

interface Fixture {
  kind: "picture" | "avatar" | "video";
  node: string;
  ageMs: number;
  /** variant names: '128' (a thumbnail), 'poster' */
  variants?: string[];
  /** the owner's current avatar */
  current?: boolean;
}

/** An original and its variants: rows dated `ageMs` ago and their files, as old. Answers [original, ...variants]. */
async function attachment(f: Fixture): Promise<string[]> {
  const ext = f.kind === "video" ? "mp4" : "jpg";
  const original = newKey(ext);
  const variants = (f.variants ?? []).map((v) => ({ name: newKey(v === "poster" ? "jpg" : "webp"), v }));
  const insert = `INSERT INTO attachments (name, parent, variant, domain, node, kind, original_name, content_type, size, sha256, created_at)
     VALUES ($1, $2, $3, 'oyo.test', $4, $5, $6, $7, 14, sha256(convert_to($1, 'UTF8')),
             now() - make_interval(secs => $8::double precision / 1000))`;
  await db.pool.query(insert, [original, null, null, f.node, f.kind, `photo.${ext}`, "image/jpeg", f.ageMs]);
  for (const { name, v } of variants) {
    await db.pool.query(insert, [name, original, v, f.node, f.kind, null, "image/webp", f.ageMs]);
  }
  if (f.current) {
    await db.pool.query("INSERT INTO avatars (domain, node, name) VALUES ('oyo.test', $1, $2)", [
      f.node,
      original,
    ]);
  }
  const names = [original, ...variants.map((x) => x.name)];
  for (const name of names) await storeFile(name, f.ageMs);
  return names;
}

async function rows(): Promise<string[]> {
  const r = await db.pool.query<{ name: string }>("SELECT name FROM attachments ORDER BY name");
  return r.rows.map((x) => x.name);
}

/** Every file under the root (shards and .partial), as `<dir>/<name>`. */
async function files(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of await readdir(root)) {
    for (const name of await readdir(path.join(root, dir))) out.push(`${dir}/${name}`);
  }
  return out.sort();
}

const asFiles = (names: string[]) => names.map((n) => `${n.slice(0, 2)}/${n}`);

let fx: {
  oldPicture: string[];
  oldVideo: string[];
  staleAvatar: string[];
  recentPicture: string[];
  almostOld: string[];
  currentAvatar: string[];
  oldOrphan: string;
  youngOrphan: string;
  stalePartial: string;
  freshPartial: string;
};

beforeEach(async () => {
  await db.pool.query("DELETE FROM avatars");
  await db.pool.query("DELETE FROM attachments");
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  fx = {
    // older than 90 days: deleted with their variants
    oldPicture: await attachment({
      kind: "picture",
      node: "3069001",
      ageMs: 100 * DAY,
      variants: ["128", "512"],
    }),
    oldVideo: await attachment({ kind: "video", node: "3069001", ageMs: 400 * DAY, variants: ["poster"] }),
    // an avatar replaced since (no `avatars` row names it any more): an attachment like any other
    staleAvatar: await attachment({ kind: "avatar", node: "3069002", ageMs: 300 * DAY, variants: ["128"] }),
    // younger: kept
    recentPicture: await attachment({ kind: "picture", node: "3069001", ageMs: 10 * DAY, variants: ["128"] }),
    almostOld: await attachment({ kind: "picture", node: "3069002", ageMs: 89 * DAY }),
    // the current avatar, however old: kept
    currentAvatar: await attachment({
      kind: "avatar",
      node: "3069002",
      ageMs: 500 * DAY,
      variants: ["128"],
      current: true,
    }),
    // files without a row: a crash between storing and recording
    oldOrphan: newKey("jpg"),
    youngOrphan: newKey("png"),
    stalePartial: await storePartial(2 * DAY),
    freshPartial: await storePartial(HOUR),
  };
  await storeFile(fx.oldOrphan, 2 * DAY);
  await storeFile(fx.youngOrphan, 2 * HOUR);
});

const kept = () => [...fx.recentPicture, ...fx.almostOld, ...fx.currentAvatar];
const old = () => [...fx.oldPicture, ...fx.oldVideo, ...fx.staleAvatar];

describe("sidecars media gc", () => {
  it("deletes old attachments with their variants, files without a row and stale partial uploads; a rerun finds nothing", async () => {
    const before = Date.now();
    const r = await sidecars(["--older-than", "90d"]);
    expect(r).toMatchObject({ code: 0, stderr: "" }); // no progress bar without a terminal
    const m =
      /^deleted 3 attachment\(s\) \(7 file\(s\) with thumbnails\) uploaded before (\S+); removed 1 file\(s\) without a row, 1 partial upload\(s\) and 0 unfinished XEP-0363 upload\(s\)\n$/.exec(
        r.stdout,
      );
    expect(m, r.stdout).not.toBeNull();
    const cutoff = Date.parse(m?.[1] ?? "");
    expect(cutoff).toBeGreaterThanOrEqual(before - 90 * DAY);
    expect(cutoff).toBeLessThanOrEqual(Date.now() - 90 * DAY);

    expect(await rows()).toEqual(kept().sort());
    expect(await files()).toEqual(
      [...asFiles([...kept(), fx.youngOrphan]), `.partial/${fx.freshPartial}`].sort(),
    );
    for (const name of old()) expect(existsSync(fileOf(name)), name).toBe(false);
    expect(existsSync(fileOf(fx.oldOrphan))).toBe(false);
    expect((await db.pool.query("SELECT node FROM avatars")).rows).toEqual([{ node: "3069002" }]);

    const again = await sidecars(["--older-than", "90d"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /^deleted 0 attachment\(s\) \(0 file\(s\) with thumbnails\) uploaded before \S+; removed 0 file\(s\) without a row, 0 partial upload\(s\) and 0 unfinished XEP-0363 upload\(s\)\n$/,
    );
    expect(await rows()).toEqual(kept().sort());
  });

  it("drops XEP-0363 reservations a crash left pending for a day, with their half file; one in progress stays", async () => {
    /** A slot's row as slot-store.ts reserves it (its SHA-256 all zeros until complete), and what was written of it. */
    const reservation = async (ageMs: number) => {
      const name = newKey("bin");
      await db.pool.query(
        `INSERT INTO attachments (name, domain, node, kind, original_name, content_type, size, sha256, created_at)
         VALUES ($1, 'oyo.test', '', 'upload', 'voice.ogg', 'audio/ogg', 1048576, decode(repeat('00', 32), 'hex'),
                 now() - make_interval(secs => $2::double precision / 1000))`,
        [name, ageMs],
      );
      await storeFile(name, ageMs);
      return name;
    };
    const abandoned = await reservation(2 * DAY);
    const inProgress = await reservation(HOUR);

    const dry = await sidecars(["--older-than", "90d", "--dry-run"]);
    expect(dry.stdout).toMatch(/ and 1 unfinished XEP-0363 upload\(s\)\n$/);
    const r = await sidecars(["--older-than", "90d"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/, 1 partial upload\(s\) and 1 unfinished XEP-0363 upload\(s\)\n$/);
    expect(await rows()).toEqual([...kept(), inProgress].sort());
    expect(existsSync(fileOf(abandoned))).toBe(false);
    expect(existsSync(fileOf(inProgress))).toBe(true);
  });

  it("counts without deleting anything on --dry-run", async () => {
    const rowsBefore = await rows();
    const filesBefore = await files();
    expect(rowsBefore).toHaveLength(old().length + kept().length);
    const dry = await sidecars(["--older-than", "2160h", "--dry-run"]);
    expect(dry).toMatchObject({ code: 0, stderr: "" });
    expect(dry.stdout).toMatch(
      /^would delete 3 attachment\(s\) uploaded before \d{4}-\d\d-\d\dT[\d:.]+Z and 0 unfinished XEP-0363 upload\(s\)\n$/,
    );
    expect(await rows()).toEqual(rowsBefore);
    expect(await files()).toEqual(filesBefore);

    // an age beyond any upload is no database error: nothing is that old
    const ages = await sidecars(["--older-than", "999999w", "--dry-run"]);
    expect(ages).toMatchObject({
      code: 0,
      stdout:
        "would delete 0 attachment(s) uploaded before 1970-01-01T00:00:00.000Z and 0 unfinished XEP-0363 upload(s)\n",
      stderr: "",
    });
  });

  it("deletes every old attachment when the batch is smaller than their number", async () => {
    const r = await sidecars(["--older-than", "13w", "--batch", "1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^deleted 3 attachment\(s\) \(7 file\(s\) with thumbnails\) uploaded before /);
    expect(await rows()).toEqual(kept().sort());
    for (const name of old()) expect(existsSync(fileOf(name)), name).toBe(false);

    // a shorter age reaches the younger attachments, never the current avatar
    const minutes = await sidecars(["--older-than", "30m", "--batch", "2"]);
    expect(minutes.stdout).toMatch(
      /^deleted 2 attachment\(s\) \(3 file\(s\) with thumbnails\) uploaded before /,
    );
    expect(await rows()).toEqual([...fx.currentAvatar].sort());
    expect(await files()).toEqual(
      [...asFiles([...fx.currentAvatar, fx.youngOrphan]), `.partial/${fx.freshPartial}`].sort(),
    );
  });

  it("refuses a bad duration or batch with one line and exit 2, deleting nothing", async () => {
    const filesBefore = await files();
    for (const bad of ["90x", "0d", "-5d", "1.5d", ""]) {
      const r = await sidecars(["--older-than", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toBe(
        `sidecars: --older-than: "${bad}" is not a duration: write a positive whole number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 90d\n`,
      );
      expect(r.stdout, bad).toBe("");
    }
    for (const bad of ["0", "1.5", "10001", "many"]) {
      const r = await sidecars(["--older-than", "1d", "--batch", bad]);
      expect(r, bad).toMatchObject({
        code: 2,
        stdout: "",
        stderr: `sidecars: --batch: "${bad}" is not a whole number from 1 to 10000\n`,
      });
    }
    const missing = await sidecars([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--older-than <duration>' not specified/);
    expect(await rows()).toHaveLength(old().length + kept().length);
    expect(await files()).toEqual(filesBefore);
  });

  it("draws a progress bar when a person watches (a terminal)", async () => {
    const out = await runSidecarsOnTerminal(["media", "gc", "--older-than", "90d", "--batch", "1"], env());
    expect(out).toMatch(/media gc \[=+\] 3\/3 attachments/);
    expect(out).toMatch(/deleted 3 attachment\(s\) \(7 file\(s\) with thumbnails\)/);
    expect(await rows()).toEqual(kept().sort());
  });
});
