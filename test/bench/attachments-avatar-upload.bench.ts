import { readFileSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import sharp from "sharp";
import {
  type AttachmentsService,
  AUTHORIZATION,
  BENCH_DOMAIN,
  multipartBody,
  noisePixels,
  startAttachmentsService,
  uploadOnce,
} from "./attachments-support.ts";
import { loopSide } from "./closed-loop.ts";
import type { BenchContext, Benchmark, Side } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { wrkLoad } from "./wrk.ts";

/** Uploads in flight against the service, and avatars in flight in the sharp loop. */
const IN_FLIGHT = 4;

/**
 * A photo-like JPEG stored 1024×1280 with EXIF orientation 6 (shown 1280×1024): the avatar is the
 * auto-rotated, centre-cropped 1024×1024 square.
 */
async function photo(): Promise<Buffer> {
  const [w, h] = [128, 160];
  return sharp(noisePixels(w, h, 2), { raw: { width: w, height: h, channels: 3 } })
    .resize(1024, 1280, { kernel: "cubic" })
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** The child processes of this one that run `script` (the frame samples their CPU). */
function childrenRunning(script: string): number[] {
  return processTree(process.pid).filter((pid) => {
    if (pid === process.pid) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(script);
    } catch {
      return false;
    }
  });
}

/** The baseline: avatar-sharp-loop.ts in its own process, IN_FLIGHT avatars at a time. */
function startSharpLoop(
  ctx: BenchContext,
  file: string,
  images: { concurrency: number; quality: number; thumbnailSizes: number[] },
): Side {
  const script = "test/bench/avatar-sharp-loop.ts";
  let pids: number[] = [];
  const side = loopSide(
    ctx,
    "bare sharp loop",
    script,
    [
      file,
      String(IN_FLIGHT),
      String(images.concurrency),
      String(images.quality),
      images.thumbnailSizes.join(","),
    ],
    "avatar",
  );
  return {
    ...side,
    pids: () => {
      if (pids.length === 0) pids = childrenRunning(script);
      return pids;
    },
  };
}

/** Stored files under the storage root (its `.partial/` aside). */
async function storedFiles(root: string): Promise<number> {
  let n = 0;
  for (const shard of await readdir(root).catch(() => [])) {
    if (shard !== ".partial") n += (await readdir(path.join(root, shard))).length;
  }
  return n;
}

/**
 * After a load, what stays is one avatar: its original and its thumbnails, as rows and as files. Uploads cut
 * by the end of the load window may still be finishing: wait a little for them.
 */
async function checkOneAvatar(service: AttachmentsService, files: number): Promise<void> {
  let rows = -1;
  let stored = -1;
  for (let i = 0; i < 50; i++) {
    const r = await service.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM attachments WHERE domain = $1",
      [BENCH_DOMAIN],
    );
    rows = Number(r.rows[0]?.n);
    stored = await storedFiles(service.storageRoot);
    if (rows === files && stored === files) return;
    await sleep(100);
  }
  console.error(
    `attachments-avatar-upload: after the load ${rows} rows and ${stored} stored files, not ${files}: replaced avatars left behind`,
  );
}

/** The whole upload path of an avatar against the sharp work alone. */
export const benchmark: Benchmark = {
  name: "attachments-avatar-upload",
  figure: "avatars/s",
  description:
    `POST /api/v1/attachments/avatars of a ~1024×1280 JPEG with EXIF orientation, ${IN_FLIGHT} in flight, each ` +
    "replacing the last (old files deleted): http-utility vs a bare sharp loop in one process doing the same " +
    `image work (auto-rotate, square crop, one decode, original + thumbnails), ${IN_FLIGHT} in flight; goal ratio >= 0.8`,
  async start(ctx) {
    const service = await startAttachmentsService(ctx);
    const images = service.config.media.images;
    const jpeg = await photo();
    const file = path.join(service.workDir, "avatar.jpg");
    await writeFile(file, jpeg);

    const answer = await uploadOnce(service, "avatars", jpeg, "avatar.jpg", "image/jpeg");
    const sizes = Object.keys(answer.thumbnails).sort().join(",");
    if (answer.width !== answer.height || sizes !== [...images.thumbnailSizes].map(String).sort().join(",")) {
      throw new Error(`the avatar is not as expected: ${JSON.stringify(answer)}`);
    }
    console.error(
      `attachments-avatar-upload: input ${jpeg.length} bytes; stored ${answer.width}×${answer.height} ` +
        `${answer.contentType} of ${answer.size} bytes, thumbnails ${sizes}`,
    );
    const files = 1 + images.thumbnailSizes.length;
    await checkOneAvatar(service, files);

    const { contentType, body } = multipartBody(jpeg, "avatar.jpg", "image/jpeg");
    // wrk, as every HTTP benchmark: the same multipart request each time, every answer a 201
    const load = {
      base: service.url,
      paths: ["/api/v1/attachments/avatars"],
      connections: IN_FLIGHT,
      method: "POST" as const,
      headers: { authorization: AUTHORIZATION, "content-type": contentType },
      body,
      expectStatus: 201,
    };
    return {
      project: {
        label: "http-utility",
        pids: () => (service.server.pid ? [service.server.pid] : []),
        async measure(durationS) {
          const sample = await wrkLoad("http-utility", load, durationS);
          await checkOneAvatar(service, files);
          return sample;
        },
      },
      baseline: startSharpLoop(ctx, file, images),
    };
  },
};
