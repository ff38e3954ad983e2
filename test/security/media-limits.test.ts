import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ALICE,
  refused,
  startTestApp,
  type TestApp,
  type TestAppOptions,
  uploaded,
} from "../../services/http-utility/src/attachments/test-app.ts";
import { fakeMp4, noisy, realVideo } from "../../services/http-utility/src/attachments/test-fixtures.ts";
import { withRss } from "../support/rss.ts";

/**
 * The attacks of a registered user (or anyone, for generated avatars) on the machine's CPU, memory and disk,
 * each sent as the attacker would against the real app (PostgreSQL, sharp on its worker, ffmpeg under
 * prlimit, an fs storage root), and the refusal that answers it (docs/security.md "Bounded work per request
 * and per user"). After each, the service still answers /healthz and nothing partial is left: every file
 * under the app's directory is a stored object with a row, no scratch or `.partial` file remains.
 */

const MiB = 1024 * 1024;
/** 6300 × 6300 = 39.7 MP, just under `media.images.maxPixels` (40 MP); one colour, so ~120 KB of PNG */
const FLOOD_SIDE = 6300;

let flood: Buffer;
let video: Buffer;
let fixtures: string;

beforeAll(async () => {
  fixtures = await mkdtemp(path.join(tmpdir(), "media-limits-"));
  flood = await sharp({
    create: { width: FLOOD_SIDE, height: FLOOD_SIDE, channels: 3, background: { r: 30, g: 90, b: 200 } },
  })
    .png({ compressionLevel: 9 })
    .toBuffer();
  video = await realVideo(fixtures);
});
afterAll(async () => {
  await rm(fixtures, { recursive: true, force: true });
});

const apps: TestApp[] = [];
async function start(media: Record<string, unknown> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const app = await startTestApp(media, options);
  apps.push(app);
  return app;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A real logger writing into an array, to count warn lines. */
function capturingLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

async function stillAnswers(app: TestApp) {
  const res = await fetch(`${app.base}/healthz`);
  expect(res.status).toBe(200);
}

/** Every file left is a stored object named by a row: no scratch file, no partial write, no orphan. */
async function nothingPartial(app: TestApp) {
  const rows = new Set(await app.rows());
  const stray = (await app.files()).filter((f) => {
    const [top, shard, name] = f.split("/");
    return !(top === "store" && shard !== ".partial" && name !== undefined && rows.has(name));
  });
  expect(stray).toEqual([]);
}

const pictures = (n: number, data: Buffer) =>
  Array.from({ length: n }, (_, i) => ({ data, name: `flood-${i}.png` }));

describe("pixel flood", () => {
  it("ten 40 MP PNGs at once: past the image slots and queue, 503 images_busy with Retry-After", async () => {
    const app = await start({ images: { slots: 1, queue: 1 } });
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.upload("pictures", ALICE, [{ data: flood, name: `${i}.png` }]),
      ),
    );
    const statuses: number[] = [];
    for (const res of answers) {
      statuses.push(res.status);
      if (res.status === 201) {
        const [stored] = (await uploaded(res)).attachments;
        // the original is kept downscaled to media.images.maxStoredPixels, not re-encoded at 40 MP
        expect((stored?.width ?? 0) * (stored?.height ?? 0)).toBeLessThanOrEqual(16_000_000);
      } else {
        expect(res.headers.get("retry-after")).toBe("5");
        await refused(res, 503, "images_busy");
      }
    }
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    await stillAnswers(app);
    await nothingPartial(app);
  });

  it("ten 40 MP PNGs in one request: 413 request_pixels_exceeded, nothing stored", async () => {
    const app = await start();
    const started = performance.now();
    const { result, before, peak } = await withRss(process.pid, () =>
      app.upload("pictures", ALICE, pictures(10, flood)),
    );
    const seconds = (performance.now() - started) / 1000;
    const message = await refused(result, 413, "request_pixels_exceeded");
    expect(message).toContain("150000000");
    console.info(
      `pixel flood (10 × ${FLOOD_SIDE}×${FLOOD_SIDE} PNG of ${Math.round(flood.length / 1024)} KiB, one request): ` +
        `refused in ${seconds.toFixed(2)} s, RSS ${Math.round(before / MiB)} MiB before, peak growth ${Math.round((peak - before) / MiB)} MiB`,
    );
    expect(await app.rows()).toEqual([]);
    await stillAnswers(app);
    await nothingPartial(app);
  });
});

