import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import sharp from "sharp";

/**
 * Bytes the attachment tests upload, made here (conventions: fixtures are built in code): photos with
 * EXIF, a decompression bomb's header, a truncated JPEG, MP4s file-type recognises and a real video.
 */

const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 20 } } });

/** Incompressible pixels: the file is about 3 bytes a pixel whatever the format. */
export const noisy = (width: number, height: number) =>
  sharp({
    create: {
      width,
      height,
      channels: 3,
      background: "#000",
      noise: { type: "gaussian", mean: 128, sigma: 60 },
    },
  });

/** A JPEG stored sideways (EXIF orientation 6): upright it is `height`×`width`. */
export const sidewaysPhoto = (width = 640, height = 480) =>
  solid(width, height).jpeg().withMetadata({ orientation: 6 }).toBuffer();

/** The GPS datum written into `gpsPhoto`: finding it in served bytes means the EXIF leaked. */
export const GPS_MARK = "WGS-84";

/** A 300×200 JPEG, sideways, whose EXIF carries a camera and a GPS position. */
export const gpsPhoto = () =>
  solid(300, 200)
    .withMetadata({ orientation: 6 })
    .withExifMerge({
      IFD0: { Make: "TestCam" },
      IFD3: { GPSMapDatum: GPS_MARK, GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 24/1" },
    })
    .jpeg()
    .toBuffer();

export const png = (width = 64, height = 48) => solid(width, height).png().toBuffer();
export const webp = (width = 64, height = 48) => solid(width, height).webp().toBuffer();

/** A real PNG whose IHDR claims other dimensions, CRC fixed: what a decompression bomb's header looks like. */
export async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const bytes = Buffer.from(await png(8, 8));
  // signature (8) + IHDR length (4) + "IHDR" (4), then width, height, ... and the chunk CRC at 29
  bytes.writeUInt32BE(width, 16);
  bytes.writeUInt32BE(height, 20);
  bytes.writeUInt32BE(crc32(bytes.subarray(12, 29)), 29);
  return bytes;
}

/** The first half of a noisy JPEG: the header is fine, the scan data stops. */
export async function truncatedJpeg(): Promise<Buffer> {
  const jpeg = await noisy(400, 300).jpeg().toBuffer();
  return jpeg.subarray(0, Math.floor(jpeg.length / 2));
}

/** An `ftyp isom` box and filler: file-type says video/mp4; ffmpeg finds no stream in it. */
export function fakeMp4(bytes: number, fill = 7): Buffer {
  const head = Buffer.from("000000186674797069736f6d0000020069736f6d69736f32", "hex");
  const body = Buffer.alloc(Math.max(0, bytes - head.length), fill);
  return Buffer.concat([head, body]);
}

const run = promisify(execFile);

/** A 2 s 320×240 H.264 MP4 made by ffmpeg in `dir`. */
export async function realVideo(dir: string): Promise<Buffer> {
  const file = path.join(dir, "testsrc.mp4");
  const source = "testsrc=duration=2:size=320x240:rate=10";
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    source,
    "-pix_fmt",
    "yuv420p",
  ];
  await run("ffmpeg", [...args, file]);
  return readFile(file);
}
