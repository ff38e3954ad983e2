import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { identicon, identiconEtag } from "./identicon.ts";

/** Generated avatars: deterministic bytes, the right size and format, a mirrored two-colour grid. */

async function pixels(image: Buffer) {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) =>
    data.subarray((y * info.width + x) * info.channels, (y * info.width + x + 1) * info.channels).join(",");
  return { info, at };
}

describe("identicon", () => {
  it("makes the same bytes for the same name, size and format", async () => {
    for (const format of ["png", "webp"] as const) {
      const a = await identicon("alice@example.com", 128, format);
      const b = await identicon("alice@example.com", 128, format);
      expect(a.equals(b)).toBe(true);
    }
  });

  it("normalises the name: blanks around it and case do not matter", async () => {
    const a = await identicon("alice@example.com", 64, "png");
    const b = await identicon("  Alice@Example.COM\n", 64, "png");
    expect(a.equals(b)).toBe(true);
  });

  it("draws different names differently", async () => {
    const names = ["alice", "bob", "carol@example.com", "dave@xmpp.example.net", "eve"];
    const images = await Promise.all(names.map((n) => identicon(n, 64, "png")));
    expect(new Set(images.map((i) => i.toString("base64"))).size).toBe(names.length);
  });

  it("makes a valid PNG or WebP of the size asked", async () => {
    for (const size of [16, 32, 64, 128, 256, 512, 1024]) {
      for (const format of ["png", "webp"] as const) {
        const meta = await sharp(await identicon("bob", size, format)).metadata();
        expect(meta).toMatchObject({ format, width: size, height: size });
        expect(meta.exif).toBeUndefined();
      }
    }
  });

  it("draws a mirrored grid in two colours on a light background, with margins", async () => {
    const size = 120; // cells of 20 pixels, margins of 10
    const { info, at } = await pixels(await identicon("carol@example.com", size, "webp"));
    const colours = new Set<string>();
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        colours.add(at(x, y));
        expect(at(x, y)).toBe(at(size - 1 - x, y));
      }
    }
    expect(info.channels).toBe(3);
    expect(colours.size).toBe(2);
    const background = at(0, 0);
    expect(background).toBe("240,240,240");
    for (let i = 0; i < size; i++) {
      for (const [x, y] of [
        [i, 0],
        [i, 9],
        [0, i],
        [9, i],
        [i, size - 1],
        [size - 10, i],
      ] as const) {
        expect(at(x, y)).toBe(background);
      }
    }
    // every cell is one colour: its corners agree with its centre
    for (let row = 0; row < 5; row++) {
      for (let column = 0; column < 5; column++) {
        const [x, y] = [10 + column * 20, 10 + row * 20];
        const centre = at(x + 10, y + 10);
        expect([at(x, y), at(x + 19, y), at(x, y + 19), at(x + 19, y + 19)]).toEqual([
          centre,
          centre,
          centre,
          centre,
        ]);
      }
    }
  });

  it("refuses a size that is not a whole number of pixels in range", async () => {
    await expect(identicon("alice", 0, "png")).rejects.toThrow(RangeError);
    await expect(identicon("alice", 64.5, "png")).rejects.toThrow(RangeError);
    await expect(identicon("alice", 100_000, "png")).rejects.toThrow(RangeError);
  });
});

describe("identiconEtag", () => {
  it("is a strong ETag, stable for the same normalised inputs", () => {
    const etag = identiconEtag("alice@example.com", 128, "png");
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(identiconEtag(" ALICE@example.com ", 128, "png")).toBe(etag);
  });

  it("changes with the name, the size and the format", () => {
    const etags = [
      identiconEtag("alice", 128, "png"),
      identiconEtag("bob", 128, "png"),
      identiconEtag("alice", 64, "png"),
      identiconEtag("alice", 128, "webp"),
    ];
    expect(new Set(etags).size).toBe(etags.length);
  });
});
