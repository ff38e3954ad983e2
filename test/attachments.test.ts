import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { addUser } from "#common/users/web-users.ts";
import { sha256 } from "./support/bytes.ts";
import { testConfigDir } from "./support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { freePort } from "./support/free-port.ts";
import { runService, waitForOk } from "./support/processes.ts";
import { withRss } from "./support/rss.ts";

/**
 * Attachments across real http-utility processes: two of them sharing one storage root (a cluster on an
 * NFS mount), and a 1 GiB video streamed through one while its memory is watched.
 */

const USER = { node: "306900000009", domain: "localhost", password: "pw of nine" };
const BASIC = `Basic ${Buffer.from(`${USER.node}@${USER.domain}:${USER.password}`).toString("base64")}`;
const GiB = 1024 * 1024 * 1024;

let db: TestDatabase;
let configDir: string;
let root: string;

beforeAll(async () => {
  db = await createTestDatabase();
  root = mkdtempSync(path.join(tmpdir(), "sidecars-media-"));
  configDir = testConfigDir((test) => {
    test.media = {
      storage: { kind: "fs", options: { root } },
      tmpDir: path.join(root, ".scratch"),
      uploads: { videos: { maxBytes: 2 * GiB } },
    };
  });
  const domain = loadConfig({ env: { APP_ENV: "test", CONFIG_DIR: configDir } }).domains.localhost;
  if (!domain) throw new Error("the test config has no localhost domain");
  await addUser(db.pool, USER, { cleartext: USER.password }, domain);
});

afterAll(async () => {
  await db?.drop();
  await rm(root, { recursive: true, force: true });
  await rm(configDir, { recursive: true, force: true });
});

interface Running {
  url: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** An http-utility process on the shared config, storage and database, ready to serve. */
async function startHttpUtility(): Promise<Running> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const exited = runService(
    "http-utility",
    { CONFIG_DIR: configDir, DATABASE_URL: db.url, HTTP_UTILITY_PORT: String(port) },
    (c) => {
      child = c;
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForOk(`${url}/healthz`, 30_000);
  if (!child) throw new Error("http-utility answered before it said ready");
  return { url, child, exited };
}

async function stop(r: Running | undefined) {
  if (!r) return;
  r.child.kill("SIGTERM");
  expect((await r.exited).code).toBe(0);
}

async function upload(base: string, kind: string, data: Buffer, name: string) {
  const form = new FormData();
  form.append("attachments", new Blob([new Uint8Array(data)]), name);
  const res = await fetch(`${base}/api/v1/attachments/${kind}`, {
    method: "POST",
    headers: { authorization: BASIC },
    body: form,
  });
  const body = (await res.json()) as {
    attachments: Array<{ fileName: string; thumbnailUrl: string; sha256: string }>;
  };
  expect(res.status, JSON.stringify(body)).toBe(201);
  const first = body.attachments[0];
  if (!first) throw new Error("no attachment in the answer");
  return first;
}

const photo = (r: number) =>
  sharp({ create: { width: 800, height: 600, channels: 3, background: { r, g: 90, b: 40 } } })
    .jpeg()
    .toBuffer();

describe("two http-utility processes sharing one storage root", () => {
  it("serves from one what was uploaded through the other, and a replaced avatar from both", async () => {
    const [a, b] = await Promise.all([startHttpUtility(), startHttpUtility()]);
    try {
      const picture = await upload(a.url, "pictures", await photo(200), "shared.jpg");
      const fromB = await fetch(`${b.url}/api/v1/attachments/pictures/${picture.fileName}`);
      expect(fromB.status).toBe(200);
      const bytes = Buffer.from(await fromB.arrayBuffer());
      expect(sha256(bytes)).toBe(picture.sha256);
      const thumbName = new URL(picture.thumbnailUrl).pathname.split("/").pop();
      expect((await fetch(`${b.url}/api/v1/attachments/pictures/${thumbName}`)).status).toBe(200);

      // an avatar set through b, then replaced through a: both serve the new one by node, the old name is gone
      const first = await upload(b.url, "avatars", await photo(10), "me.jpg");
      const byNode = `/api/v1/attachments/avatars/${USER.node}`;
      expect((await fetch(`${a.url}${byNode}`)).headers.get("etag")).toBe(
        `"${Buffer.from(first.sha256, "hex").toString("base64url")}"`,
      );
      const second = await upload(a.url, "avatars", await photo(250), "me-too.jpg");
      for (const server of [a, b]) {
        const res = await fetch(`${server.url}${byNode}`);
        expect(res.status).toBe(200);
        expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(second.sha256);
      }
      expect((await fetch(`${b.url}/api/v1/attachments/avatars/${first.fileName}`)).status).toBe(404);
      const onDisk = (await readdir(root, { recursive: true })).map(String);
      expect(onDisk.some((f) => f.endsWith(first.fileName))).toBe(false);
      expect(onDisk.some((f) => f.endsWith(second.fileName))).toBe(true);
    } finally {
      await Promise.all([stop(a), stop(b)]);
    }
  }, 90_000);
});

/**
 * POSTs one `size`-byte MP4 (a real `ftyp` box, then a repeated random MiB) as multipart, generated as it
 * is sent: the client holds 1 MiB, whatever the size. Answers the status, the body and the SHA-256 sent.
 */
function uploadVideo(base: string, size: number): Promise<{ status: number; body: string; sha256: string }> {
  const boundary = `----sidecars${randomBytes(8).toString("hex")}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const ftyp = Buffer.from("000000186674797069736f6d0000020069736f6d69736f32", "hex");
  const block = randomBytes(1024 * 1024);
  const hash = createHash("sha256");
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/api/v1/attachments/videos`, {
      method: "POST",
      headers: {
        authorization: BASIC,
        "content-type": `multipart/form-data; boundary=${boundary}`,
        "content-length": String(head.length + size + tail.length),
      },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => {
        body += c.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, sha256: hash.digest("hex") }));
    });
    let sent = 0;
    const write = () => {
      for (;;) {
        if (sent >= size) {
          req.end(tail);
          return;
        }
        const first = sent === 0;
        const source = first ? Buffer.concat([ftyp, block]) : block;
        const chunk = source.subarray(0, Math.min(block.length, size - sent));
        hash.update(chunk);
        sent += chunk.length;
        if (!req.write(first ? Buffer.concat([head, chunk]) : chunk)) {
          req.once("drain", write);
          return;
        }
      }
    };
    write();
  });
}

