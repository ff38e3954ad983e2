import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat, utimes } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { addUser } from "#common/users/web-users.ts";
import { fakeMp4 } from "../../services/http-utility/src/attachments/test-fixtures.ts";
import { createSlot, token } from "../bench/xep0363-mongooseim.ts";
import { runSidecars } from "../support/cli.ts";
import { testConfigDir } from "../support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { eventually } from "../support/eventually.ts";
import { freePort } from "../support/free-port.ts";
import { runService } from "../support/processes.ts";
import { s3rverCredentials, startS3Server, type TestS3Server } from "../support/s3-server.ts";
import { slowUpload, type UploadOutcome } from "../support/slow-upload.ts";

/**
 * Crash safety of uploads (docs/security.md "Crash safety of uploads"; docs/attachments.md "Storage backends"):
 * the real http-utility process is SIGKILLed 50 times with videos in flight, 25 times on the fs backend and
 * 25 on the s3 backend (s3rver), and restarted each time. Then: every stored object is whole (its SHA-256 is
 * one of a video sent), every row names an object with the row's SHA-256, and `sidecars media gc` removes
 * what the kills left (partial files, incomplete multipart uploads, objects without a row). The kill moments
 * come from a seeded generator (CRASH_SEED replays a run).
 *
 * Videos are used because they stream straight to the backend; on s3 each is larger than the 5 MiB part
 * size, so every one is a multipart upload that a kill leaves incomplete (a smaller one is a single
 * PutObject, whose atomicity is S3's, not ours). The next process is started while the current one uploads,
 * so a restart costs no wall time.
 *
 * An XEP-0363 slot is written in place (fs-storage.ts `fresh`): a kill mid-PUT leaves half a file under the
 * slot's name, which its pending row keeps from being served until `sidecars media gc` drops both a day later.
 */

const SEED = Number(process.env.CRASH_SEED ?? 13);
const KILLS_PER_BACKEND = 25;
const UPLOADS_PER_KILL = 3;
const MiB = 1024 * 1024;
const DAY = 86_400_000;
const BUCKET = "crash";

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(SEED);
const between = (min: number, max: number) => Math.floor(min + random() * (max - min + 1));

interface Backend {
  name: "fs" | "s3";
  user: { node: string; domain: string; password: string };
  configDir: string;
  config: Config;
  /** ranges of video sizes, one picked at random per upload: on s3 below and above the 5 MiB part size */
  sizes: [number, number][];
  /** when the kill comes after the uploads start; on s3 late enough that some are past their first part */
  killAfterMs: [number, number];
}

let db: TestDatabase;
let s3: TestS3Server;
let sdk: S3Client;
let work: string;
const backends: Backend[] = [];

const configDirFor = (media: Record<string, unknown>) =>
  testConfigDir((test) => {
    test.media = { ...(test.media as object | undefined), ...media };
  }, work);

beforeAll(async () => {
  db = await createTestDatabase();
  work = await mkdtemp(path.join(tmpdir(), "sidecars-crash-"));
  s3 = await startS3Server();
  sdk = new S3Client({
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3rverCredentials(),
  });
  await sdk.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const media = (storage: unknown) => ({
    storage,
    tmpDir: path.join(work, "scratch"),
    uploads: { videos: { maxBytes: 64 * MiB } },
  });
  const fsDir = configDirFor(media({ kind: "fs", options: { root: path.join(work, "store") } }));
  const s3Dir = configDirFor(
    media({
      kind: "s3",
      options: {
        bucket: BUCKET,
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: s3rverCredentials(),
        partSizeBytes: 5 * MiB,
      },
    }),
  );
  for (const [name, configDir, node, sizes] of [
    ["fs", fsDir, "306900000011", [[1 * MiB, 8 * MiB]]],
    [
      "s3",
      s3Dir,
      "306900000012",
      [
        [512 * 1024, 5 * MiB - 4096],
        [5 * MiB + 4096, 9 * MiB],
      ],
    ],
  ] as const) {
    const config = loadConfig({ env: { APP_ENV: "test", CONFIG_DIR: configDir } });
    const user = { node, domain: "localhost", password: `pw of ${node}` };
    const domain = config.domains.localhost;
    if (!domain) throw new Error("the test config has no localhost domain");
    await addUser(db.pool, user, { cleartext: user.password }, domain);
    backends.push({
      name,
      user,
      configDir,
      config,
      sizes: sizes.map(([lo, hi]): [number, number] => [lo, hi]),
      // from the start of the three uploads: most of them (0.5–9 MiB at about 9 MiB/s) are under way then
      killAfterMs: name === "fs" ? [50, 700] : [100, 1000],
    });
  }
}, 60_000);

