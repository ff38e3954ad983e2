import { randomBytes } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { withRss } from "../support/rss.ts";
import {
  type AttachmentsService,
  AUTHORIZATION,
  BENCH_DOMAIN,
  multipartFraming,
  startAttachmentsService,
  startBareUploadServer,
} from "./attachments-support.ts";
import type { Benchmark, Sample, Side } from "./frame.ts";

/** The file of every upload: 1 GiB, made on the fly. */
const FILE_BYTES = 2 ** 30;
const MiB = 2 ** 20;
/** The bound on the service's memory during one such upload. */
const RSS_GROWTH_LIMIT = 64 * MiB;

/**
 * An MP4 as far as its type goes: an `ftyp` box (major brand isom, which file-type calls video/mp4), then one
 * `mdat` box (64-bit size) holding the rest of the file, so ffmpeg sees a well-formed file without a `moov`
 * and gives up at once instead of parsing noise.
 */
function mp4Head(total: number): Buffer {
  const ftyp = Buffer.alloc(24);
  ftyp.writeUInt32BE(24, 0);
  ftyp.write("ftypisom", 4, "latin1");
  ftyp.writeUInt32BE(0x200, 12);
  ftyp.write("isommp41", 16, "latin1");
  const mdat = Buffer.alloc(16);
  mdat.writeUInt32BE(1, 0); // the size is the 64-bit one that follows
  mdat.write("mdat", 4, "latin1");
  mdat.writeBigUInt64BE(BigInt(total - ftyp.length), 8);
  return Buffer.concat([ftyp, mdat]);
}

/** One MiB of noise, sent over and over (neither side can tell, and the client costs little CPU). */
const NOISE = randomBytes(MiB);

function* bodyChunks(head: Buffer, tail: Buffer): Generator<Buffer> {
  const fileHead = mp4Head(FILE_BYTES);
  yield Buffer.concat([head, fileHead]);
  for (let left = FILE_BYTES - fileHead.length; left > 0; left -= NOISE.length) {
    yield left >= NOISE.length ? NOISE : NOISE.subarray(0, left);
  }
  yield tail;
}

interface UploadResult {
  status: number;
  body: string;
  bytes: number;
  seconds: number;
  /** from the last byte sent to the answer: what the server did once it had everything */
  tailMs: number;
}

/** The same client for both sides: one POST over a fresh connection, Content-Length known, streamed. */
async function upload(url: string, headers: Record<string, string>): Promise<UploadResult> {
  const framing = multipartFraming("bench.mp4", "video/mp4");
  const bytes = framing.head.length + FILE_BYTES + framing.tail.length;
  const t0 = performance.now();
  let sentAt = t0;
  const req = http.request(url, {
    method: "POST",
    agent: false,
    headers: { ...headers, "content-type": framing.contentType, "content-length": String(bytes) },
  });
  const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
  });
  req.once("finish", () => {
    sentAt = performance.now();
  });
  // an early answer (an error) ends the upload: the request stream may then fail, the answer says why
  const sent = pipeline(Readable.from(bodyChunks(framing.head, framing.tail)), req).catch(() => {});
  const res = await answered;
  let body = "";
  res.setEncoding("utf8");
  for await (const chunk of res) body += chunk as string;
  const done = performance.now();
  await sent;
  return { status: res.statusCode ?? 0, body, bytes, seconds: (done - t0) / 1000, tailMs: done - sentAt };
}

const mib = (n: number) => (n / MiB).toFixed(1);

/** One side: a 1 GiB upload per measurement (durationS does not apply), RSS sampled, files removed after. */
function uploadSide(
  label: string,
  o: {
    url: string;
    pid: number;
    headers: Record<string, string>;
    check: (r: UploadResult) => string | undefined;
    cleanup: () => Promise<void>;
    growth: number[];
  },
): Side {
  return {
    label,
    pids: () => [o.pid],
    async measure(): Promise<Sample> {
      try {
        const { result: r, before, peak } = await withRss(o.pid, () => upload(o.url, o.headers));
        const problem = r.status === 201 ? o.check(r) : `answered ${r.status}`;
        if (problem) throw new Error(`${label}: ${problem}: ${r.body.slice(0, 500)}`);
        o.growth.push(peak - before);
        console.error(
          `attachments-upload-throughput  ${label}: ${mib(r.bytes)} MiB in ${r.seconds.toFixed(2)} s ` +
            `(answer ${Math.round(r.tailMs)} ms after the last byte); RSS ${mib(before)} -> peak ${mib(peak)} MiB ` +
            `(+${mib(peak - before)} MiB)`,
        );
        return { value: r.bytes / MiB / r.seconds };
      } finally {
        await o.cleanup();
      }
    },
  };
}

