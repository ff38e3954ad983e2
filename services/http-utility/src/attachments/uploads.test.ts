import net from "node:net";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import type { UploadAnswer } from "./schema.ts";
import { ALICE, basic, bytesOf, refused, startTestApp, type TestApp, uploaded } from "./test-app.ts";
import {
  fakeMp4,
  GPS_MARK,
  gpsPhoto,
  png,
  pngClaiming,
  sidewaysPhoto,
  truncatedJpeg,
  webp,
} from "./test-fixtures.ts";

/**
 * Picture uploads through the app: what an app gets back and is served, and that every refusal
 * (the type, a broken image, a decompression bomb, a cut connection) leaves no file and no row.
 */

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

/** How long the server may take to notice a cut upload and clean up: seconds on a loaded 2-core machine. */
const SETTLED = { timeout: 10_000 };
const NAME = /^[A-Za-z0-9_-]{24}\.(jpg|png|webp)$/;

/** Fetches an answer's original and checks that its bytes are the ones the answer describes. */
async function served(a: UploadAnswer): Promise<Buffer> {
  const res = await fetch(a.url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe(a.contentType);
  const data = await bytesOf(res);
  expect(data.length).toBe(a.size);
  expect(sha256(data)).toBe(a.sha256);
  return data;
}

/** Runs an upload that must be refused and shows that it left nothing behind. */
async function refusedUpload(send: () => Promise<Response>, status: number, code: string): Promise<string> {
  const [files, rows] = [await app.files(), await app.rows()];
  const message = await refused(await send(), status, code);
  expect(await app.files()).toEqual(files);
  expect(await app.rows()).toEqual(rows);
  return message;
}

describe("a picture", () => {
  it("is stored upright under an unguessable name, with thumbnails, and served as described", async () => {
    const body = await uploaded(
      await app.upload("pictures", ALICE, [
        { data: await sidewaysPhoto(), name: "holiday.jpg", type: "image/jpeg" },
      ]),
    );
    expect(body.attachments).toHaveLength(1);
    const a = body.attachments[0] as UploadAnswer;
    // legacy clients read one file as an object
    expect(body.files.attachments).toEqual(a);
    expect(a).toMatchObject({ name: "holiday.jpg", contentType: "image/jpeg", width: 480, height: 640 });
    expect(a.fileName).toMatch(NAME);
    expect(a.fileName.endsWith(".jpg")).toBe(true);
    expect(a.url).toBe(app.url(`/pictures/${a.fileName}`));

    const meta = await sharp(await served(a)).metadata();
    expect([meta.width, meta.height]).toEqual([480, 640]);
    expect(meta.orientation).toBeUndefined();

    expect(Object.keys(a.thumbnails).sort()).toEqual(["128", "512"]);
    expect(a.thumbnailUrl).toBe(a.thumbnails["128"]);
    for (const [size, url] of Object.entries(a.thumbnails)) {
      expect(url).toMatch(/\/pictures\/[A-Za-z0-9_-]{24}\.webp$/);
      const res = await fetch(url);
      expect(res.headers.get("content-type")).toBe("image/webp");
      const t = await sharp(await bytesOf(res)).metadata();
      expect(Math.max(t.width, t.height)).toBe(Number(size));
      expect(t.height).toBeGreaterThan(t.width); // upright too
    }
    // the same thumbnails by the original's name
    const bySize = await fetch(`${a.url}?size=512`);
    expectSameBytes(
      await bytesOf(bySize),
      await bytesOf(await fetch(String(a.thumbnails["512"]))),
      "the 512 thumbnail by size",
    );
    const small = await fetch(app.url(`/pictures/thumbnails/${a.fileName}`));
    expect(small.status).toBe(200);
    expect((await sharp(await bytesOf(small)).metadata()).height).toBe(128);
  });

  it("loses its EXIF (GPS) in the original and every thumbnail", async () => {
    const input = await gpsPhoto();
    expect(input.includes(GPS_MARK)).toBe(true);
    const body = await uploaded(await app.upload("pictures", ALICE, [{ data: input, name: "where.jpg" }]));
    const a = body.attachments[0] as UploadAnswer;
    expect([a.width, a.height]).toEqual([200, 300]);
    for (const url of [a.url, ...Object.values(a.thumbnails)]) {
      const data = await bytesOf(await fetch(url));
      expect(data.includes(GPS_MARK)).toBe(false);
      expect(data.includes("TestCam")).toBe(false);
      const meta = await sharp(data).metadata();
      expect(meta.exif).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
    }
  });
  it("keeps a UTF-8 file name as sent", async () => {
    const body = await uploaded(
      await app.upload("pictures", ALICE, [{ data: await png(), name: "été 照片.png" }]),
    );
    expect(body.attachments[0]?.name).toBe("été 照片.png");
  });
  it("is taken from a part without a Content-Type header (RFC 7578: text/plain), the type from its bytes", async () => {
    const body = Buffer.concat([
      Buffer.from(
        '--b0undary\r\nContent-Disposition: form-data; name="attachments"; filename="old.png"\r\n\r\n',
      ),
      await png(),
      Buffer.from("\r\n--b0undary--\r\n"),
    ]);
    const res = await fetch(app.url("/pictures"), {
      method: "POST",
      headers: { authorization: basic(ALICE), "content-type": "multipart/form-data; boundary=b0undary" },
      body,
    });
    expect((await uploaded(res)).attachments[0]).toMatchObject({ name: "old.png", contentType: "image/png" });
  });
});

describe("several pictures", () => {
  it("are answered in order, as an array in `attachments` and `files.attachments`", async () => {
    const body = await uploaded(
      await app.upload("pictures", ALICE, [
        { data: await sidewaysPhoto(), name: "a.jpg", type: "image/jpeg" },
        { data: await png(), name: "b.png", type: "image/png" },
        // a client's wrong name and generic type do not matter: the bytes say WebP
        { data: await webp(), name: "c.jpg" },
      ]),
    );
    expect(body.attachments.map((a) => [a.name, a.contentType, a.fileName.split(".")[1]])).toEqual([
      ["a.jpg", "image/jpeg", "jpg"],
      ["b.png", "image/png", "png"],
      ["c.jpg", "image/webp", "webp"],
    ]);
    expect(body.files.attachments).toEqual(body.attachments);
    expect(new Set(body.attachments.map((a) => a.fileName)).size).toBe(3);
    for (const a of body.attachments) {
      expect(a.fileName).toMatch(NAME);
      await served(a);
    }
    expect(body.attachments.slice(1).map((a) => [a.width, a.height])).toEqual([
      [64, 48],
      [64, 48],
    ]);
  });
});

describe("refused pictures", () => {
  it("bytes of no image type: 415 unsupported_type", async () => {
    const script = Buffer.from("#!/bin/sh\necho hi\n".repeat(400));
    const message = await refusedUpload(
      () => app.upload("pictures", ALICE, [{ data: script, name: "x.jpg", type: "image/jpeg" }]),
      415,
      "unsupported_type",
    );
    expect(message).toContain("image/jpeg, image/png");
  });

  it("a PNG sent as video/mp4: 415 type_mismatch, naming both", async () => {
    const message = await refusedUpload(
      async () => app.upload("pictures", ALICE, [{ data: await png(), name: "x.mp4", type: "video/mp4" }]),
      415,
      "type_mismatch",
    );
    expect(message).toContain("video/mp4");
    expect(message).toContain("image/png");
  });

  it("a video: 415 unsupported_type, saying what it is", async () => {
    const message = await refusedUpload(
      () => app.upload("pictures", ALICE, [{ data: fakeMp4(10_000), name: "v.mp4", type: "video/mp4" }]),
      415,
      "unsupported_type",
    );
    expect(message).toContain("video/mp4");
  });

  it("a good picture sent with a bad one: nothing of either kept", async () => {
    await refusedUpload(
      async () =>
        app.upload("pictures", ALICE, [
          { data: await sidewaysPhoto(), name: "good.jpg" },
          { data: Buffer.from("not an image at all".repeat(300)), name: "bad.jpg" },
        ]),
      415,
      "unsupported_type",
    );
  });

  it("a decompression bomb (50000×50000 in its header): 422 image_too_large", async () => {
    const message = await refusedUpload(
      async () => app.upload("pictures", ALICE, [{ data: await pngClaiming(50_000, 50_000), name: "b.png" }]),
      422,
      "image_too_large",
    );
    expect(message).toContain("50000×50000");
  });

  it("a truncated JPEG: 422 invalid_image", async () => {
    await refusedUpload(
      async () => app.upload("pictures", ALICE, [{ data: await truncatedJpeg(), name: "half.jpg" }]),
      422,
      "invalid_image",
    );
  });
});

describe("a connection cut half-way through", () => {
  /** Sends headers promising 50 MiB, a file part's head and `first` then 3 MiB more, and cuts. */
  async function cutUpload(kind: string, first: Buffer, filename: string, inProgress: string) {
    const boundary = "----cut-upload";
    const { port } = new URL(app.base);
    const socket = net.connect(Number(port), "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    socket.on("error", () => {});
    socket.write(
      `POST /api/v1/attachments/${kind} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Authorization: ${basic(ALICE)}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${50 * 1024 * 1024}\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="${filename}"\r\n\r\n`,
    );
    const write = (data: Buffer) => new Promise((resolve) => socket.write(data, resolve));
    await write(first);
    for (let i = 0; i < 3; i++) await write(Buffer.alloc(1024 * 1024, i));
    // the server is writing the file (the backend's partial file, or the image's scratch file)
    await vi.waitFor(async () => {
      expect((await app.files()).some((f) => f.startsWith(inProgress))).toBe(true);
    }, SETTLED);
    socket.destroy();
  }

  it.each([
    ["a video", "videos", "long.mp4", "store/.partial/"],
    ["a picture", "pictures", "huge.png", "scratch/"],
  ])(
    "%s: the server keeps running, nothing is left stored, partial or recorded",
    async (_, kind, filename, inProgress) => {
      const [files, rows] = [await app.files(), await app.rows()];
      const first = kind === "videos" ? fakeMp4(1024 * 1024) : (await png()).subarray(0, 100);
      await cutUpload(kind, first, filename, inProgress);

      await vi.waitFor(async () => {
        expect(await app.files()).toEqual(files);
      }, SETTLED);
      expect(await app.rows()).toEqual(rows);
      const health = await fetch(`${app.base}/healthz`);
      expect(health.status).toBe(200);
      // and uploads still work
      await uploaded(
        await app.upload(kind, ALICE, [
          { data: kind === "videos" ? fakeMp4(5000) : await png(), name: filename },
        ]),
      );
    },
  );
});
