import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { type AttachmentsService, BENCH_DOMAIN, startAttachmentsService } from "./attachments-support.ts";
import type { BenchContext, Sample, Side } from "./frame.ts";
import { createSlot, type MongooseImOptions, token } from "./xep0363-mongooseim.ts";

/**
 * What the XEP-0363 benchmarks share: http-utility with MongooseIM's S3 uploads on for the bench domain
 * (attachments-support.ts, its own storage), slots made as MongooseIM makes them (xep0363-mongooseim.ts), a
 * closed-loop PUT client and a wrk side for GETs.
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
      for (const f of await readdir(service.storageRoot).catch(() => [])) {
        await rm(path.join(service.storageRoot, f), { recursive: true, force: true });
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
 * `IN_FLIGHT` uploads at all times for `durationS`, each over keep-alive; MiB/s of uploads answered 201.
 * `next` gives each upload's URL, method and headers (a fresh slot for http-utility).
 */
export function uploadSide(
  label: string,
  next: () => { url: string; method: "PUT" | "POST"; headers: Record<string, string> },
  cleanup: () => Promise<void>,
): Side {
  return {
    label,
    async measure(durationS): Promise<Sample> {
      const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
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
      return { value: latencies.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
    },
  };
}

/** CPU seconds a process has used so far (utime + stime of /proc/<pid>/stat). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on Linux
}

export const WRK = "/usr/bin/wrk";

/**
 * GETs by wrk (one thread, `connections` keep-alive connections) cycling through `paths` of `base`: requests/s,
 * failing on any non-2xx answer or socket error. Reports wrk's own share of the machine's CPU.
 */
export function wrkSide(
  label: string,
  base: string,
  paths: string[],
  connections: number,
  dir: string,
): Side {
  return {
    label,
    async measure(durationS): Promise<Sample> {
      const script = path.join(dir, `wrk-${label.replace(/\W+/g, "-")}.lua`);
      await writeFile(
        script,
        `local paths = { ${paths.map((p) => JSON.stringify(p)).join(", ")} }
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`,
      );
      const child = spawn(
        WRK,
        [
          "-t1",
          `-c${connections}`,
          `-d${Math.max(1, Math.round(durationS))}s`,
          "--latency",
          "-s",
          script,
          base,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        out += c.toString();
      });
      const pid = child.pid as number;
      let cpu = 0;
      const sampler = setInterval(() => {
        cpuSeconds(pid).then(
          (v) => {
            cpu = v;
          },
          () => {},
        );
      }, 200);
      const t0 = performance.now();
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      clearInterval(sampler);
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) throw new Error(`${label}: wrk exited ${code}: ${out}`);
      if (/Non-2xx or 3xx responses|Socket errors/.test(out))
        throw new Error(`${label}: wrk saw failures:\n${out}`);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
      if (!rps) throw new Error(`${label}: no Requests/sec in wrk's output:\n${out}`);
      const ms = (q: string) => {
        const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s)$`, "m").exec(out);
        if (!m) return undefined;
        const v = Number(m[1]);
        return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
      };
      const cores = (await readFile("/proc/cpuinfo", "utf8")).match(/^processor\s/gm)?.length ?? 1;
      console.error(
        `xep0363-get  ${label}: wrk used ${cpu.toFixed(2)} CPU s in ${seconds.toFixed(1)} s: ` +
          `${((100 * cpu) / (seconds * cores)).toFixed(0)} % of the machine's ${cores} cores`,
      );
      return { value: Number(rps), p50Ms: ms("50"), p99Ms: ms("99") };
    },
  };
}