describe("video flood", () => {
  it("eight videos at once with one ffmpeg slot: all stored, the posters past the queue skipped with a warning each", async () => {
    const { log, lines } = capturingLog();
    const app = await start({ posters: { slots: 1, queue: 0 } }, { log });
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        app.upload("videos", ALICE, [
          { data: video, name: "a.mp4" },
          { data: video, name: "b.mp4" },
        ]),
      ),
    );
    const stored = [];
    for (const res of answers) stored.push(...(await uploaded(res)).attachments);
    expect(stored).toHaveLength(8);
    const withoutPoster = stored.filter((a) => a.thumbnailUrl === null).length;
    expect(withoutPoster).toBeGreaterThan(0);
    expect(lines.map((l) => l.msg)).toEqual(
      Array.from({ length: withoutPoster }, () => "no video poster: too many videos at once"),
    );
    await stillAnswers(app);
    await nothingPartial(app);
  });

  it("a video whose poster does not fit ffmpeg's memory limit is stored without one, with one warning", async () => {
    const { log, lines } = capturingLog();
    // 64 MiB of address space: too little for ffmpeg to even load its libraries, as a hostile file would
    // need more than the limit allows
    const app = await start({ posters: { addressSpaceBytes: 64 * MiB } }, { log });
    const [stored] = (await uploaded(await app.upload("videos", ALICE, [{ data: video, name: "v.mp4" }])))
      .attachments;
    expect(stored).toMatchObject({ size: video.length, thumbnailUrl: null });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: "no video poster: ffmpeg failed" });
    await stillAnswers(app);
    await nothingPartial(app);
  });
});

describe("storage per user", () => {
  it("uploading past the storage quota: 413 quota_exceeded naming the quota, nothing of it kept", async () => {
    const app = await start({ quotaBytes: 300_000, dailyUploadBytes: 0 });
    await uploaded(await app.upload("videos", ALICE, [{ data: fakeMp4(200_000), name: "1.mp4" }]));
    const rows = await app.rows();
    const message = await refused(
      await app.upload("videos", ALICE, [{ data: fakeMp4(200_000), name: "2.mp4" }]),
      413,
      "quota_exceeded",
    );
    expect(message).toContain("quota of 300000 bytes");
    expect(await app.rows()).toEqual(rows);
    await stillAnswers(app);
    await nothingPartial(app);
  });

  it("replacing an avatar over and over (each replacement frees the last): 429 upload_budget_exceeded", async () => {
    // the quota never stops this loop, since every new avatar deletes the one before: the daily budget does
    const app = await start({ dailyUploadBytes: MiB });
    // incompressible: stored as ~600 KB of PNG plus its thumbnails, more than half the budget
    const avatar = await noisy(450, 450).png().toBuffer();
    await uploaded(await app.upload("avatars", ALICE, [{ data: avatar, name: "me.png" }]));
    const kept = await app.rows();
    const res = await app.upload("avatars", ALICE, [{ data: avatar, name: "me.png" }]);
    const retryAfter = Number(res.headers.get("retry-after"));
    const message = await refused(res, 429, "upload_budget_exceeded");
    expect(message).toContain(`daily upload budget of ${MiB} bytes`);
    expect(message).toMatch(/resets at \d{4}-\d\d-\d\dT/);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(24 * 60 * 60);
    expect(await app.rows()).toEqual(kept);
    await stillAnswers(app);
    await nothingPartial(app);
  });
});

describe("full disk", () => {
  it("uploads while the storage's free space is below the reserve: 507 insufficient_storage, nothing written", async () => {
    // a reserve larger than any disk's free space is what a full disk looks like to the check
    const app = await start({ freeSpaceReserveBytes: 2 ** 50 });
    const png = await noisy(64, 64).png().toBuffer();
    await refused(
      await app.upload("pictures", ALICE, [{ data: png, name: "p.png" }]),
      507,
      "insufficient_storage",
    );
    await refused(
      await app.upload("videos", ALICE, [{ data: fakeMp4(100_000), name: "v.mp4" }]),
      507,
      "insufficient_storage",
    );
    expect(await app.rows()).toEqual([]);
    expect(await app.files()).toEqual([]);
    await stillAnswers(app);
  });
});

describe("generated avatars", () => {
  it("a flood of new names from one address: 429 rate_limited once the limit is spent, drawn faces still served", async () => {
    const limit = { points: 5, seconds: 600 };
    const app = await start(
      {},
      { config: { services: { httpUtility: { rateLimits: { generatedAvatarsPerIp: limit } } } } },
    );
    const names = Array.from({ length: 8 }, (_, i) => `stranger-${i}-${Math.random().toString(36).slice(2)}`);
    const statuses: number[] = [];
    for (const name of names) {
      const res = await fetch(app.url(`/gravatar?name=${name}`));
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);

    const refusedFace = await fetch(app.url(`/gravatar?name=${names[7]}`));
    expect(refusedFace.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(refusedFace.headers.get("cache-control") ?? "").not.toContain("public");
    await refused(refusedFace, 429, "rate_limited");
    // the fallback face of a user without an avatar is drawn the same way, and limited the same way
    await refused(await fetch(app.url("/avatars/306999999999")), 429, "rate_limited");

    // a face already drawn costs nothing and is served as before
    const drawn = await fetch(app.url(`/gravatar?name=${names[0]}`));
    expect(drawn.status).toBe(200);
    expect(drawn.headers.get("content-type")).toBe("image/png");
    await stillAnswers(app);
  });
});
