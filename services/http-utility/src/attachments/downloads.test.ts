import { unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { relativePathOf } from "#common/media/fs-storage.ts";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import type { UploadAnswer } from "./schema.ts";
import { ALICE, bytesOf, rawGet, refused, startTestApp, type TestApp, uploaded } from "./test-app.ts";
import { fakeMp4, png, sidewaysPhoto } from "./test-fixtures.ts";

/**
 * Downloads of stored names: the type from the bytes and never sniffed, conditional requests, the
 * immutable caching of a capability URL, every traversal attempt a 404 that reads nothing, X-Accel-Redirect
 * for an nginx in front, and the in-memory cache of small files.
 */

let app: TestApp;
/** downloads handed to nginx */
let accel: TestApp;
/** no in-memory cache */
let uncached: TestApp;

beforeAll(async () => {
  [app, accel, uncached] = await Promise.all([
    startTestApp(),
    startTestApp({ accelRedirect: "/protected-media/" }),
    startTestApp({ cache: { maxBytes: 0 } }),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), accel?.close(), uncached?.close()]);
});

const uploadOne = async (on: TestApp, kind: string, data: Buffer, name: string, type?: string) =>
  (await uploaded(await on.upload(kind, ALICE, [{ data, name, ...(type ? { type } : {}) }])))
    .attachments[0] as UploadAnswer;

