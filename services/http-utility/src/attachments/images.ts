import sharp, { type Metadata, type Sharp, type SharpOptions } from "sharp";
import type { MediaConfig } from "#common/config/media-schema.ts";

/**
 * The one place sharp (libvips) is used. Every image is read once: its header is checked (format, pixel
 * count) before any decoding, then it is decoded once to raw sRGB pixels (EXIF orientation applied, ICC
 * profile converted to sRGB), and the stored original and every thumbnail are encoded from those pixels.
 * Nothing from the input's metadata (EXIF with GPS, XMP, IPTC, ICC) reaches an output: raw pixels carry none.
 */

export type ImageKind = "picture" | "avatar";
export type ImageSettings = MediaConfig["images"];

export interface EncodedImage {
  data: Buffer;
  contentType: string;
  extension: string;
  width: number;
  height: number;
}

export type Thumbnail = EncodedImage & { size: number };

export interface ProcessedImage {
  original: EncodedImage;
  thumbnails: Thumbnail[];
  /** true when the original is an animated GIF (its thumbnails are of the first frame) */
  animated: boolean;
}

export interface Images {
  process(input: string | Buffer, kind: ImageKind): Promise<ProcessedImage>;
  /** The thumbnails of an image held in memory (a video's frame, a legacy file); an avatar's are square. */
  thumbnailsOf(frame: Buffer, kind?: ImageKind): Promise<Thumbnail[]>;
}

export type ImageErrorCode = "image_too_large" | "invalid_image";

