import { readFileSync } from "node:fs";
import sharp, { type SharpOptions } from "sharp";
import { serveMeasurements } from "./closed-loop.ts";

// The baseline of attachments-avatar-upload.bench.ts: the sharp work of one avatar upload written bare, in
// a loop with a fixed number in flight (as many as the load generator keeps uploads in flight against the
// service). The work mirrors what images.ts `process(…, "avatar")` does: the header read, one decode
// (EXIF orientation applied, square centre crop) to raw pixels, then from those pixels the stored original
// (JPEG, the configured quality) and a square WebP thumbnail per size (effort 2). Nothing else: no HTTP, no multipart,
// no hashing, no files, no database. Runs as its own process (started with an IPC channel): each message
// { durationS } is answered with one measurement.
// Usage: node test/bench/avatar-sharp-loop.ts <jpeg file> <inFlight> <libvips threads> <quality> <size,size…>

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

serveMeasurements(inFlight as number, avatar);