afterAll(async () => {
  sdk?.destroy();
  await s3?.close();
  await db?.drop();
  await rm(work, { recursive: true, force: true });
});

interface Running {
  url: string;
  child: ChildProcess;
  exited: Promise<{ stdout: string }>;
}

/** An http-utility process of `b`'s config on this file's database, once it says it is ready. */
function start(
  b: Pick<Backend, "configDir">,
  o: { port?: number; env?: Record<string, string> } = {},
): Promise<Running> {
  return (o.port ? Promise.resolve(o.port) : freePort()).then(
    (port) =>
      new Promise<Running>((resolve, reject) => {
        const exited = runService(
          "http-utility",
          {
            ...o.env,
            CONFIG_DIR: b.configDir,
            DATABASE_URL: db.url,
            HTTP_UTILITY_PORT: String(port),
            LOG_LEVEL: "error",
          },
          (child) => resolve({ url: `http://127.0.0.1:${port}`, child, exited }),
        );
        exited.then((e) =>
          reject(new Error(`http-utility exited before it was ready: ${JSON.stringify(e)}`)),
        );
      }),
  );
}

const sha256Of = (data: Buffer) => createHash("sha256").update(data).digest("hex");

async function hashOf(storage: Storage, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of await storage.get(key)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function listAll(storage: Storage) {
  const out: { key: string; size: number }[] = [];
  for await (const o of storage.list()) out.push({ key: o.key, size: o.size });
  return out;
}

async function rowsOf(b: Backend): Promise<Map<string, string>> {
  const r = await db.pool.query<{ name: string; sha256: Buffer }>(
    "SELECT name, sha256 FROM attachments WHERE domain = $1 AND node = $2",
    [b.user.domain, b.user.node],
  );
  return new Map(r.rows.map((x) => [x.name, x.sha256.toString("hex")]));
}

/** What the kills left that is not an object: partial files (fs) or incomplete multipart uploads (s3). */
async function leftovers(b: Backend): Promise<number> {
  if (b.name === "fs") {
    return (await readdir(path.join(work, "store", ".partial")).catch(() => [])).length;
  }
  const answer = await sdk.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return answer.Uploads?.length ?? 0;
}

/** Sets every file and directory under `dir` `ms` into the past: gc spares what is younger than a day. */
async function age(dir: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    if (e.isDirectory()) await age(p, ms);
    else await utimes(p, when, when);
  }
  await utimes(dir, when, when);
}

interface Figures {
  kills: number;
  uploads: number;
  stored: number;
  cut: number;
  refused: number;
  leftoversBeforeGc: number;
  orphansBeforeGc: number;
  gc: string;
  seconds: number;
}

