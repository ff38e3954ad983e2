import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import type { UploadAnswer } from "./schema.ts";
import {
  ALICE,
  BOB,
  basic,
  bytesOf,
  refused,
  startTestApp,
  type TestApp,
  type User,
  uploaded,
} from "./test-app.ts";
import { fakeMp4, png, realVideo } from "./test-fixtures.ts";

/**
 * Videos through the app: stored as sent, listed per user newest first in pages, served with ranges for
 * seeking, and given a poster when ffmpeg can read them (none, and no failure, without ffmpeg).
 */

interface ListedVideo {
  name: string | null;
  fileName: string;
  url: string;
  thumbnailUrl: string | null;
  contentType: string;
  size: number;
  sha256: string;
  created: string;
}
interface VideoPage {
  videos: ListedVideo[];
  next: string | null;
}

let app: TestApp;
/** the same with an ffmpeg that is not there */
let noFfmpeg: TestApp;
let dir: string;
let clip: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "videos-test-"));
  [app, noFfmpeg, clip] = await Promise.all([
    startTestApp(),
    startTestApp({ ffmpeg: "/nonexistent/ffmpeg" }),
    realVideo(dir),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), noFfmpeg?.close()]);
  await rm(dir, { recursive: true, force: true });
});

const list = async (user: User, query = ""): Promise<VideoPage> => {
  const res = await fetch(app.url(`/videos${query}`), { headers: { authorization: basic(user) } });
  const body = (await res.json()) as VideoPage;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
};

describe("the video list", () => {
  it("is the caller's videos, newest first, page by page until `next` is null", async () => {
    // three in one request (one transaction, one timestamp), then two more one by one
    const batch = await uploaded(
      await app.upload("videos", BOB, [
        { data: fakeMp4(2000, 1), name: "1.mp4" },
        { data: fakeMp4(2000, 2), name: "2.mp4" },
        { data: fakeMp4(2000, 3), name: "3.mp4" },
      ]),
    );
    const later = [];
    for (const n of [4, 5]) {
      later.push(
        (await uploaded(await app.upload("videos", BOB, [{ data: fakeMp4(2000, n), name: `${n}.mp4` }])))
          .attachments[0],
      );
    }
    await uploaded(await app.upload("videos", ALICE, [{ data: fakeMp4(2000, 9), name: "alice.mp4" }]));

    const seen: ListedVideo[] = [];
    let query = "?limit=2";
    for (let pages = 0; pages < 10; pages++) {
      const page = await list(BOB, query);
      expect(page.videos.length).toBeLessThanOrEqual(2);
      seen.push(...page.videos);
      if (page.next === null) break;
      query = `?limit=2&before=${page.next}`;
    }
    expect(seen.map((v) => v.name).slice(0, 2)).toEqual(["5.mp4", "4.mp4"]);
    expect(seen.map((v) => v.name).sort()).toEqual(["1.mp4", "2.mp4", "3.mp4", "4.mp4", "5.mp4"]);
    expect(seen.map((v) => v.fileName).sort()).toEqual(
      [...batch.attachments, ...later].map((a) => a?.fileName).sort(),
    );
    const created = seen.map((v) => Date.parse(v.created));
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    const five = seen[0] as ListedVideo;
    expect(five).toMatchObject({
      contentType: "video/mp4",
      size: 2000,
      url: app.url(`/videos/${five.fileName}`),
    });
    expect(five.sha256).toBe(sha256(fakeMp4(2000, 5)));

    expect((await list(ALICE)).videos.map((v) => v.name)).toEqual(["alice.mp4"]);
    expect((await list(BOB, "?limit=100")).next).toBeNull();
  });

  it("refuses a bad limit or cursor (400 invalid_request)", async () => {
    for (const q of ["?limit=0", "?limit=101", "?limit=x", "?before=nonsense"]) {
      const res = await fetch(app.url(`/videos${q}`), { headers: { authorization: basic(BOB) } });
      await refused(res, 400, "invalid_request");
    }
  });
});