async function emptyDir(dir: string): Promise<void> {
  for (const f of await readdir(dir).catch(() => []))
    await rm(path.join(dir, f), { recursive: true, force: true });
}

async function removeUploads(service: AttachmentsService): Promise<void> {
  await service.pool.query("DELETE FROM attachments WHERE domain = $1", [BENCH_DOMAIN]);
  await emptyDir(service.storageRoot);
}

/** A large upload streamed through multer and the upload engine against a socket-to-file copy. */
export const benchmark: Benchmark = {
  name: "attachments-upload-throughput",
  figure: "MiB/s",
  description:
    "POST /api/v1/attachments/videos of a 1 GiB MP4 (multipart, Content-Length known), one upload per " +
    "measurement whatever BENCH_DURATION_S (use BENCH_ROUNDS=3): http-utility (fs storage: type sniffing, " +
    "SHA-256, fsync, ffmpeg poster attempt, row) vs bare node:http piping the request to a file (the extra " +
    "side: the same copy fsynced, test/bench/bare-upload-server.ts fsync); the " +
    `service's RSS growth must stay < ${RSS_GROWTH_LIMIT / MiB} MiB; goal ratio >= 0.7`,
  async start(ctx) {
    const service = await startAttachmentsService(ctx);
    if (service.config.media.uploads.videos.maxBytes < FILE_BYTES) {
      throw new Error(`media.uploads.videos.maxBytes is below ${FILE_BYTES}`);
    }
    // the baseline as until now (nothing flushed), and the same copy flushed to disk as the fs storage must
    // before it answers (bare-upload-server.ts fsync): the fair baseline of a durable store, an extra side
    const bare = await startBareUploadServer(ctx, service.workDir, "no-fsync");
    const durable = await startBareUploadServer(ctx, service.workDir, "fsync");
    if (!service.server.pid) throw new Error("the service has no pid");

    const projectGrowth: number[] = [];
    ctx.defer(() => {
      // the first upload is the frame's warm-up, into a fresh process: Node's own buffers and heap grow then
      // (the bare server's too), so the limit is judged on the measured rounds
      const [first, ...rounds] = projectGrowth;
      if (first === undefined) return;
      const worst = rounds.length > 0 ? Math.max(...rounds) : first;
      console.error(
        `attachments-upload-throughput: http-utility RSS growth per 1 GiB upload: first (warm-up) ` +
          `${mib(first)} MiB; measured rounds ${rounds.map(mib).join(", ") || "none"} MiB; worst ${mib(worst)} ` +
          `MiB (${worst < RSS_GROWTH_LIMIT ? "within" : "OVER"} the ${RSS_GROWTH_LIMIT / MiB} MiB limit)`,
      );
    });
    const bareSide = (label: string, b: typeof bare) =>
      uploadSide(label, {
        url: `${b.url}/upload`,
        pid: b.pid,
        headers: {},
        check: (r) =>
          (JSON.parse(r.body) as { size?: number }).size === r.bytes ? undefined : "bytes missing",
        cleanup: () => emptyDir(b.dir),
        growth: [],
      });
    return {
      project: uploadSide("http-utility", {
        url: `${service.url}/api/v1/attachments/videos`,
        pid: service.server.pid,
        headers: { authorization: AUTHORIZATION },
        check: (r) => {
          const a = (JSON.parse(r.body) as { attachments?: Array<{ size: number; contentType: string }> })
            .attachments?.[0];
          return a?.size === FILE_BYTES && a.contentType === "video/mp4"
            ? undefined
            : "the stored video is not the 1 GiB MP4 sent";
        },
        cleanup: () => removeUploads(service),
        growth: projectGrowth,
      }),
      baseline: bareSide("node:http -> file", bare),
      extras: [bareSide("node:http -> file, fsync", durable)],
    };
  },
};