describe("headers", () => {
  it("a PNG sent as image/jpeg named .jpg is stored and served as the PNG it is", async () => {
    const a = await uploadOne(app, "pictures", await png(), "photo.jpg", "image/jpeg");
    expect(a.contentType).toBe("image/png");
    expect(a.fileName).toMatch(/\.png$/);
    const res = await fetch(a.url);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-disposition")).toBe(`inline; filename="${a.fileName}"`);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(sha256(await bytesOf(res))).toBe(a.sha256);
  });

  it("ETag and Last-Modified answer 304; another ETag or an older date gets the bytes", async () => {
    const a = await uploadOne(app, "pictures", await sidewaysPhoto(), "p.jpg");
    const res = await fetch(a.url);
    const etag = String(res.headers.get("etag"));
    const modified = String(res.headers.get("last-modified"));
    expect(etag).toBe(`"${Buffer.from(a.sha256, "hex").toString("base64url")}"`);
    expect(Date.parse(modified)).toBeLessThanOrEqual(Date.now());
    const conditional = (headers: Record<string, string>) =>
      // fetch adds `Cache-Control: no-cache` to conditional requests unless told otherwise
      fetch(a.url, { headers: { ...headers, "cache-control": "max-age=0" } });

    const validators: Array<Record<string, string>> = [
      { "if-none-match": etag },
      { "if-modified-since": modified },
    ];
    for (const headers of validators) {
      const again = await conditional(headers);
      expect(again.status).toBe(304);
      expect(again.headers.get("etag")).toBe(etag);
      expect((await bytesOf(again)).length).toBe(0);
    }
    const changed = await conditional({ "if-none-match": '"other"' });
    expect(changed.status).toBe(200);
    expect(sha256(await bytesOf(changed))).toBe(a.sha256);
    const older = await conditional({
      "if-modified-since": new Date(Date.parse(modified) - 60_000).toUTCString(),
    });
    expect(older.status).toBe(200);
  });

  it("a video is inline too", async () => {
    const v = await uploadOne(app, "videos", fakeMp4(5000), "v.mp4");
    const res = await fetch(v.url);
    expect(res.headers.get("content-disposition")).toBe(`inline; filename="${v.fileName}"`);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("names that are not stored names", () => {
  const SECRET = "the contents of a file outside the storage root";

  beforeAll(async () => {
    // where `<root>/../secret.txt` or `<root>/xx/../../secret.txt` would land
    await writeFile(path.join(app.dir, "secret.txt"), SECRET);
    await writeFile(path.join(app.root, "secret.txt"), SECRET);
  });

  const attempts = [
    "..%2f..%2fetc%2fpasswd",
    "..%2fsecret.txt",
    "%2e%2e%2f%2e%2e%2fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "..%c0%af..%c0%afsecret.txt",
    "..%c0%afsecret.txt",
    "AAAAAAAAAAAAAAAAAAAAAAAA%00.jpg",
    "secret.txt%00.jpg",
    "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt",
    "%2fetc%2fpasswd",
    "..%5c..%5csecret.txt",
    "secret.txt",
    // a valid-looking name that has no row
    "AAAAAAAAAAAAAAAAAAAAAAAA.jpg",
  ];

  it.each(["pictures", "pictures/thumbnails", "videos"])("/%s/<name>: 404 for every one", async (group) => {
    const prefix = `/api/v1/attachments/${group}/`;
    for (const name of attempts) {
      const res = await rawGet(app.base, `${prefix}${name}`);
      expect(res.status, name).toBe(404);
      expect(res.body.toString(), name).not.toContain(SECRET);
      expect(res.body.toString(), name).not.toContain("root:");
      expect(JSON.parse(res.body.toString()).error.code).toBe("not_found");
    }
  });

  it("an absolute path or dot segments in the URL itself: 404", async () => {
    for (const p of [
      "/api/v1/attachments/pictures//etc/passwd",
      "/api/v1/attachments/pictures/../../../etc/passwd",
      "/api/v1/attachments/pictures/%2e%2e/%2e%2e/secret.txt",
      "/api/v1/attachments/pictures/x/../../secret.txt",
    ]) {
      const res = await rawGet(app.base, p);
      expect(res.status, p).toBe(404);
      expect(res.body.toString(), p).not.toContain(SECRET);
      expect(res.body.toString(), p).not.toContain("root:");
    }
  });
});

describe("X-Accel-Redirect", () => {
  it("hands the file to nginx: the header names its path under the location, the body is empty", async () => {
    const a = await uploadOne(accel, "pictures", await png(), "p.png");
    const res = await fetch(a.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-accel-redirect")).toBe(
      `/protected-media/${a.fileName.slice(0, 2)}/${a.fileName}`,
    );
    expect(relativePathOf(a.fileName)).toBe(`${a.fileName.slice(0, 2)}/${a.fileName}`);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect((await bytesOf(res)).length).toBe(0);
    // a name without a row never reaches nginx
    const missing = await fetch(accel.url("/pictures/AAAAAAAAAAAAAAAAAAAAAAAA.png"));
    expect(missing.headers.get("x-accel-redirect")).toBeNull();
    await refused(missing, 404, "not_found");
  });
});

describe("the in-memory cache", () => {
  it("serves a small file from memory after its bytes on disk are gone", async () => {
    const a = await uploadOne(app, "pictures", await png(), "p.png");
    const first = await bytesOf(await fetch(a.url));
    await unlink(path.join(app.root, relativePathOf(a.fileName)));
    const again = await fetch(a.url);
    expect(again.status).toBe(200);
    expectSameBytes(await bytesOf(again), first, "the cached download");
    const range = await fetch(a.url, { headers: { range: "bytes=0-7" } });
    expect(range.status).toBe(206);
    expectSameBytes(await bytesOf(range), first.subarray(0, 8), "the first 8 bytes");
  });

  it("is off with cache.maxBytes 0: a file gone from disk is 404, without the file's headers", async () => {
    const a = await uploadOne(uncached, "pictures", await png(), "p.png");
    expect((await fetch(a.url)).status).toBe(200);
    await unlink(path.join(uncached.root, relativePathOf(a.fileName)));
    const res = await fetch(a.url);
    expect(res.headers.get("etag")).toBeNull();
    expect(res.headers.get("cache-control") ?? "").not.toContain("immutable");
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    await refused(res, 404, "not_found");
  });
});
