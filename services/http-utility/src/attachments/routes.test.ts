import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB, basic, refused, startTestApp, type TestApp, type User, uploaded } from "./test-app.ts";
import { fakeMp4, noisy, png, sidewaysPhoto } from "./test-fixtures.ts";

/**
 * What every upload endpoint refuses before or while reading: callers, request shapes, the size and
 * count limits and the quota. Each refusal has its status, stable code and a message saying what to do,
 * and leaves no file (stored, partial, scratch) and no row.
 */

const PICTURE_LIMIT = 60_000;
const VIDEO_LIMIT = 100_000;
const QUOTA = 300_000;

let app: TestApp;
/** the same with a quota */
let quota: TestApp;

beforeAll(async () => {
  [app, quota] = await Promise.all([
    startTestApp({
      uploads: { pictures: { maxBytes: PICTURE_LIMIT, maxFiles: 2 }, videos: { maxBytes: VIDEO_LIMIT } },
    }),
    startTestApp({ quotaBytes: QUOTA }),
  ]);
});
afterAll(async () => {
  await Promise.all([app?.close(), quota?.close()]);
});

async function refusedUpload(
  on: TestApp,
  send: () => Promise<Response>,
  status: number,
  code: string,
): Promise<string> {
  const [files, rows] = [await on.files(), await on.rows()];
  const message = await refused(await send(), status, code);
  expect(await on.files()).toEqual(files);
  expect(await on.rows()).toEqual(rows);
  return message;
}

describe("callers", () => {
  it.each(["pictures", "avatars", "videos"])(
    "%s: 401 without credentials or with a wrong password",
    async (kind) => {
      const file = [{ data: await png(), name: "p.png" }];
      for (const user of [undefined, { ...ALICE, password: "wrong" }] as Array<User | undefined>) {
        const res = await app.upload(kind, user, file);
        expect(res.headers.get("www-authenticate")).toMatch(/^Basic /);
        const message = await refused(res, 401, "invalid_credentials");
        expect(message).toContain("JID");
      }
      expect(await app.files()).toEqual([]);
      expect(await app.rows()).toEqual([]);
    },
  );

  it("401 for the video list without credentials", async () => {
    await refused(await fetch(app.url("/videos")), 401, "invalid_credentials");
  });
});

describe("request shapes", () => {
  it("a JSON body: 415 multipart_required", async () => {
    const message = await refusedUpload(
      app,
      () =>
        fetch(app.url("/pictures"), {
          method: "POST",
          headers: { authorization: basic(ALICE), "content-type": "application/json" },
          body: JSON.stringify({ attachments: "aGVsbG8=" }),
        }),
      415,
      "multipart_required",
    );
    expect(message).toContain("attachments");
  });

  it("no file: 400 no_files", async () => {
    const form = new FormData();
    form.append("caption", "nothing attached");
    const message = await refusedUpload(
      app,
      () =>
        fetch(app.url("/pictures"), { method: "POST", headers: { authorization: basic(ALICE) }, body: form }),
      400,
      "no_files",
    );
    expect(message).toContain("`attachments`");
  });

  it("a file in another field: 400 unexpected_field naming it", async () => {
    const message = await refusedUpload(
      app,
      async () => app.upload("pictures", ALICE, [{ data: await png(), name: "p.png" }], "file"),
      400,
      "unexpected_field",
    );
    expect(message).toContain("`file`");
    expect(message).toContain("`attachments`");
  });

  it("a good file, then one in another field: nothing of either kept", async () => {
    const form = new FormData();
    form.append("attachments", new Blob([new Uint8Array(await png())]), "good.png");
    form.append("photo", new Blob([new Uint8Array(await png())]), "other.png");
    await refusedUpload(
      app,
      () =>
        fetch(app.url("/pictures"), { method: "POST", headers: { authorization: basic(ALICE) }, body: form }),
      400,
      "unexpected_field",
    );
  });
});

describe("malformed multipart bodies: 400 invalid_multipart, nothing kept", () => {
  const post = (contentType: string, body: Buffer | string | FormData) =>
    fetch(app.url("/pictures"), {
      method: "POST",
      headers: { authorization: basic(ALICE), ...(contentType ? { "content-type": contentType } : {}) },
      body,
    });

  it("without a boundary", async () => {
    const message = await refusedUpload(
      app,
      () => post("multipart/form-data", "garbage"),
      400,
      "invalid_multipart",
    );
    expect(message).toContain("Boundary");
  });

  it("cut short after a file's first bytes", async () => {
    const head = '--xyz\r\nContent-Disposition: form-data; name="attachments"; filename="a.png"\r\n\r\n';
    const body = Buffer.concat([Buffer.from(head), await png(300, 300)]);
    const message = await refusedUpload(
      app,
      () => post("multipart/form-data; boundary=xyz", body),
      400,
      "invalid_multipart",
    );
    expect(message).toContain("Unexpected end of form");
  });

  it("with too many fields", async () => {
    const form = new FormData();
    for (let i = 0; i < 25; i++) form.append(`f${i}`, "x");
    form.append("attachments", new Blob([new Uint8Array(await png())]), "p.png");
    const message = await refusedUpload(app, () => post("", form), 400, "invalid_multipart");
    expect(message).toContain("20");
  });
});

