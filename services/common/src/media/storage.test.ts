import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pathToFileURL } from "node:url";
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import { s3rverCredentials, startS3Server, type TestS3Server } from "../../../../test/support/s3-server.ts";
import { type MediaConfig, mediaSchema } from "../config/media-schema.ts";
import { StartupError } from "../errors.ts";
import { InvalidKeyError, isKey, newKey } from "./keys.ts";
import { type ByteRange, MissingObjectError, type Storage } from "./storage.ts";
import { createStorage, storageKinds } from "./storage-registry.ts";

const MiB = 1024 * 1024;
/** The S3 part size in these tests: S3's minimum, so that 12 MiB is three parts. */
const PART = 5 * MiB;

/** A stored name's shape, for look-alikes one character away from it. */
const VALID = "AbCdEfGhIjKlMnOpQrStUvWx";

const HOSTILE: [string, string][] = [
  ["a parent traversal", "../etc/passwd"],
  ["an absolute path", "/etc/passwd"],
  ["a NUL byte", "a\u0000b/../../etc/passwd"],
  ["a NUL byte in a stored name", `${VALID.slice(0, 23)}\u0000.jpg`],
  ["a percent-encoded ../", "%2e%2e%2fetc"],
  ["a double-encoded ../", "%252e%252e%252f"],
  ["an overlong UTF-8 /", "..%c0%af"],
  ["fullwidth dots and solidus", "．．／etc"],
  ["one-dot leaders", "\u2024\u2024/x"],
  ["a fullwidth solidus in a stored name", `${VALID.slice(0, 12)}\uff0f${VALID.slice(13)}.jpg`],
  ["a / in a stored name", `${VALID.slice(0, 12)}/${VALID.slice(13)}.jpg`],
  ["a stored name with a path after it", `${VALID}.jpg/../../etc/passwd`],
  ["backslashes", `..\\..\\${VALID}.jpg`],
  ["a stored name with a newline after it", `${VALID}.jpg\n`],
  ["a dot", "."],
  ["two dots", ".."],
  ["an empty string", ""],
  ["a megabyte of name characters", "A".repeat(MiB)],
];

/** One backend under test, fresh for each test: an empty directory or an empty bucket. */
interface Subject {
  storage: Storage;
  /** Partial writes present now (fs: files in `.partial`; s3: incomplete multipart uploads). */
  partials(): Promise<string[]>;
  /** Leaves a partial write as a crash would, started `ageMs` ago. */
  leavePartial(ageMs: number): Promise<void>;
  /** Puts things that are not stored objects where `list()` looks. */
  addStrangers(): Promise<void>;
  /** A summary of everything the backend could touch: equal before and after a call means it did no I/O. */
  fingerprint(): Promise<string>;
}

interface Backend {
  name: string;
  start(): Promise<void>;
  subject(): Promise<Subject>;
  stop(): Promise<void>;
}