// about 30 s a backend, and must be: 25 kills each, with uploads under way and the next process booting
describe("SIGKILL in the middle of uploads", () => {
  for (const name of ["fs", "s3"] as const) {
    it(`${name}: leaves no partial object under a final name, no row without its object, and gc sweeps the rest`, async () => {
      const b = backends.find((x) => x.name === name) as Backend;
      const started = Date.now();
      const sent = new Set<string>();
      const f: Figures = {
        kills: 0,
        uploads: 0,
        stored: 0,
        cut: 0,
        refused: 0,
        leftoversBeforeGc: 0,
        orphansBeforeGc: 0,
        gc: "",
        seconds: 0,
      };
      const answered = new Map<string, string>();
      let next = start(b);
      try {
        for (let kill = 0; kill < KILLS_PER_BACKEND; kill++) {
          const current = await next;
          next = start(b); // boots while this one uploads
          const uploads: Promise<UploadOutcome>[] = [];
          for (let i = 0; i < UPLOADS_PER_KILL; i++) {
            const [lo, hi] = b.sizes[between(0, b.sizes.length - 1)] as [number, number];
            const data = fakeMp4(between(lo, hi), between(0, 255));
            sent.add(sha256Of(data));
            uploads.push(
              slowUpload({
                url: `${current.url}/api/v1/attachments/videos`,
                authorization: `Basic ${Buffer.from(`${b.user.node}@${b.user.domain}:${b.user.password}`).toString("base64")}`,
                field: "attachments",
                filename: `clip-${kill}-${i}.mp4`,
                contentType: "video/mp4",
                data,
                chunkBytes: 64 * 1024,
                pauseMs: () => between(2, 12), // about 9 MiB/s: most uploads outlast the kill
              }),
            );
          }
          await new Promise((r) => setTimeout(r, between(...b.killAfterMs)));
          current.child.kill("SIGKILL");
          await current.exited;
          f.kills++;
          for (const o of await Promise.all(uploads)) {
            f.uploads++;
            if ("cut" in o) f.cut++;
            else if (o.status === 201) {
              f.stored++;
              const first = (JSON.parse(o.body) as { attachments: { fileName: string; sha256: string }[] })
                .attachments[0];
              if (first) answered.set(first.fileName, first.sha256);
            } else {
              f.refused++;
              const log = (await current.exited).stdout;
              // the process's error lines say why
              expect(o.status, `${o.body}\n${log.slice(0, 4000)}`).toBeLessThan(500);
            }
          }
        }
      } finally {
        const spare = await next.catch(() => undefined);
        spare?.child.kill("SIGKILL");
        await spare?.exited;
      }

      const storage = await createStorage(b.config.media.storage);
      try {
        // every object under a final name is whole: its bytes are a video that was sent
        const objects = await listAll(storage);
        const rows = await rowsOf(b);
        for (const o of objects) {
          const hash = await hashOf(storage, o.key);
          expect(sent.has(hash), `${o.key} (${o.size} bytes) is not any video sent: a partial object`).toBe(
            true,
          );
          const row = rows.get(o.key);
          if (row) expect(hash, `${o.key} differs from its row`).toBe(row);
        }
        // every row names an object, and every answered upload has its row
        const keys = new Set(objects.map((o) => o.key));
        expect([...rows.keys()].filter((n) => !keys.has(n))).toEqual([]);
        for (const [name, hash] of answered) expect(rows.get(name), `the answered ${name}`).toBe(hash);

        f.leftoversBeforeGc = await leftovers(b);
        f.orphansBeforeGc = objects.filter((o) => !rows.has(o.key)).length;
        await age(
          b.name === "fs" ? path.join(work, "store") : path.resolve(s3.uploadDir(BUCKET, "x"), "../../.."),
          2 * DAY,
        );
        const gc = await runSidecars(["media", "gc", "--older-than", "36500d"], {
          env: { CONFIG_DIR: b.configDir, DATABASE_URL: db.url },
        });
        expect(gc.code, gc.stderr).toBe(0);
        f.gc = gc.stdout.trim();
        expect(f.gc).toContain(
          `removed ${f.orphansBeforeGc} file(s) without a row, ${f.leftoversBeforeGc} partial upload(s) and 0 unfinished XEP-0363 upload(s)`,
        );

        // after gc: nothing partial, no object without a row, every row's object still there
        expect(await leftovers(b)).toBe(0);
        const after = new Set((await listAll(storage)).map((o) => o.key));
        expect([...after].sort()).toEqual([...(await rowsOf(b)).keys()].sort());
        expect((await rowsOf(b)).size).toBe(rows.size);
      } finally {
        await storage.close();
      }
      f.seconds = Math.round((Date.now() - started) / 100) / 10;
      console.log(`crash ${name} (seed ${SEED}): ${JSON.stringify(f)}`);
      expect(f.kills).toBe(KILLS_PER_BACKEND);
      // the kills must land mid-upload, else this tests nothing: how many do depends on the machine's speed
      // (a fast one finishes more uploads before the kill), so a third of the 75 uploads at least
      expect(f.cut).toBeGreaterThanOrEqual(KILLS_PER_BACKEND);
    }, 120_000);
  }
});