describe("limits", () => {
  it("a picture over maxBytes: 413 file_too_large with the limit", async () => {
    const big = await noisy(200, 200).png().toBuffer();
    expect(big.length).toBeGreaterThan(PICTURE_LIMIT);
    const message = await refusedUpload(
      app,
      () => app.upload("pictures", ALICE, [{ data: big, name: "big.png" }]),
      413,
      "file_too_large",
    );
    expect(message).toContain(String(PICTURE_LIMIT));
    expect(message).toContain("smaller");
  });

  it("a small picture, then one over maxBytes: 413, neither kept", async () => {
    await refusedUpload(
      app,
      async () =>
        app.upload("pictures", ALICE, [
          { data: await png(), name: "small.png" },
          { data: await noisy(200, 200).png().toBuffer(), name: "big.png" },
        ]),
      413,
      "file_too_large",
    );
  });

  it("a file of exactly maxBytes is taken; one byte more is not", async () => {
    const exact = fakeMp4(VIDEO_LIMIT);
    const body = await uploaded(await app.upload("videos", BOB, [{ data: exact, name: "exact.mp4" }]));
    expect(body.attachments[0]?.size).toBe(VIDEO_LIMIT);
    const message = await refusedUpload(
      app,
      () => app.upload("videos", BOB, [{ data: fakeMp4(VIDEO_LIMIT + 1), name: "over.mp4" }]),
      413,
      "file_too_large",
    );
    expect(message).toContain(String(VIDEO_LIMIT));
  });

  it("a large video (streamed to storage): 413 file_too_large, no partial file left", async () => {
    await refusedUpload(
      app,
      () => app.upload("videos", BOB, [{ data: fakeMp4(3 * 1024 * 1024), name: "long.mp4" }]),
      413,
      "file_too_large",
    );
  });

  it("more files than maxFiles: 413 too_many_files, the ones already stored removed", async () => {
    const photo = await sidewaysPhoto();
    const message = await refusedUpload(
      app,
      () =>
        app.upload("pictures", ALICE, [
          { data: photo, name: "1.jpg" },
          { data: photo, name: "2.jpg" },
          { data: photo, name: "3.jpg" },
        ]),
      413,
      "too_many_files",
    );
    expect(message).toContain("At most 2 files");
  });

  it("two avatars at once: 413 too_many_files", async () => {
    await refusedUpload(
      app,
      async () =>
        app.upload("avatars", ALICE, [
          { data: await png(), name: "1.png" },
          { data: await png(), name: "2.png" },
        ]),
      413,
      "too_many_files",
    );
  });
});

describe("quota", () => {
  it("uploads under it work; one that would go over is 413 quota_exceeded and nothing of it is kept", async () => {
    await uploaded(await quota.upload("pictures", ALICE, [{ data: await png(), name: "small.png" }]));
    const big = await noisy(250, 250).png().toBuffer();
    expect(big.length).toBeGreaterThan(QUOTA / 2);
    await uploaded(await quota.upload("pictures", ALICE, [{ data: big, name: "big1.png" }]));
    const message = await refusedUpload(
      quota,
      () => quota.upload("pictures", ALICE, [{ data: big, name: "big2.png" }]),
      413,
      "quota_exceeded",
    );
    expect(message).toContain(String(QUOTA));
    expect(message).toContain("delete");
  });

  it("a video over what is left is refused from its Content-Length", async () => {
    await refusedUpload(
      quota,
      () => quota.upload("videos", ALICE, [{ data: fakeMp4(QUOTA + 100_000), name: "v.mp4" }]),
      413,
      "quota_exceeded",
    );
  });

  it("a new avatar over it is refused and the old one stays", async () => {
    const first = await uploaded(await quota.upload("avatars", BOB, [{ data: await png(), name: "a.png" }]));
    const big = await noisy(400, 400).png().toBuffer();
    await refusedUpload(
      quota,
      () => quota.upload("avatars", BOB, [{ data: big, name: "big.png" }]),
      413,
      "quota_exceeded",
    );
    const res = await fetch(quota.url(`/avatars/${BOB.node}`));
    expect(res.headers.get("etag")).toBe(
      `"${Buffer.from(String(first.attachments[0]?.sha256), "hex").toString("base64url")}"`,
    );
  });

  it("is per user", async () => {
    await uploaded(
      await quota.upload("pictures", BOB, [{ data: await noisy(250, 250).png().toBuffer(), name: "b.png" }]),
    );
  });

  it("lets a user at the quota replace their avatar with one that fits once the old one is gone", async () => {
    // Bob's current avatar made to weigh exactly what takes him to the quota
    await quota.db.pool.query(
      `UPDATE attachments SET size = size + $1 - (SELECT sum(size) FROM attachments WHERE node = $2)
       WHERE name = (SELECT name FROM avatars WHERE node = $2)`,
      [QUOTA, BOB.node],
    );
    const used = await quota.db.pool.query<{ sum: string }>(
      "SELECT sum(size) FROM attachments WHERE node = $1",
      [BOB.node],
    );
    expect(Number(used.rows[0]?.sum)).toBe(QUOTA);
    const next = await uploaded(await quota.upload("avatars", BOB, [{ data: await png(), name: "new.png" }]));
    const res = await fetch(quota.url(`/avatars/${BOB.node}`));
    expect(res.headers.get("etag")).toBe(
      `"${Buffer.from(String(next.attachments[0]?.sha256), "hex").toString("base64url")}"`,
    );
  });
});
