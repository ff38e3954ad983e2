import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImages, ImageError, type ImageSettings } from "./images.ts";

/**
 * The image pipeline on images generated here with real sharp: orientation, metadata stripping, sizes,
 * formats, square avatars, animated GIFs, and the refusals (decompression bombs, broken input).
 */

const SETTINGS: ImageSettings = {
  maxPixels: 40_000_000,
  thumbnailSizes: [128, 512],
  thumbnailFormat: "webp",
  quality: 82,
  concurrency: 2,
  maxStoredPixels: 16_000_000,
  slots: 2,
  queue: 8,
  requestPixels: 150_000_000,
};
const images = createImages(SETTINGS);

const XMP =
  '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">' +
  '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" ' +
  'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Someone</dc:creator></rdf:Description>' +
  '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>';

const blank = (width: number, height: number, channels: 3 | 4 = 3, background = "#3366994d") =>
  sharp({ create: { width, height, channels, background } });

/** A 300×200 JPEG stored sideways (EXIF orientation 6) with GPS EXIF, XMP and a Display P3 profile. */
const sidewaysPhoto = () =>
  blank(300, 200)
    .withIccProfile("p3")
    .withMetadata({ orientation: 6 })
    .withExifMerge({
      IFD0: { Make: "TestCam" },
      IFD3: { GPSMapDatum: "WGS-84", GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 24/1" },
    })
    .withXmp(XMP)
    .jpeg()
    .toBuffer();

/** Every trace of the input's metadata is gone. */
async function expectClean(data: Buffer) {
  const meta = await sharp(data).metadata();
  expect(meta.exif).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  expect(meta.iptc).toBeUndefined();
  expect(meta.icc).toBeUndefined();
  expect(meta.orientation).toBeUndefined();
  return meta;
}

/** A real PNG whose IHDR claims other dimensions, CRC fixed: what a decompression bomb's header looks like. */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await blank(8, 8).png().toBuffer());
  // signature (8) + IHDR length (4) + "IHDR" (4), then width, height, ... and the chunk CRC at 29
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