/** An image refused for what it is: the caller answers 422 with the code. */
export class ImageError extends Error {
  override name = "ImageError";
  readonly code: ImageErrorCode;
  constructor(code: ImageErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

type Format = "jpeg" | "png" | "webp" | "avif" | "gif";

const TYPES: Record<Format, { contentType: string; extension: string }> = {
  jpeg: { contentType: "image/jpeg", extension: "jpg" },
  png: { contentType: "image/png", extension: "png" },
  webp: { contentType: "image/webp", extension: "webp" },
  avif: { contentType: "image/avif", extension: "avif" },
  gif: { contentType: "image/gif", extension: "gif" },
};

/** Decoded pixels (ours, already within the limit): 8 bits per sample, 1 to 4 channels, frames stacked. */
interface Pixels {
  data: Buffer;
  raw: { width: number; height: number; channels: 1 | 2 | 3 | 4; pageHeight?: number };
}

interface Decoded {
  format: Format;
  pixels: Pixels;
  /** the first frame, or the whole image when it is still */
  still: Pixels;
  animation?: { delay?: number[]; loop?: number };
  palette: boolean;
}

// libvips' operation cache only helps when the same input is processed again; ours never is.
sharp.cache(false);

export function createImages(settings: ImageSettings): Images {
  sharp.concurrency(settings.concurrency);
  const sizes = [...new Set(settings.thumbnailSizes)].sort((a, b) => a - b);
  const inputOptions = {
    failOn: "error",
    limitInputPixels: settings.maxPixels,
    autoOrient: true,
  } satisfies SharpOptions;

  async function decode(input: string | Buffer, kind: ImageKind): Promise<Decoded> {
    const { meta, format, width, height, animated } = await readHeader(
      input,
      kind,
      settings.maxPixels,
      settings.maxStoredPixels,
    );
    let pipeline = sharp(input, { ...inputOptions, animated });
    let [w, h] = [width, height];
    if (kind === "avatar") {
      const side = Math.min(width, height);
      pipeline = pipeline.extract({
        left: Math.floor((width - side) / 2),
        top: Math.floor((height - side) / 2),
        width: side,
        height: side,
      });
      [w, h] = [side, side];
    }
    // A still image above maxStoredPixels is shrunk inside the decoding pipeline: libvips reads the input
    // in strips (JPEG and WebP even shrink while decoding), so only the smaller pixels are ever held and
    // re-encoded. A 40 MP one-colour PNG of ~150 KB would otherwise be ~120 MB of raw pixels and a
    // full-size encode (docs/security.md, "Bounded work per request and per user").
    if (!animated && w * h > settings.maxStoredPixels) {
      const scale = Math.sqrt(settings.maxStoredPixels / (w * h));
      pipeline = pipeline.resize(Math.max(1, Math.floor(w * scale)), Math.max(1, Math.floor(h * scale)), {
        fit: "inside",
      });
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const pixels: Pixels = {
      data,
      raw: { width: info.width, height: info.height, channels: info.channels },
    };
    if (!animated || !info.pageHeight || info.pageHeight === info.height) {
      return { format, pixels, still: pixels, palette: meta.isPalette };
    }
    pixels.raw.pageHeight = info.pageHeight;
    const still: Pixels = {
      data: data.subarray(0, info.width * info.pageHeight * info.channels),
      raw: { width: info.width, height: info.pageHeight, channels: info.channels },
    };
    return {
      format,
      pixels,
      still,
      animation: { delay: meta.delay, loop: meta.loop },
      palette: meta.isPalette,
    };
  }

  function encodeOriginal(d: Decoded): Promise<EncodedImage> {
    const image = sharp(d.pixels.data, { raw: d.pixels.raw, limitInputPixels: false });
    const q = settings.quality;
    switch (d.format) {
      case "jpeg":
        return encoded(image.jpeg({ quality: q }), "jpeg");
      case "png":
        return encoded(image.png({ palette: d.palette }), "png");
      case "webp":
        return encoded(image.webp({ quality: q }), "webp");
      case "avif":
        return encoded(image.avif({ quality: q }), "avif");
      case "gif":
        return encoded(image.gif(d.animation ?? {}), "gif");
    }
  }

  function thumbnails(still: Pixels): Promise<Thumbnail[]> {
    return Promise.all(
      sizes.map(async (size) => {
        let image = sharp(still.data, { raw: still.raw, limitInputPixels: false }).resize(size, size, {
          fit: "inside",
          withoutEnlargement: true,
        });
        const format = settings.thumbnailFormat;
        const q = settings.quality;
        if (format === "jpeg") image = image.flatten({ background: "#ffffff" }).jpeg({ quality: q });
        else if (format === "png") image = image.png();
        // effort 2 instead of 4: about 5 % more bytes for less than half the time (the slowest step)
        else if (format === "webp") image = image.webp({ quality: q, effort: 2 });
        else image = image.avif({ quality: q });
        return { ...(await encoded(image, format)), size };
      }),
    );
  }

  return {
    async process(input, kind) {
      const decoded = await refused(() => decode(input, kind), settings.maxPixels);
      const [original, thumbs] = await Promise.all([encodeOriginal(decoded), thumbnails(decoded.still)]);
      return { original, thumbnails: thumbs, animated: decoded.pixels !== decoded.still };
    },
    async thumbnailsOf(frame, kind = "picture") {
      const decoded = await refused(() => decode(frame, kind), settings.maxPixels);
      return thumbnails(decoded.still);
    },
  };
}

export interface ImageHeader {
  meta: Metadata;
  format: Format;
  /** upright (EXIF orientation applied) */
  width: number;
  height: number;
  /** whether every frame is decoded (an animated GIF picture within the pixel limit) */
  animated: boolean;
  /** the pixels decoding would make: width × height, times the frames of an animation */
  pixels: number;
}

/**
 * The header alone, without decoding (a few KB read): format, upright dimensions and what decoding would
 * cost. Refuses (ImageError) an unreadable header or more than `maxPixels`, naming the dimensions. An
 * animated GIF stays animated when its frames together have at most `animatedPixels` (an animation is not
 * downscaled, so this bounds its decoded size as `maxStoredPixels` bounds a still image's).
 */
export async function readHeader(
  input: string | Buffer,
  kind: ImageKind,
  maxPixels: number,
  animatedPixels: number,
): Promise<ImageHeader> {
  return refused(async () => {
    // without the pixel limit: a refusal names the dimensions
    const meta = await sharp(input, {
      failOn: "error",
      limitInputPixels: false,
      autoOrient: true,
    }).metadata();
    const format = formatOf(meta);
    const { width, height } = meta.autoOrient;
    if (!(width > 0 && height > 0)) throw new ImageError("invalid_image", "the image has no dimensions");
    if (width * height > maxPixels) {
      throw new ImageError(
        "image_too_large",
        `the image is ${width}×${height} pixels (${width * height}), more than the limit of ${maxPixels} pixels`,
      );
    }
    const pages = meta.pages ?? 1;
    // An animation is kept when all its frames fit; avatars are always still.
    const animated =
      format === "gif" &&
      kind === "picture" &&
      pages > 1 &&
      width * height * pages <= Math.min(maxPixels, animatedPixels);
    const pixels = width * height * (animated ? pages : 1);
    return { meta, format, width, height, animated, pixels };
  }, maxPixels);
}

/** The type of an image whose header was read: what an imported legacy file is served as. */
export const contentTypeOf = (header: ImageHeader) => TYPES[header.format].contentType;

/** What decides the bytes `renderSvg` makes: part of a generated image's strong ETag. */
export const svgRenderer = Object.entries(sharp.versions)
  .map(([library, version]) => `${library}/${version}`)
  .join(" ");

/** Renders a trusted SVG (generated avatars) at its own size, without metadata. */
export async function renderSvg(svg: string, format: "png" | "webp"): Promise<Buffer> {
  const image = sharp(Buffer.from(svg), { failOn: "error" }).removeAlpha();
  return format === "png"
    ? image.png({ palette: true, compressionLevel: 9 }).toBuffer()
    : image.webp({ lossless: true }).toBuffer();
}

async function encoded(image: Sharp, format: Format): Promise<EncodedImage> {
  const { data, info } = await image.toBuffer({ resolveWithObject: true });
  const height = info.pageHeight ?? info.height;
  return { data, ...TYPES[format], width: info.width, height };
}

function formatOf(meta: Metadata): Format {
  const f = meta.format;
  if (f === "jpeg" || f === "png" || f === "webp" || f === "gif") return f;
  if ((f === "heif" || (f as string) === "avif") && meta.compression === "av1") return "avif";
  throw new ImageError("invalid_image", `images must be JPEG, PNG, WebP, AVIF or GIF, not ${f}`);
}

/** Runs the reading half; what sharp says about the input becomes an `invalid_image`. */
async function refused<T>(read: () => Promise<T>, maxPixels: number): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ImageError || !(err instanceof Error)) throw err;
    // a missing scratch file is our fault, not the image's
    if (err.message.startsWith("Input file is missing")) throw err;
    if (err.message.includes("exceeds pixel limit")) {
      throw new ImageError("image_too_large", `the image has more than the limit of ${maxPixels} pixels`, {
        cause: err,
      });
    }
    const reason = err.message.split("\n")[0] ?? "unreadable";
    throw new ImageError("invalid_image", `not a readable image: ${reason}`, { cause: err });
  }
}
