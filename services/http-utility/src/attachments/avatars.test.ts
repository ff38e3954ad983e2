import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectSameBytes, sha256 } from "../../../../test/support/bytes.ts";
import type { UploadAnswer } from "./schema.ts";
import { ALICE, BOB, bytesOf, refused, startTestApp, type TestApp, uploaded } from "./test-app.ts";
import { png, sidewaysPhoto } from "./test-fixtures.ts";

/**
 * Avatars (stored, by node, replaced) and generated avatars (identicons) through the app: names, sizes,
 * squareness, determinism, caching headers, and that a replaced avatar is gone from disk and tables.
 */

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const dimensions = async (data: Buffer) => {
  const m = await sharp(data).metadata();
  return [m.width, m.height];
};

const stored = (a: UploadAnswer) => [
  a.fileName,
  ...Object.values(a.thumbnails).map((u) => u.split("/").pop()),
];

describe("an uploaded avatar", () => {
  let first: UploadAnswer;

  it("is square, with square thumbnails, and served by stored name and by node", async () => {
    const body = await uploaded(
      await app.upload("avatars", ALICE, [{ data: await sidewaysPhoto(640, 480), name: "me.jpg" }]),
    );
    first = body.attachments[0] as UploadAnswer;
    expect(body.files.attachments).toEqual(first);
    expect(first.fileName).toMatch(/^[A-Za-z0-9_-]{24}\.jpg$/);
    expect(first.url).toBe(app.url(`/avatars/${first.fileName}`));
    expect([first.width, first.height]).toEqual([480, 480]);

    const byName = await fetch(first.url);
    expect(byName.status).toBe(200);
    expect(byName.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const original = await bytesOf(byName);
    expect(sha256(original)).toBe(first.sha256);
    expect(await dimensions(original)).toEqual([480, 480]);

    for (const path of [
      `/avatars/${ALICE.node}`,
      `/avatars/${ALICE.node}?domain=${ALICE.domain}`,
      `/avatars/${ALICE.node}@${ALICE.domain}`,
    ]) {
      const res = await fetch(app.url(path));
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/jpeg");
      // the same URL shows the next avatar: revalidated, not immutable
      expect(res.headers.get("cache-control")).toBe("public, max-age=60, must-revalidate");
      expectSameBytes(await bytesOf(res), original, "the avatar by name");
    }

    for (const [size, url] of Object.entries(first.thumbnails)) {
      const t = await bytesOf(await fetch(url));
      const side = Math.min(Number(size), 480);
      expect(await dimensions(t)).toEqual([side, side]);
    }
    const thumb = await fetch(app.url(`/avatars/thumbnails/${ALICE.node}`));
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/webp");
    expect(await dimensions(await bytesOf(thumb))).toEqual([128, 128]);
    const big = await fetch(app.url(`/avatars/${ALICE.node}?size=512`));
    expectSameBytes(
      await bytesOf(big),
      await bytesOf(await fetch(String(first.thumbnails["512"]))),
      "the 512 thumbnail",
    );
  });

  it("is replaced by the next one: old files, rows and URLs gone", async () => {
    const oldNames = stored(first);
    const onDisk = async () => (await app.files()).map((f) => f.split("/").pop());
    expect(await onDisk()).toEqual(expect.arrayContaining(oldNames));

    const body = await uploaded(
      await app.upload("avatars", ALICE, [{ data: await png(300, 200), name: "new.png" }]),
    );
    const second = body.attachments[0] as UploadAnswer;
    expect(second.contentType).toBe("image/png");
    expect([second.width, second.height]).toEqual([200, 200]);

    const files = await onDisk();
    for (const name of oldNames) expect(files).not.toContain(name);
    expect(await app.rows()).toEqual([...stored(second)].sort());
    for (const url of [first.url, ...Object.values(first.thumbnails)]) {
      await refused(await fetch(url), 404, "not_found");
    }
    const byNode = await bytesOf(await fetch(app.url(`/avatars/${ALICE.node}`)));
    expect(sha256(byNode)).toBe(second.sha256);
  });

  it("of a user without one is a generated PNG, the same bytes each time", async () => {
    const a = await fetch(app.url(`/avatars/${BOB.node}`));
    expect(a.status).toBe(200);
    expect(a.headers.get("content-type")).toBe("image/png");
    expect(a.headers.get("cache-control")).toBe("public, max-age=60, must-revalidate");
    const data = await bytesOf(a);
    expect(await dimensions(data)).toEqual([128, 128]);
    expectSameBytes(await bytesOf(await fetch(app.url(`/avatars/${BOB.node}`))), data, "the avatar by node");
    // the identicon of the node, as /gravatar draws it
    expectSameBytes(
      await bytesOf(await fetch(app.url(`/gravatar?name=${BOB.node}`))),
      data,
      "the gravatar by node",
    );

    // with the domain, by `@` or `?domain=`, one face: the JID's
    const jid = `${BOB.node}@${BOB.domain}`;
    const byJid = await bytesOf(await fetch(app.url(`/avatars/${jid}`)));
    expectSameBytes(
      await bytesOf(await fetch(app.url(`/avatars/${BOB.node}?domain=${BOB.domain}`))),
      byJid,
      "the avatar by node and domain",
    );
    expectSameBytes(
      await bytesOf(await fetch(app.url(`/gravatar?name=${jid}`))),
      byJid,
      "the gravatar by JID",
    );

    const thumb = await fetch(app.url(`/avatars/thumbnails/${BOB.node}`));
    expect(thumb.headers.get("content-type")).toBe("image/png");
    expect(await dimensions(await bytesOf(thumb))).toEqual([64, 64]);
    // Bob's generated avatar is not Alice's stored one, and not another node's
    const other = await bytesOf(await fetch(app.url("/avatars/306900000099")));
    expect(other).not.toEqual(data);
  });

  it("by a stored name that has no row is 404, not a generated picture", async () => {
    await refused(await fetch(app.url("/avatars/AAAAAAAAAAAAAAAAAAAAAAAA.jpg")), 404, "not_found");
  });
});

describe("generated avatars", () => {
  const url = () => app.url("/gravatar?name=alice@example.com&size=64&format=webp");

  it("are WebP of the size asked, the same bytes twice, with an ETag that answers 304", async () => {
    const res = await fetch(url());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/webp");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const etag = res.headers.get("etag");
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const data = await bytesOf(res);
    const meta = await sharp(data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["webp", 64, 64]);

    const again = await fetch(url());
    expect(again.headers.get("etag")).toBe(etag);
    expectSameBytes(await bytesOf(again), data, "the unchanged avatar");
    // case and blanks of the name do not matter
    const same = await fetch(app.url("/gravatar?name=%20Alice@Example.com&size=64&format=webp"));
    expectSameBytes(await bytesOf(same), data, "the avatar again");

    const cached = await fetch(url(), {
      headers: { "if-none-match": String(etag), "cache-control": "max-age=0" },
    });
    expect(cached.status).toBe(304);
    expect((await bytesOf(cached)).length).toBe(0);

    const head = await fetch(url(), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(data.length));
  });

  it("are PNG by default, at the default size", async () => {
    const res = await fetch(app.url("/gravatar?name=alice"));
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(await dimensions(await bytesOf(res))).toEqual([128, 128]);
  });

  it("refuse a size not offered, listing the sizes (400 invalid_request)", async () => {
    const message = await refused(
      await fetch(app.url("/gravatar?name=alice&size=100")),
      400,
      "invalid_request",
    );
    expect(message).toContain("32, 64, 128, 256, 512");
    await refused(await fetch(app.url("/gravatar?name=alice&size=big")), 400, "invalid_request");
    const format = await refused(
      await fetch(app.url("/gravatar?name=alice&format=gif")),
      400,
      "invalid_request",
    );
    expect(format).toContain("png or webp");
  });

  it("need a name (400 invalid_request)", async () => {
    for (const q of ["", "?name=", "?name=%20%20", "?size=64"]) {
      const message = await refused(await fetch(app.url(`/gravatar${q}`)), 400, "invalid_request");
      expect(message).toContain("name");
    }
  });

  it("have thumbnails by file name, the format from the extension", async () => {
    const res = await fetch(app.url("/gravatar/thumbnails/alice.png"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    const data = await bytesOf(res);
    expect(await dimensions(data)).toEqual([64, 64]);
    expectSameBytes(
      await bytesOf(await fetch(app.url("/gravatar?name=alice&size=64"))),
      data,
      "the generated avatar",
    );
    const w = await fetch(app.url("/gravatar/thumbnails/alice.webp"));
    expect(w.headers.get("content-type")).toBe("image/webp");
    expect(await dimensions(await bytesOf(w))).toEqual([64, 64]);
  });
});

describe("a name that is neither a stored name nor a user part", () => {
  it.each(["..%2f..%2fetc%2fpasswd", "a%00b", "x%3Cy"])("%s is 404, not a generated face", async (name) => {
    for (const path of [`/avatars/${name}`, `/avatars/thumbnails/${name}`]) {
      await refused(await fetch(app.url(path)), 404, "not_found");
    }
  });
});