async function refusal(promise: Promise<unknown>): Promise<ImageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageError);
  return err as ImageError;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "images-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pictures", () => {
  it("turns a sideways photo upright and strips EXIF (GPS), XMP and the ICC profile everywhere", async () => {
    const input = await sidewaysPhoto();
    const before = await sharp(input).metadata();
    expect(before.orientation).toBe(6);
    expect(before.exif?.includes("WGS-84")).toBe(true);
    expect(before.xmp).toBeDefined();
    expect(before.icc).toBeDefined();

    const { original, thumbnails, animated } = await images.process(input, "picture");
    expect(animated).toBe(false);
    expect(original).toMatchObject({ contentType: "image/jpeg", extension: "jpg", width: 200, height: 300 });
    const meta = await expectClean(original.data);
    expect(meta).toMatchObject({ format: "jpeg", width: 200, height: 300 });
    expect(thumbnails.map((t) => [t.size, t.width, t.height])).toEqual([
      [128, 85, 128],
      [512, 200, 300], // never enlarged
    ]);
    for (const t of thumbnails) {
      expect(t).toMatchObject({ contentType: "image/webp", extension: "webp" });
      expect(await expectClean(t.data)).toMatchObject({ format: "webp", width: t.width, height: t.height });
    }
  });

  it("reads a file path as well as a buffer", async () => {
    const file = join(dir, "photo.jpg");
    await writeFile(file, await sidewaysPhoto());
    const { original } = await images.process(file, "picture");
    expect([original.width, original.height]).toEqual([200, 300]);
  });

  it("bounds thumbnails by their longest side", async () => {
    const { original, thumbnails } = await images.process(
      await blank(2000, 1000).jpeg().toBuffer(),
      "picture",
    );
    expect([original.width, original.height]).toEqual([2000, 1000]);
    expect(thumbnails.map((t) => [t.size, t.width, t.height])).toEqual([
      [128, 128, 64],
      [512, 512, 256],
    ]);
  });

  it("keeps a PNG with alpha a PNG with alpha, and its thumbnails transparent", async () => {
    const { original, thumbnails } = await images.process(
      await blank(600, 400, 4).png().toBuffer(),
      "picture",
    );
    expect(original).toMatchObject({ contentType: "image/png", extension: "png", width: 600, height: 400 });
    expect(await sharp(original.data).metadata()).toMatchObject({ format: "png", hasAlpha: true });
    for (const t of thumbnails) expect((await sharp(t.data).metadata()).hasAlpha).toBe(true);
  });

  it("re-encodes WebP as WebP and AVIF as AVIF", async () => {
    const webp = await images.process(await blank(64, 48).webp().toBuffer(), "picture");
    expect(webp.original).toMatchObject({
      contentType: "image/webp",
      extension: "webp",
      width: 64,
      height: 48,
    });
    const avif = await images.process(await blank(64, 48).avif().toBuffer(), "picture");
    expect(avif.original).toMatchObject({
      contentType: "image/avif",
      extension: "avif",
      width: 64,
      height: 48,
    });
    expect((await sharp(avif.original.data).metadata()).compression).toBe("av1");
  });

  it("converts a CMYK JPEG to sRGB", async () => {
    const cmyk = await blank(64, 48).toColourspace("cmyk").jpeg().toBuffer();
    const { original } = await images.process(cmyk, "picture");
    expect(await sharp(original.data).metadata()).toMatchObject({
      format: "jpeg",
      space: "srgb",
      channels: 3,
    });
  });

  it("handles greyscale input", async () => {
    const grey = await blank(100, 80).greyscale().jpeg().toBuffer();
    const { original, thumbnails } = await images.process(grey, "picture");
    expect([original.width, original.height]).toEqual([100, 80]);
    expect(thumbnails).toHaveLength(2);
  });

  it("encodes thumbnails in the configured format, flattening alpha for JPEG", async () => {
    const jpegThumbs = createImages({ ...SETTINGS, thumbnailFormat: "jpeg", thumbnailSizes: [64] });
    const { thumbnails } = await jpegThumbs.process(await blank(200, 100, 4).png().toBuffer(), "picture");
    expect(thumbnails).toHaveLength(1);
    expect(thumbnails[0]).toMatchObject({
      size: 64,
      width: 64,
      height: 32,
      contentType: "image/jpeg",
      extension: "jpg",
    });
    expect(await sharp(thumbnails[0]?.data).metadata()).toMatchObject({ format: "jpeg", channels: 3 });
  });

  it("keeps a GIF animated, with thumbnails of its first frame", async () => {
    const [w, h, n] = [40, 30, 3];
    const frames = Buffer.alloc(w * h * n * 4);
    for (let i = 0; i < n; i++)
      frames.fill(Buffer.from([80 * i, 200, 40, 255]), i * w * h * 4, (i + 1) * w * h * 4);
    const gif = await sharp(frames, { raw: { width: w, height: h * n, channels: 4, pageHeight: h } })
      .gif({ delay: [100, 200, 300], loop: 0 })
      .toBuffer();

    const picture = await images.process(gif, "picture");
    expect(picture.animated).toBe(true);
    expect(picture.original).toMatchObject({ contentType: "image/gif", width: w, height: h });
    expect(await sharp(picture.original.data).metadata()).toMatchObject({ pages: n, delay: [100, 200, 300] });
    for (const t of picture.thumbnails) {
      const meta = await sharp(t.data).metadata();
      expect(meta).toMatchObject({ format: "webp", width: w, height: h });
      expect(meta.pages ?? 1).toBe(1);
      const [red] = (await sharp(t.data).stats()).channels;
      expect(red?.mean).toBeLessThan(10); // the first frame is the one without red (80, 160 after it)
    }

    const avatar = await images.process(gif, "avatar");
    expect(avatar.animated).toBe(false);
    expect(avatar.original).toMatchObject({ contentType: "image/gif", width: h, height: h });
  });
});