describe("a stored video", () => {
  let video: UploadAnswer;
  const data = fakeMp4(100_000);

  beforeAll(async () => {
    video = (
      await uploaded(await app.upload("videos", ALICE, [{ data, name: "clip.mp4", type: "video/mp4" }]))
    ).attachments[0] as UploadAnswer;
  });

  it("is served whole, as sent, inline", async () => {
    expect(video).toMatchObject({ name: "clip.mp4", contentType: "video/mp4", size: data.length });
    expect(video.fileName).toMatch(/^[A-Za-z0-9_-]{24}\.mp4$/);
    const res = await fetch(video.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(res.headers.get("content-disposition")).toMatch(/^inline/);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expectSameBytes(await bytesOf(res), data, "the video");
    expect(video.sha256).toBe(sha256(data));
  });

  it("answers a single, an open-ended and a suffix range with 206", async () => {
    const cases: Array<[string, number, number]> = [
      ["bytes=0-9", 0, 9],
      ["bytes=1000-1999", 1000, 1999],
      ["bytes=10-", 10, data.length - 1],
      ["bytes=-5", data.length - 5, data.length - 1],
      // past the end is cut to the end
      [`bytes=${data.length - 3}-${data.length + 100}`, data.length - 3, data.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await fetch(video.url, { headers: { range } });
      expect(res.status, range).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${start}-${end}/${data.length}`);
      expect(res.headers.get("content-length")).toBe(String(end - start + 1));
      expectSameBytes(await bytesOf(res), data.subarray(start, end + 1), "the range");
    }
  });

  it("answers a range past the end with 416 and the size", async () => {
    for (const range of [`bytes=${data.length}-`, `bytes=${data.length + 10}-${data.length + 20}`]) {
      const res = await fetch(video.url, { headers: { range } });
      expect(res.headers.get("content-range")).toBe(`bytes */${data.length}`);
      // an error about the request, not the file: not cached for a year by a shared cache
      expect(res.headers.get("cache-control")).toBeNull();
      expect(res.headers.get("content-disposition")).toBeNull();
      const message = await refused(res, 416, "range_not_satisfiable");
      expect(message).toContain(`0-${data.length - 1}`);
    }
  });

  it("sends the whole file when If-Range names other content, the range when it names this one", async () => {
    const etag = String((await fetch(video.url, { method: "HEAD" })).headers.get("etag"));
    const stale = await fetch(video.url, { headers: { range: "bytes=0-9", "if-range": '"stale"' } });
    expect(stale.status).toBe(200);
    expectSameBytes(await bytesOf(stale), data, "the whole video for a stale If-Range");
    const fresh = await fetch(video.url, { headers: { range: "bytes=0-9", "if-range": etag } });
    expect(fresh.status).toBe(206);
    expectSameBytes(await bytesOf(fresh), data.subarray(0, 10), "the range for a fresh If-Range");
  });

  it("answers HEAD with the headers and no body", async () => {
    const res = await fetch(video.url, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe(String(data.length));
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect((await bytesOf(res)).length).toBe(0);
  });

  it("has no poster when ffmpeg finds no picture in it", () => {
    expect(video.thumbnailUrl).toBeNull();
    expect(video.thumbnails).toEqual({});
  });

  it("is not a picture: /pictures/<its name> is 404", async () => {
    await refused(await fetch(app.url(`/pictures/${video.fileName}`)), 404, "not_found");
  });
});

describe("posters", () => {
  it("are made for a real video with ffmpeg and listed", async () => {
    const body = await uploaded(await app.upload("videos", ALICE, [{ data: clip, name: "real.mp4" }]));
    const v = body.attachments[0] as UploadAnswer;
    expect(v.sha256).toBe(sha256(clip));
    expect(v.thumbnailUrl).toMatch(/\/videos\/[A-Za-z0-9_-]{24}\.webp$/);
    expect(Object.keys(v.thumbnails).sort()).toEqual(["128", "512"]);
    const res = await fetch(String(v.thumbnailUrl));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/webp");
    const meta = await sharp(await bytesOf(res)).metadata();
    expect([meta.width, meta.height]).toEqual([128, 96]);
    const listed = (await list(ALICE)).videos.find((x) => x.fileName === v.fileName);
    expect(listed?.thumbnailUrl).toBe(v.thumbnailUrl);
  });

  it("of a video sent with a refused file are removed with it (415, nothing kept)", async () => {
    const [files, rows] = [await app.files(), await app.rows()];
    const res = await app.upload("videos", ALICE, [
      { data: clip, name: "real.mp4" },
      { data: await png(), name: "not-a-video.png" },
    ]);
    const message = await refused(res, 415, "unsupported_type");
    expect(message).toContain("image/png");
    expect(await app.files()).toEqual(files);
    expect(await app.rows()).toEqual(rows);
  });

  it("are not made, and the upload still works, when the ffmpeg program does not exist", async () => {
    const body = await uploaded(await noFfmpeg.upload("videos", ALICE, [{ data: clip, name: "real.mp4" }]));
    const v = body.attachments[0] as UploadAnswer;
    expect(v.thumbnailUrl).toBeNull();
    expect(v.thumbnails).toEqual({});
    expectSameBytes(await bytesOf(await fetch(v.url)), clip, "the video stored without ffmpeg");
    expect(await noFfmpeg.rows()).toEqual([v.fileName]);
  });
});
