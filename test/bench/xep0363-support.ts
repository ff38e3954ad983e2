import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import type { Duplex } from "node:stream";
import { type AttachmentsService, BENCH_DOMAIN, startAttachmentsService } from "./attachments-support.ts";
import type { BenchContext, Sample, Side } from "./frame.ts";
import { createSlot, type MongooseImOptions, token } from "./xep0363-mongooseim.ts";

/**
 * What the XEP-0363 benchmarks share: http-utility with MongooseIM's S3 uploads on for the bench domain
 * (attachments-support.ts, its own storage), slots made as MongooseIM makes them (xep0363-mongooseim.ts) and a
 * closed-loop PUT client; the GETs are wrk's (wrk.ts).
 */

export const MiB = 2 ** 20;
/** The file of every upload: 1 MiB of noise (an OMEMO blob looks like that). */
export const FILE = randomBytes(MiB);
export const IN_FLIGHT = 16;
const SECRET_ENV = "XEP0363_BENCH_SECRET";
const SECRET = randomBytes(24).toString("hex");

export interface UploadService extends AttachmentsService {
  /** A fresh slot of the bench domain, signed now. */
  slot(filename?: string): { put: string; get: string; headers: Record<string, string> };
  /** Forgets every upload (rows and files). */
  clear(): Promise<void>;
}

export async function startUploadService(ctx: BenchContext): Promise<UploadService> {
  // the child's environment is the bench's (attachments-support.ts): the secret rides along
  process.env[SECRET_ENV] = SECRET;
  const service = await startAttachmentsService(ctx, {
    xmppUpload: {
      domains: {
        [BENCH_DOMAIN]: {
          maxBytes: 16 * MiB,
          quotaBytes: 0,
          s3: { accessKeyId: "AKIDBENCH", secretAccessKey: { env: SECRET_ENV }, region: "us-east-1" },
        },
      },
    },
  });
  const options: MongooseImOptions = {
    bucketUrl: `${service.url}/api/v1/xmpp-upload/s3/${BENCH_DOMAIN}`,
    region: "us-east-1",
    accessKeyId: "AKIDBENCH",
    secretAccessKey: SECRET,
    expirationTime: 600,
  };
  // the 4,096 shard directories of a store in service (fs-storage.ts: a name's first two characters)
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (const a of alphabet)
    for (const b of alphabet) await mkdir(path.join(service.storageRoot, a + b), { recursive: true });
  let n = 0;
  return {
    ...service,
    slot: (filename = `file-${n++}.bin`) =>
      createSlot(options, {
        utc: new Date(),
        token: token(randomBytes(32)),
        filename,
        contentType: "application/octet-stream",
        size: FILE.length,
      }),
    async clear() {
      await service.pool.query("DELETE FROM attachments WHERE domain = $1", [BENCH_DOMAIN]);
      // the files, not the shard directories: a store in service has all 4,096 of them (any store of more
      // than a few ten thousand files), and a new shard costs a mkdir and an fsync of the root per upload
      for (const shard of await readdir(service.storageRoot).catch(() => [])) {
        const dir = path.join(service.storageRoot, shard);
        for (const f of await readdir(dir).catch(() => [])) await rm(path.join(dir, f), { force: true });
      }
    },
  };
}

/** One PUT or POST of `body` over `agent`; resolves with the status once the answer is read. */
export function send(
  url: string,
  method: "PUT" | "POST",
  headers: Record<string, string>,
  body: Buffer,
  agent: http.Agent,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent,
      headers: { ...headers, "content-length": String(body.length) },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
      res.once("error", reject);
    });
    req.end(body);
  });
}

/**
 * Keeps every socket for the next upload, as OkHttp (Conversations) and the other clients' HTTP stacks do
 * whatever the server's `Keep-Alive: timeout=` hint says. Node's agent drops a socket whose hint is 1 s (the
 * test config's `shutdown.keepAliveTimeoutMs`, which the bench's service runs with), so every upload to the
 * service would pay a new connection while the baseline's (5 s, as production's default) reuse theirs.
 */
class KeepingAgent extends http.Agent {
  override keepSocketAlive(socket: Duplex): boolean {
    super.keepSocketAlive(socket);
    return true;
  }
}

/**
 * `IN_FLIGHT` uploads at all times for `durationS`, each over keep-alive; uploads answered 201 per second.
 * `next` gives each upload's URL, method and headers (a fresh slot for http-utility); `pids`, the processes
 * serving them (their CPU is reported beside the client's); each measurement's figure is also pushed to
 * `values`.
 */
export function uploadSide(
  label: string,
  next: () => { url: string; method: "PUT" | "POST"; headers: Record<string, string> },
  cleanup: () => Promise<void>,
  o: { pids?: () => readonly number[]; values?: number[] } = {},
): Side {
  return {
    label,
    ...(o.pids ? { pids: o.pids } : {}),
    async measure(durationS): Promise<Sample> {
      const agent = new KeepingAgent({ keepAlive: true, maxSockets: IN_FLIGHT });
      const latencies: number[] = [];
      const until = performance.now() + durationS * 1000;
      let failed: string | undefined;
      const worker = async () => {
        while (performance.now() < until && !failed) {
          const r = next();
          const t0 = performance.now();
          const status = await send(r.url, r.method, r.headers, FILE, agent);
          if (status !== 201) failed = `${label}: answered ${status}`;
          latencies.push(performance.now() - t0);
        }
      };
      const t0 = performance.now();
      try {
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      } finally {
        agent.destroy();
      }
      const seconds = (performance.now() - t0) / 1000;
      await cleanup();
      if (failed) throw new Error(failed);
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
      const value = latencies.length / seconds;
      o.values?.push(value);
      return { value, p50Ms: at(0.5), p99Ms: at(0.99) };
    },
  };
}
