import { readFileSync } from "node:fs";
import sharp, { type SharpOptions } from "sharp";

// The baseline of attachments-avatar-upload.bench.ts: the sharp work of one avatar upload written bare, in
// a loop with a fixed number in flight (as many as the load generator keeps uploads in flight against the
// service). The work mirrors what images.ts `process(…, "avatar")` does: the header read, one decode
// (EXIF orientation applied, square centre crop) to raw pixels, then from those pixels the stored original
// (JPEG, the configured quality) and a square WebP thumbnail per size (effort 2). Nothing else: no HTTP, no multipart,
// no hashing, no files, no database. Runs as its own process (started with an IPC channel): each message
// { durationS } is answered with one measurement.
// Usage: node test/bench/avatar-sharp-loop.ts <jpeg file> <inFlight> <libvips threads> <quality> <size,size…>

export interface AvatarLoopRequest {
  durationS: number;
}

export interface AvatarLoopResult {
  /** Avatars completed within the window. */
  count: number;
  elapsedS: number;
  p50Ms: number;
  p99Ms: number;
}

const [file, inFlightText, threadsText, qualityText, sizesText] = process.argv.slice(2);
const [inFlight, threads, quality] = [inFlightText, threadsText, qualityText].map(Number);
const sizes = (sizesText ?? "").split(",").map(Number);
if (
  !process.send ||
  !file ||
  ![inFlight, threads, quality].every((n) => Number.isInteger(n) && (n as number) > 0) ||
  !sizes.every((n) => Number.isInteger(n) && n > 0)
) {
  console.error(
    "usage (with an IPC channel): avatar-sharp-loop.ts <jpeg file> <inFlight> <threads> <quality> <sizes>",
  );
  process.exit(2);
}

// as images.ts: no operation cache, the configured libvips threads per image
sharp.cache(false);
sharp.concurrency(threads as number);
const input = readFileSync(file);
const inputOptions = {
  failOn: "error",
  limitInputPixels: 40_000_000,
  autoOrient: true,
} satisfies SharpOptions;

async function avatar(): Promise<void> {
  const meta = await sharp(input, { ...inputOptions, limitInputPixels: false }).metadata();
  const { width, height } = meta.autoOrient;
  const side = Math.min(width, height);
  const { data, info } = await sharp(input, inputOptions)
    .extract({
      left: Math.floor((width - side) / 2),
      top: Math.floor((height - side) / 2),
      width: side,
      height: side,
    })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  await Promise.all([
    sharp(data, { raw, limitInputPixels: false }).jpeg({ quality }).toBuffer(),
    ...sizes.map((size) =>
      sharp(data, { raw, limitInputPixels: false })
        .resize(size, size, { fit: "inside", withoutEnlargement: true })
        .webp({ quality, effort: 2 }) // as images.ts
        .toBuffer(),
    ),
  ]);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function measure(durationS: number): Promise<AvatarLoopResult> {
  const start = performance.now();
  const deadline = start + durationS * 1000;
  const latencies: number[] = [];
  let running = 0;
  return new Promise((resolve, reject) => {
    const launch = () => {
      running++;
      const t0 = performance.now();
      avatar().then(() => {
        running--;
        const now = performance.now();
        if (now <= deadline) {
          latencies.push(now - t0);
          launch();
        } else if (running === 0) {
          // the ones still in flight at the deadline have finished: the next measurement starts clean
          latencies.sort((a, b) => a - b);
          const round = (ms: number) => Math.round(ms * 10) / 10;
          resolve({
            count: latencies.length,
            elapsedS: durationS,
            p50Ms: round(percentile(latencies, 50)),
            p99Ms: round(percentile(latencies, 99)),
          });
        }
      }, reject);
    };
    for (let i = 0; i < (inFlight as number); i++) launch();
  });
}

process.on("message", (msg: AvatarLoopRequest) => {
  measure(msg.durationS).then(
    (result) => process.send?.(result),
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.on("disconnect", () => process.exit(0));