function fsBackend(): Backend {
  let base = "";
  return {
    name: "fs",
    async start() {
      base = await mkdtemp(path.join(tmpdir(), "sidecars-fs-storage-"));
      // where a naive join(root, key.slice(0, 2), "../etc/passwd") would land
      await mkdir(path.join(base, "etc"));
      await writeFile(path.join(base, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    },
    async subject() {
      const root = path.join(await mkdtemp(path.join(base, "case-")), "root");
      const partialDir = path.join(root, ".partial");
      return {
        storage: await createStorage({ kind: "fs", options: { root } }),
        partials: () => readdir(partialDir).catch(() => []),
        async leavePartial(ageMs) {
          await mkdir(partialDir, { recursive: true });
          const file = path.join(partialDir, `${randomBytes(12).toString("hex")}.part`);
          await writeFile(file, "half a file");
          const then = new Date(Date.now() - ageMs);
          await utimes(file, then, then);
        },
        async addStrangers() {
          await mkdir(path.join(root, "ab"), { recursive: true });
          await writeFile(path.join(root, "ab", "notes.txt"), "x");
          await writeFile(path.join(root, "README"), "x");
          // a stored name in the wrong shard directory
          await writeFile(path.join(root, "ab", `zz${newKey("jpg").slice(2)}`), "x");
        },
        fingerprint: () => tree(base),
      };
    },
    stop: () => rm(base, { recursive: true, force: true }),
  };
}

function s3Backend(): Backend {
  let server: TestS3Server | undefined;
  let admin: S3Client | undefined;
  let buckets = 0;
  return {
    name: "s3",
    async start() {
      server = await startS3Server();
      admin = new S3Client({
        region: "us-east-1",
        endpoint: server.endpoint,
        forcePathStyle: true,
        credentials: s3rverCredentials(),
      });
    },
    async subject() {
      if (!server || !admin) throw new Error("s3rver not started");
      const { endpoint, uploadDir, requests } = server;
      const sdk = admin;
      const bucket = `media-${++buckets}`;
      await sdk.send(new CreateBucketCommand({ Bucket: bucket }));
      return {
        storage: await createStorage({
          kind: "s3",
          options: {
            bucket,
            endpoint,
            forcePathStyle: true,
            prefix: "media/",
            credentials: s3rverCredentials(),
            partSizeBytes: PART,
          },
        }),
        async partials() {
          const answer = await sdk.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          return (answer.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
        },
        async leavePartial(ageMs) {
          const Key = `media/${newKey("mp4")}`;
          const { UploadId } = await sdk.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
          if (!UploadId) throw new Error("no UploadId");
          await sdk.send(
            new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(1024) }),
          );
          const then = new Date(Date.now() - ageMs);
          await utimes(uploadDir(bucket, UploadId), then, then);
        },
        async addStrangers() {
          const names = [
            `other/${newKey("jpg")}`,
            newKey("jpg"),
            "media/notes.txt",
            `media/sub/${newKey("jpg")}`,
          ];
          for (const Key of names) await sdk.send(new PutObjectCommand({ Bucket: bucket, Key, Body: "x" }));
        },
        fingerprint: async () => `${requests()} requests`,
      };
    },
    async stop() {
      admin?.destroy();
      await server?.close();
    },
  };
}

describe.each([fsBackend(), s3Backend()])("$name storage", (backend) => {
  let s: Subject;
  beforeAll(() => backend.start());
  afterAll(() => backend.stop());
  beforeEach(async () => {
    s = await backend.subject();
  });
  afterEach(() => s.storage.close());

  it("answers the bytes it stored, and their size", async () => {
    const key = newKey("jpg");
    const bytes = randomBytes(100_000);
    await s.storage.put(key, Readable.from([bytes]), { contentType: "image/jpeg" });

    expect(sha256(await read(s.storage, key))).toBe(sha256(bytes));
    const found = await s.storage.stat(key);
    expect(found).toMatchObject({ key, size: bytes.length });
    expect(Math.abs(Date.now() - (found?.modified.getTime() ?? 0))).toBeLessThan(60_000);
  });

  it("stores an empty object", async () => {
    const key = newKey("txt");
    await s.storage.put(key, Readable.from([]), { contentType: "text/plain" });
    expect(await s.storage.stat(key)).toMatchObject({ size: 0 });
    expect((await read(s.storage, key)).length).toBe(0);
  });

  it("answers byte ranges: the first bytes, the middle, the last byte", async () => {
    const key = newKey("mp4");
    const bytes = randomBytes(1000);
    await s.storage.put(key, Readable.from([bytes]), { contentType: "video/mp4" });

    expect(await read(s.storage, key, { start: 0, end: 9 })).toEqual(bytes.subarray(0, 10));
    expect(await read(s.storage, key, { start: 400, end: 599 })).toEqual(bytes.subarray(400, 600));
    expect(await read(s.storage, key, { start: 999, end: 999 })).toEqual(bytes.subarray(999));
  });

  it("says a missing object is missing", async () => {
    const key = newKey("jpg");
    await expect(s.storage.get(key)).rejects.toBeInstanceOf(MissingObjectError);
    await expect(s.storage.get(key, { start: 0, end: 9 })).rejects.toBeInstanceOf(MissingObjectError);
    expect(await s.storage.stat(key)).toBeUndefined();
  });

  it("deletes, and deleting again or deleting what never was is fine", async () => {
    const key = newKey("png");
    await s.storage.put(key, Readable.from([Buffer.from("png")]), { contentType: "image/png" });
    await s.storage.delete(key);
    expect(await s.storage.stat(key)).toBeUndefined();
    await expect(s.storage.get(key)).rejects.toBeInstanceOf(MissingObjectError);
    await s.storage.delete(key);
    await s.storage.delete(newKey("png"));
  });

  it("lists its objects and nothing else", async () => {
    expect(await collect(s.storage.list())).toEqual([]);
    await s.addStrangers();
    const stored = [newKey("jpg"), newKey("webp"), newKey("mp4")];
    for (const [i, key] of stored.entries()) {
      await s.storage.put(key, Readable.from([randomBytes(10 * (i + 1))]), { contentType: "image/jpeg" });
    }
    await s.leavePartial(0);

    const listed = await collect(s.storage.list());
    expect(listed.map((o) => [o.key, o.size]).sort()).toEqual(
      stored.map((key, i) => [key, 10 * (i + 1)]).sort(),
    );
    for (const o of listed) expect(o.modified).toBeInstanceOf(Date);
  });

  it.each([
    ["before a part is full", 3 * MiB],
    ["after two parts went out", 2 * PART + MiB],
  ])("leaves nothing when the source fails %s", async (_when, failAfter) => {
    const key = newKey("mp4");
    await expect(s.storage.put(key, failingSource(failAfter), { contentType: "video/mp4" })).rejects.toThrow(
      "client went away",
    );

    expect(await s.storage.stat(key)).toBeUndefined();
    await expect(s.storage.get(key)).rejects.toBeInstanceOf(MissingObjectError);
    expect(await s.partials()).toEqual([]);
    expect(await collect(s.storage.list())).toEqual([]);
  });

  it("streams an object of several parts", async () => {
    const key = newKey("mp4");
    const bytes = randomBytes(12 * MiB + 3);
    await s.storage.put(key, chunked(bytes, 64 * 1024), { contentType: "video/mp4" });

    expect(await s.storage.stat(key)).toMatchObject({ size: bytes.length });
    expect(sha256(await read(s.storage, key))).toBe(sha256(bytes));
    // across the first part boundary, and the tail of the last part
    expect(await read(s.storage, key, { start: PART - 5, end: PART + 4 })).toEqual(
      bytes.subarray(PART - 5, PART + 5),
    );
    const end = bytes.length - 1;
    expect(await read(s.storage, key, { start: end - 99, end })).toEqual(bytes.subarray(end - 99));
    expect(await s.partials()).toEqual([]);
  });

  it("stores a fresh key (one nothing reads before it is stored) alike; a failed one leaves nothing", async () => {
    const key = newKey("bin");
    const bytes = randomBytes(3 * MiB + 1);
    const info = { contentType: "application/octet-stream", fresh: true };
    await s.storage.put(key, chunked(bytes, 64 * 1024), info);
    expect(sha256(await read(s.storage, key))).toBe(sha256(bytes));

    const cut = newKey("bin");
    await expect(s.storage.put(cut, failingSource(MiB), info)).rejects.toThrow("client went away");
    expect(await s.storage.stat(cut)).toBeUndefined();
    expect(await s.partials()).toEqual([]);
    expect(sha256(await read(s.storage, key))).toBe(sha256(bytes));
  });

  it("sweeps partial writes older than asked, and only those", async () => {
    const key = newKey("jpg");
    await s.storage.put(key, Readable.from([Buffer.from("kept")]), { contentType: "image/jpeg" });
    await s.leavePartial(2 * 3600_000);
    await s.leavePartial(0);

    expect(await s.storage.sweepPartial(3600_000)).toBe(1);
    expect(await s.partials()).toHaveLength(1);
    // a cutoff in the future takes the fresh one too
    expect(await s.storage.sweepPartial(-60_000)).toBe(1);
    expect(await s.partials()).toEqual([]);
    expect(await s.storage.stat(key)).toMatchObject({ size: 4 });
  });

  it("has nothing to sweep when nothing was written", async () => {
    expect(await s.storage.sweepPartial(0)).toBe(0);
  });

  it.each(HOSTILE)("refuses %s before any I/O", async (_what, key) => {
    const before = await s.fingerprint();
    const body = Readable.from([Buffer.from("owned")]);

    await expect(s.storage.put(key, body, { contentType: "text/plain" })).rejects.toBeInstanceOf(
      InvalidKeyError,
    );
    await expect(s.storage.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(s.storage.get(key, { start: 0, end: 0 })).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(s.storage.stat(key)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(s.storage.delete(key)).rejects.toBeInstanceOf(InvalidKeyError);
    const localPath = s.storage.localPath;
    if (localPath) expect(() => localPath(key)).toThrow(InvalidKeyError);

    expect(body.readableDidRead).toBe(false);
    body.destroy();
    expect(await s.fingerprint()).toBe(before);
  });
});

it("the look-alikes are one character away from a stored name", () => {
  expect(isKey(`${VALID}.jpg`)).toBe(true);
  expect(isKey(VALID)).toBe(true);
});

describe("createStorage", () => {
  it.each([
    [
      "an unknown kind",
      { kind: "ftp", options: {} },
      /^media\.storage: kind "ftp" is unknown: use one of fs, s3 /,
    ],
    [
      "fs without a root",
      { kind: "fs", options: {} },
      /^media\.storage\.options\.root: required: directory of the stored files$/,
    ],
    [
      "s3 without a bucket",
      { kind: "s3", options: { region: "eu-west-1" } },
      /^media\.storage\.options\.bucket: required: the S3 bucket name$/,
    ],
    [
      "an unknown option",
      { kind: "s3", options: { bucket: "media", acl: "public-read" } },
      /^media\.storage\.options\.acl: unknown key: remove it, or use one of bucket, region, /,
    ],
    ["a prefix without a final /", { kind: "s3", options: { bucket: "media", prefix: "media" } }, /prefix: /],
    [
      "parts below S3's minimum",
      { kind: "s3", options: { bucket: "media", partSizeBytes: 1024 } },
      /partSizeBytes: /,
    ],
    [
      "an endpoint that is no URL",
      { kind: "s3", options: { bucket: "media", endpoint: "localhost:9000" } },
      /endpoint: /,
    ],
    [
      "static credentials without the secret",
      { kind: "s3", options: { bucket: "media", credentials: { accessKeyId: "AKIA" } } },
      /credentials\.secretAccessKey: /,
    ],
  ])("refuses %s with a one-line StartupError", async (_what, config, message) => {
    const err = await createStorage(config as MediaConfig["storage"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain("\n");
  });

  it("has every kind named in the config reference (the config schema lists none itself)", () => {
    const described = mediaSchema.unwrap().shape.storage.unwrap().shape.kind.description;
    for (const kind of storageKinds.kinds) expect(described).toContain(`\`${kind}\``);
  });

  it("builds each kind from good options without any I/O", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    try {
      const fs = await createStorage({ kind: "fs", options: { root: path.join(dir, "media") } });
      expect(fs.kind).toBe("fs");
      expect(fs.localPath).toBeTypeOf("function");
      await expect(stat(path.join(dir, "media"))).rejects.toMatchObject({ code: "ENOENT" });
      await fs.close();

      // nothing listens on the discard port: building the client must not connect
      const s3 = await createStorage({
        kind: "s3",
        options: { bucket: "media", endpoint: "http://127.0.0.1:9", forcePathStyle: true, prefix: "media/" },
      });
      expect(s3.kind).toBe("s3");
      expect(s3.localPath).toBeUndefined();
      await s3.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("says at start which capabilities a backend lacks and what that costs", async () => {
    const lines: Array<{ level: number; msg: string; lost?: Record<string, string> }> = [];
    const log = pino({ level: "debug" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const s3 = await createStorage(
      { kind: "s3", options: { bucket: "media", endpoint: "http://127.0.0.1:9" } },
      { log },
    );
    await s3.close();
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    const fs = await createStorage({ kind: "fs", options: { root: dir } }, { log });
    await fs.close();
    await rm(dir, { recursive: true, force: true });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [
        30,
        expect.stringMatching(
          /^media\.storage: storage backend "s3"; without local file path: videos get no poster .*; without free space: /,
        ),
      ],
      [20, 'media.storage: storage backend "fs"'],
    ]);
    expect(Object.keys(lines[0]?.lost ?? {})).toEqual(["localPath", "freeBytes"]);
  });

  it("loads the AWS SDK only when an s3 storage is created", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    // a fresh process, whose module graph is only what this script imports; the hook sees every module
    const script = `
      import { registerHooks } from "node:module";
      const urls = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
      const { createStorage } = await import(${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, "storage-registry.ts")).href)});
      const sdk = () => urls.some((u) => u.includes("/@aws-sdk/"));
      const fs = await createStorage({ kind: "fs", options: { root: ${JSON.stringify(dir)} } });
      const withFs = sdk();
      const s3 = await createStorage({ kind: "s3", options: { bucket: "media", endpoint: "http://127.0.0.1:9" } });
      process.stdout.write(JSON.stringify({ withFs, withS3: sdk() }));
      await fs.close();
      await s3.close();
    `;
    try {
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
      expect(JSON.parse(out)).toEqual({ withFs: false, withS3: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function read(storage: Storage, key: string, range?: ByteRange): Promise<Buffer> {
  return buffer(await storage.get(key, range));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** `bytes` in chunks of `size`, as a socket delivers them. */
function chunked(bytes: Buffer, size: number): Readable {
  let at = 0;
  return new Readable({
    read() {
      const chunk = at < bytes.length ? bytes.subarray(at, at + size) : null;
      at += size;
      this.push(chunk);
    },
  });
}

/** A client that sends `bytes` bytes and then goes away (a cut connection, a size limit hit). */
function failingSource(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.destroy(new Error("client went away"));
        return;
      }
      const chunk = randomBytes(Math.min(256 * 1024, bytes - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/** Every file under `dir` with its size and mtime. */
async function tree(dir: string): Promise<string> {
  const names = await readdir(dir, { recursive: true });
  const lines = await Promise.all(
    names.map(async (name) => {
      const s = await stat(path.join(dir, name));
      return `${name} ${s.isDirectory() ? "dir" : s.size} ${s.mtimeMs}`;
    }),
  );
  return lines.sort().join("\n");
}

describe("fs storage with fsync off", () => {
  it("stores whole objects under their names, atomically, without flushing them", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    try {
      const fs = await createStorage({ kind: "fs", options: { root: dir, fsync: false } });
      const key = newKey("bin");
      const data = randomBytes(5 * 1024 * 1024 + 7);
      await fs.put(key, Readable.from([data]), { contentType: "application/octet-stream" });
      expectSameBytes(await buffer(await fs.get(key)), data, "the stored object");
      const failing = new Readable({
        read() {
          this.push(randomBytes(1024 * 1024));
          this.destroy(new Error("cut"));
        },
      });
      const other = newKey("bin");
      await expect(fs.put(other, failing, { contentType: "application/octet-stream" })).rejects.toThrow(
        "cut",
      );
      expect(await fs.stat(other)).toBeUndefined();
      expect(await readdir(path.join(dir, ".partial"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("fs storage of a fresh key", () => {
  it("writes it in place, not by way of `.partial`, over whatever a crash left under its name", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    try {
      const fs = await createStorage({ kind: "fs", options: { root: dir } });
      const key = newKey("bin");
      const file = path.join(dir, key.slice(0, 2), key);
      // a longer half-written file of an upload the process died in (its slot given back since)
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, randomBytes(2 * MiB));

      const data = randomBytes(MiB + 5);
      const body = new PassThrough();
      const stored = fs.put(key, body, { contentType: "application/octet-stream", fresh: true });
      body.write(data.subarray(0, 4096));
      // while the bytes still come, they are already under the key's own name, and nothing is in `.partial`
      await expect.poll(async () => (await stat(file)).size, { timeout: 10_000 }).toBe(4096);
      expect(await readdir(path.join(dir, ".partial")).catch(() => [])).toEqual([]);
      body.end(data.subarray(4096));
      await stored;
      expectSameBytes(await buffer(await fs.get(key)), data, "the object stored over the leftover");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("fs storage directories", () => {
  it("makes `.partial` and a shard again when they are removed under it (an operator cleaning up)", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "sidecars-storage-"));
    try {
      const fs = await createStorage({ kind: "fs", options: { root: dir } });
      const data = randomBytes(1000);
      const first = newKey("bin");
      await fs.put(first, Readable.from([data]), { contentType: "application/octet-stream" });
      // the directories it remembers as made are gone: the next writes make them again
      await rm(dir, { recursive: true, force: true });
      const again = `${first.slice(0, 2)}${newKey("bin").slice(2)}`;
      await fs.put(again, Readable.from([data]), { contentType: "application/octet-stream" });
      expectSameBytes(await buffer(await fs.get(again)), data, "the object stored after the removal");
      await rm(path.join(dir, first.slice(0, 2)), { recursive: true });
      await fs.put(first, Readable.from([data]), { contentType: "application/octet-stream" });
      expectSameBytes(await buffer(await fs.get(first)), data, "the object stored in a shard made again");
      expect(await readdir(path.join(dir, ".partial"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