describe("avatars", () => {
  it("square-crops the original and the thumbnails, after turning the photo upright", async () => {
    const { original, thumbnails } = await images.process(await sidewaysPhoto(), "avatar");
    expect([original.width, original.height]).toEqual([200, 200]);
    await expectClean(original.data);
    expect(thumbnails.map((t) => [t.size, t.width, t.height])).toEqual([
      [128, 128, 128],
      [512, 200, 200],
    ]);
  });

  it("crops around the centre", async () => {
    // a wide image: red left third, green middle, blue right third; the square is the green part
    const stripes = await sharp({ create: { width: 300, height: 100, channels: 3, background: "#00ff00" } })
      .composite([
        {
          input: { create: { width: 100, height: 100, channels: 3, background: "#ff0000" } },
          left: 0,
          top: 0,
        },
        {
          input: { create: { width: 100, height: 100, channels: 3, background: "#0000ff" } },
          left: 200,
          top: 0,
        },
      ])
      .png()
      .toBuffer();
    const { original } = await images.process(stripes, "avatar");
    const stats = await sharp(original.data).stats();
    expect(stats.channels.slice(0, 3).map((c) => Math.round(c.mean))).toEqual([0, 255, 0]);
  });
});

describe("video posters", () => {
  it("makes thumbnails of a still frame", async () => {
    const frame = await blank(320, 240).png().toBuffer();
    const thumbnails = await images.thumbnailsOf(frame);
    expect(thumbnails.map((t) => [t.size, t.width, t.height, t.contentType])).toEqual([
      [128, 128, 96, "image/webp"],
      [512, 320, 240, "image/webp"],
    ]);
  });

  it("refuses a frame that is not an image", async () => {
    expect((await refusal(images.thumbnailsOf(Buffer.from("not a frame")))).code).toBe("invalid_image");
  });
});

describe("large originals", () => {
  it("stores an original above maxStoredPixels downscaled to fit, aspect kept; avatars too, square", async () => {
    const capped = createImages({ ...SETTINGS, maxStoredPixels: 1_000_000 });
    const input = await blank(2000, 1500).png().toBuffer();
    const picture = await capped.process(input, "picture");
    const { width, height } = picture.original;
    expect(width * height).toBeLessThanOrEqual(1_000_000);
    expect(width * height).toBeGreaterThan(950_000);
    expect(Math.abs(width / height - 4 / 3)).toBeLessThan(0.01);
    expect(await sharp(picture.original.data).metadata()).toMatchObject({ width, height, format: "png" });

    const avatar = await capped.process(input, "avatar");
    expect([avatar.original.width, avatar.original.height]).toEqual([1000, 1000]);
  });

  it("keeps an original at or under maxStoredPixels as it is", async () => {
    const capped = createImages({ ...SETTINGS, maxStoredPixels: 1_000_000 });
    const picture = await capped.process(await blank(1000, 1000).png().toBuffer(), "picture");
    expect([picture.original.width, picture.original.height]).toEqual([1000, 1000]);
  });
});

describe("refusals", () => {
  it("refuses a decompression bomb from its header, naming the limit and the dimensions", async () => {
    const err = await refusal(images.process(await pngClaiming(50_000, 50_000), "picture"));
    expect(err.code).toBe("image_too_large");
    expect(err.message).toContain("50000×50000");
    expect(err.message).toContain("40000000");
  });

  it("refuses a real image above a low limit", async () => {
    const small = createImages({ ...SETTINGS, maxPixels: 1_000_000 });
    const big = await blank(2000, 1000).png().toBuffer();
    const err = await refusal(small.process(big, "avatar"));
    expect(err.code).toBe("image_too_large");
    expect(err.message).toContain("2000×1000");
  });

  it("refuses a truncated JPEG", async () => {
    const jpeg = await sharp({
      create: {
        width: 400,
        height: 300,
        channels: 3,
        background: "#000",
        noise: { type: "gaussian", mean: 128, sigma: 30 },
      },
    })
      .jpeg()
      .toBuffer();
    const err = await refusal(images.process(jpeg.subarray(0, jpeg.length / 2), "picture"));
    expect(err.code).toBe("invalid_image");
  });

  it("refuses random bytes, an empty buffer and an SVG", async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256));
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    for (const input of [bytes, Buffer.alloc(0), svg]) {
      expect((await refusal(images.process(input, "picture"))).code).toBe("invalid_image");
    }
  });

  it("lets a missing scratch file fail as what it is, not as the user's image", async () => {
    const err = await images.process(join(dir, "gone.jpg"), "picture").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ImageError);
  });
});