describe("SIGKILL in the middle of an XEP-0363 PUT (fs: a slot is written in place)", () => {
  const SECRET = "s3 secret of the crash test";
  const MONGOOSE = {
    region: "eu-east-1",
    accessKeyId: "AKIDCRASH",
    secretAccessKey: SECRET,
    expirationTime: 600,
  };

  it("serves no half file, keeps the slot refused until gc drops it a day later, then takes it again", async () => {
    const root = path.join(work, "xep0363-store");
    const configDir = testConfigDir((test) => {
      test.media = {
        ...(test.media as object | undefined),
        storage: { kind: "fs", options: { root } },
        tmpDir: path.join(work, "scratch"),
        xmppUpload: {
          domains: {
            localhost: {
              maxBytes: 16 * MiB,
              s3: {
                accessKeyId: MONGOOSE.accessKeyId,
                secretAccessKey: { env: "XEP0363_CRASH_SECRET" },
                region: MONGOOSE.region,
              },
            },
          },
        },
      };
    }, work);
    // the restarted process on the same port: the signed URL names its host and port
    const port = await freePort();
    const boot = () => start({ configDir }, { port, env: { XEP0363_CRASH_SECRET: SECRET } });
    const data = randomBytes(4 * MiB);
    const first = await boot();
    const slot = createSlot(
      { ...MONGOOSE, bucketUrl: `${first.url}/api/v1/xmpp-upload/s3/localhost` },
      { utc: new Date(), token: token(randomBytes(32)), filename: "voice.ogg", size: data.length },
    );
    const fileOf = (name: string) => path.join(root, name.slice(0, 2), name);

    // the first MiB, then the client stalls: the process is killed with the slot's file half written
    const req = http.request(slot.put, { method: "PUT", headers: { "content-length": String(data.length) } });
    req.on("error", () => {}); // the connection dies with the process
    req.write(data.subarray(0, MiB));
    const name = await eventually(
      async () => {
        const r = await db.pool.query<{ name: string }>("SELECT name FROM attachments WHERE kind = 'upload'");
        const n = r.rows[0]?.name;
        const size = n
          ? await stat(fileOf(n)).then(
              (s) => s.size,
              () => 0,
            )
          : 0;
        return size > 0 && n;
      },
      15_000,
      "the slot reserved and its file begun",
    );
    first.child.kill("SIGKILL");
    await first.exited;
    req.destroy();

    const second = await boot();
    try {
      // the half file under the slot's name is never served: its row is still pending
      expect((await fetch(slot.get)).status).toBe(404);
      expect(existsSync(fileOf(name))).toBe(true);
      // the slot stays used until gc: a PUT to it is refused, and nothing is overwritten
      expect((await fetch(slot.put, { method: "PUT", body: data })).status).toBe(409);

      // a day later gc drops the reservation and what was written of it
      await db.pool.query(
        "UPDATE attachments SET created_at = created_at - interval '2 days' WHERE name = $1",
        [name],
      );
      const gc = await runSidecars(["media", "gc", "--older-than", "36500d"], {
        env: { CONFIG_DIR: configDir, DATABASE_URL: db.url },
      });
      expect(gc.code, gc.stderr).toBe(0);
      expect(gc.stdout).toContain("and 1 unfinished XEP-0363 upload(s)");
      expect(existsSync(fileOf(name))).toBe(false);

      // the client's retry of its slot (still within its expiry) now stores the whole file
      const retry = await fetch(slot.put, { method: "PUT", body: data });
      expect(retry.status, await retry.text()).toBe(201);
      const back = Buffer.from(await (await fetch(slot.get)).arrayBuffer());
      expect(sha256Of(back)).toBe(sha256Of(data));
    } finally {
      second.child.kill("SIGKILL");
      await second.exited;
    }
  }, 120_000);
});
