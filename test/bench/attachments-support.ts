import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { deepMerge } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { relativePathOf } from "#common/media/fs-storage.ts";
import { addUser } from "#common/users/web-users.ts";
import type { UploadAnswer } from "../../services/http-utility/src/attachments/schema.ts";
import { freePort } from "../support/free-port.ts";
import { benchConfigDir, benchServiceDatabase } from "./bench-database.ts";
import { type ChildServer, startChildServer } from "./child-server.ts";
import type { BenchContext } from "./frame.ts";

/**
 * What the attachment benchmarks share: http-utility (services/http-utility/src/main.ts, APP_ENV=test) in its
 * own process with a config copy (CONFIG_DIR) that adds a bench domain and points `media.storage` and
 * `media.tmpDir` at a temporary directory of its own; one bench user in web_users; multipart bodies. All of it
 * is undone once the benchmark ends: service stopped, the domain's rows deleted, directories removed.
 */

export const BENCH_DOMAIN = "attachments.bench.test";
const NODE = "bench-uploader";
const PASSWORD = "bench-uploader-secret";
export const AUTHORIZATION = `Basic ${Buffer.from(`${NODE}@${BENCH_DOMAIN}:${PASSWORD}`).toString("base64")}`;

type Json = Record<string, unknown>;

export interface AttachmentsService {
  server: ChildServer;
  /** The configuration the service runs with. */
  config: Config;
  /** The service's fs storage root. */
  storageRoot: string;
  url: string;
  pool: Pool;
  /** A scratch directory of the benchmark (removed at the end), besides the service's storage. */
  workDir: string;
  /** The file of a stored name in the service's fs storage. */
  fileOf(name: string): string;
}

async function deleteBenchRows(pool: Pool): Promise<void> {
  // avatars and variants go with their attachments (ON DELETE CASCADE)
  await pool.query("DELETE FROM attachments WHERE domain = $1", [BENCH_DOMAIN]);
  await pool.query("DELETE FROM web_users WHERE domain = $1", [BENCH_DOMAIN]);
}

/**
 * Starts http-utility with its own storage root; `media` is merged into the config's `media` section. With
 * `workers`, as `npm start` deploys it: that many cluster workers sharing the port (cluster-server.ts).
 */
export async function startAttachmentsService(
  ctx: BenchContext,
  media: Json = {},
  o: { workers?: number } = {},
): Promise<AttachmentsService> {
  const base = await mkdtemp(path.join(os.tmpdir(), "sidecars-bench-attachments-"));
  ctx.defer(() => rm(base, { recursive: true, force: true }));
  const storageRoot = path.join(base, "storage");
  const workDir = path.join(base, "work");
  await mkdir(workDir);
  const configDir = benchConfigDir(ctx, {
    domains: {
      [BENCH_DOMAIN]: { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
    },
    media: deepMerge(
      {
        storage: { kind: "fs", options: { root: storageRoot } },
        tmpDir: path.join(base, "tmp"),
        // one bench user uploads many GiB in a run: the per-user quota and daily budget would refuse them
        quotaBytes: 0,
        dailyUploadBytes: 0,
      },
      media,
    ),
  });
  const { env, config, pool } = await benchServiceDatabase(ctx, configDir, 4);
  await deleteBenchRows(pool); // left over by an interrupted run
  ctx.defer(() => deleteBenchRows(pool));
  const domain = config.domains[BENCH_DOMAIN];
  if (!domain) throw new Error(`${BENCH_DOMAIN} is missing from the bench config`);
  await addUser(pool, { node: NODE, domain: BENCH_DOMAIN }, { cleartext: PASSWORD }, domain);

  const port = await freePort();
  const main = "services/http-utility/src/main.ts";
  const server = await startChildServer({
    name: o.workers ? `http-utility (${o.workers} workers)` : "http-utility",
    script: o.workers ? "test/bench/cluster-server.ts" : main,
    ...(o.workers ? { args: [String(o.workers), main] } : {}),
    env: { ...env, HTTP_UTILITY_PORT: String(port) },
    url: `http://127.0.0.1:${port}`,
    readyPath: "/healthz",
  });
  ctx.defer(server.stop);
  return {
    server,
    config,
    storageRoot,
    url: server.url,
    pool,
    workDir,
    fileOf: (name) => path.join(storageRoot, relativePathOf(name)),
  };
}

/** The framing of one file in the field `attachments`: what goes before its bytes and after them. */
export function multipartFraming(filename: string, contentType: string) {
  const boundary = `----bench${Math.random().toString(16).slice(2)}`;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    head: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="${filename}"\r\n` +
        `Content-Type: ${contentType}\r\n\r\n`,
    ),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`),
  };
}

/** A whole multipart body of one file. */
export function multipartBody(file: Buffer, filename: string, fileType: string) {
  const f = multipartFraming(filename, fileType);
  return { contentType: f.contentType, body: Buffer.concat([f.head, file, f.tail]) };
}

/** One upload through the API, checked: the stored attachment's answer. */
export async function uploadOnce(
  service: AttachmentsService,
  kind: "pictures" | "avatars" | "videos",
  file: Buffer,
  filename: string,
  fileType: string,
): Promise<UploadAnswer> {
  const { contentType, body } = multipartBody(file, filename, fileType);
  const res = await fetch(`${service.url}/api/v1/attachments/${kind}`, {
    method: "POST",
    headers: { authorization: AUTHORIZATION, "content-type": contentType },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${kind}: answered ${res.status} ${text.slice(0, 500)}`);
  const answer = (JSON.parse(text) as { attachments: UploadAnswer[] }).attachments[0];
  if (!answer) throw new Error(`POST ${kind}: no attachment in ${text.slice(0, 500)}`);
  return answer;
}

/** The stored name at the end of an attachment URL. */
export const nameOf = (url: string) => new URL(url).pathname.split("/").at(-1) ?? "";

/** `width`×`height` RGB pixels of noise from a seeded generator (mulberry32): the same images every run. */
export function noisePixels(width: number, height: number, seed: number): Buffer {
  let s = seed | 0;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = next() & 0xff;
  return data;
}

/**
 * The bare upload baseline (bare-upload-server.ts) in its own process, writing under `workDir`: with `fsync` the
 * copy flushed to disk as the fs storage flushes before it answers (the fair baseline of a durable store).
 */
export async function startBareUploadServer(
  ctx: BenchContext,
  workDir: string,
  mode: "fsync" | "no-fsync",
): Promise<{ url: string; pid: number; dir: string }> {
  const dir = path.join(workDir, `bare-uploads-${mode}`);
  await mkdir(dir);
  const port = await freePort();
  const server = await startChildServer({
    name: `bare node:http upload (${mode})`,
    script: "test/bench/bare-upload-server.ts",
    args: [String(port), dir, ...(mode === "fsync" ? ["fsync"] : [])],
    url: `http://127.0.0.1:${port}`,
    readyPath: "/",
  });
  ctx.defer(server.stop);
  if (!server.pid) throw new Error(`${server.name} has no pid`);
  return { url: server.url, pid: server.pid, dir };
}