describe("a 1 GiB video upload", () => {
  it("is stored whole, checksummed, while the service's memory grows by less than 64 MiB", async () => {
    const server = await startHttpUtility();
    try {
      const pid = server.child.pid as number;
      // warm the upload path once (modules, pools, JIT, the heap grown to its working size), so the measure
      // is of a gigabyte streaming through a running service, not of its first upload
      await uploadVideo(server.url, 64 * 1024 * 1024);
      const started = performance.now();
      const { result, before, peak } = await withRss(pid, () => uploadVideo(server.url, GiB));
      expect(result.status, result.body).toBe(201);
      const answer = JSON.parse(result.body) as {
        attachments: Array<{ size: number; sha256: string; url: string }>;
      };
      expect(answer.attachments[0]).toMatchObject({ size: GiB, sha256: result.sha256 });
      const growth = peak - before;
      const seconds = (performance.now() - started) / 1000;
      console.info(
        `1 GiB upload in ${seconds.toFixed(2)} s: RSS ${Math.round(before / 2 ** 20)} MiB before, peak growth ${Math.round(growth / 2 ** 20)} MiB`,
      );
      expect(growth).toBeLessThan(64 * 1024 * 1024);

      // the last bytes, by a suffix range, are the last bytes sent
      const url = answer.attachments[0]?.url as string;
      const tail = await fetch(url, { headers: { range: "bytes=-16" } });
      expect(tail.status).toBe(206);
      expect(tail.headers.get("content-range")).toBe(`bytes ${GiB - 16}-${GiB - 1}/${GiB}`);
      expect((await tail.arrayBuffer()).byteLength).toBe(16);
    } finally {
      await stop(server);
    }
  }, 300_000);
});
