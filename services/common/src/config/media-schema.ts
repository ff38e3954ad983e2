import { z } from "zod";
import { xmppUploadSchema } from "./xmpp-upload-schema.ts";

/**
 * The `media` section: attachments (pictures, avatars, videos), where they are stored, what an upload may
 * be, how images are derived and how downloads are served (docs/attachments.md).
 */

const MiB = 1024 * 1024;

/** Types an upload kind may accept, decided from the file's bytes (magic numbers). */
export const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/avif", "image/gif"] as const;
export const VIDEO_TYPES = [
  "video/mp4",
  "video/quicktime",
  "video/webm",
  "video/3gpp",
  "video/x-matroska",
] as const;

const uploadLimits = (types: readonly [string, ...string[]], maxBytes: number, maxFiles: number) =>
  z
    .object({
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * MiB)
        .default(maxBytes)
        .describe("largest file accepted, bytes (413 above it)"),
      maxFiles: z.number().int().min(1).max(100).default(maxFiles).describe("files per request"),
      types: z
        .array(z.enum(types))
        .min(1)
        .default([...types])
        .describe(`accepted types, from the bytes: any of ${types.join(", ")}`),
    })
    .strict()
    .prefault({});

const imageTypes = IMAGE_TYPES as unknown as readonly [string, ...string[]];
const videoTypes = VIDEO_TYPES as unknown as readonly [string, ...string[]];

/** `media.posters`: ffmpeg for video posters (video-poster.ts). */
export const postersSchema = z
  .object({
    slots: z.number().int().min(1).max(64).default(1).describe("ffmpeg processes at once per process"),
    queue: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(4)
      .describe("videos waiting for an ffmpeg slot; beyond it a video is stored without a poster"),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .default(15_000)
      .describe("wall-clock bound on making one poster (ffmpeg is killed)"),
    cpuSeconds: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe("CPU time an ffmpeg may use (prlimit --cpu; 0 = no limit)"),
    addressSpaceBytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * MiB)
      .describe(
        "virtual memory an ffmpeg may map (prlimit --as; ffmpeg needs ~300 MiB to start; 0 = no limit)",
      ),
    prlimit: z
      .string()
      .min(1)
      .default("prlimit")
      .describe("the util-linux prlimit program that applies the limits; when missing, videos get no poster"),
  })
  .strict()
  .prefault({})
  .describe("video posters: one ffmpeg thread each, bounded in number, CPU time and memory");

export const mediaSchema = z
  .object({
    storage: z
      .object({
        // the kinds and their options are checked at start by services/common/src/media/storage-registry.ts
        kind: z
          .string()
          .min(1)
          .default("fs")
          .describe("storage backend: `fs` (a directory; NFS in a cluster) or `s3`"),
        options: z
          .record(z.string(), z.unknown())
          .default({ root: "var/media" })
          .describe(
            "options of that kind: fs `{ root, fsync }`; s3 `{ bucket, region, endpoint, forcePathStyle, prefix, credentials, partSizeBytes, queueSize }` (docs/attachments.md)",
          ),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        pictures: uploadLimits(imageTypes, 20 * MiB, 10),
        avatars: uploadLimits(imageTypes, 10 * MiB, 1),
        videos: uploadLimits(videoTypes, 2048 * MiB, 5),
      })
      .strict()
      .prefault({})
      .describe("limits per upload kind"),
    tmpDir: z
      .string()
      .min(1)
      .default("var/media-tmp")
      .describe("local scratch space for images being processed and video posters (deleted after use)"),
    images: z
      .object({
        maxPixels: z
          .number()
          .int()
          .min(1)
          .default(40_000_000)
          .describe("decompression-bomb guard: images above this many pixels are refused (422)"),
        thumbnailSizes: z
          .array(z.number().int().min(16).max(4096))
          .min(1)
          .default([128, 512])
          .describe("thumbnail sizes in pixels (longest side; avatars: square)"),
        thumbnailFormat: z.enum(["webp", "jpeg", "png", "avif"]).default("webp").describe("thumbnail format"),
        quality: z.number().int().min(1).max(100).default(82).describe("lossy encoding quality"),
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(2)
          .describe("libvips threads per image (sharp.concurrency)"),
        maxStoredPixels: z
          .number()
          .int()
          .min(1_000_000)
          .default(16_000_000)
          .describe(
            "a still original above this many pixels is stored downscaled to fit (decoded at that size, not its own)",
          ),
        slots: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(2)
          .describe("images decoded at once per process; the others wait in the queue"),
        queue: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(8)
          .describe("images waiting for a slot per process; beyond it an upload gets 503 `images_busy`"),
        requestPixels: z
          .number()
          .int()
          .min(1)
          .default(150_000_000)
          .describe(
            "the images of one request may declare this many pixels together (413 `request_pixels_exceeded` above)",
          ),
      })
      .strict()
      .prefault({}),
    generated: z
      .object({
        sizes: z
          .array(z.number().int().min(16).max(1024))
          .min(1)
          .default([32, 64, 128, 256, 512])
          .describe("sizes a generated avatar may be asked in (`?size=`)"),
        defaultSize: z.number().int().min(16).max(1024).default(128).describe("size without `?size=`"),
        thumbnailSize: z
          .number()
          .int()
          .min(16)
          .max(1024)
          .default(64)
          .describe("size of `gravatar/thumbnails/…`"),
      })
      .strict()
      .prefault({})
      .refine((g) => g.sizes.includes(g.defaultSize) && g.sizes.includes(g.thumbnailSize), {
        message: "defaultSize and thumbnailSize must be among sizes",
      })
      .describe("generated (identicon) avatars"),
    quotaBytes: z
      .number()
      .int()
      .min(0)
      .default(10 * 1024 * MiB)
      .describe("bytes a user may store, all kinds together (413 `quota_exceeded`; 0 = no quota)"),
    dailyUploadBytes: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024 * MiB)
      .default(4 * 1024 * MiB)
      .describe(
        "bytes a user may upload in 24 hours, kept or not (429 `upload_budget_exceeded`; 0 = no budget)",
      ),
    freeSpaceReserveBytes: z
      .number()
      .int()
      .min(0)
      .default(1024 * MiB)
      .describe(
        "fs storage: uploads that could leave less free space than this are refused (507 `insufficient_storage`)",
      ),
    cache: z
      .object({
        maxBytes: z
          .number()
          .int()
          .min(0)
          .default(64 * MiB)
          .describe("byte budget of the in-memory cache (0 = off)"),
        maxFileBytes: z
          .number()
          .int()
          .min(0)
          .default(256 * 1024)
          .describe("files up to this size are cached (thumbnails, avatars)"),
        ttlSeconds: z
          .number()
          .int()
          .min(1)
          .default(600)
          .describe("how long a cached file is served before it is looked up again"),
      })
      .strict()
      .prefault({})
      .describe("in-memory LRU of small hot files, per process"),
    accelRedirect: z
      .string()
      .regex(/^\/(.*\/)?$/, "must start and end with /")
      .optional()
      .describe(
        "fs storage behind nginx: answer downloads with `X-Accel-Redirect: <this><key>` and let nginx send the bytes",
      ),
    legacyRoot: z
      .string()
      .min(1)
      .optional()
      .describe(
        "read-only directory of the legacy services' media (`pictures/`, `videos/`, `avatars/`): files registered by `sidecars media import` are served from there",
      ),
    legacyAccelRedirect: z
      .string()
      .regex(/^\/(.*\/)?$/, "must start and end with /")
      .optional()
      .describe(
        "behind nginx: answer downloads of imported legacy files with `X-Accel-Redirect: <this><kind>/<name>` (an internal location aliasing `legacyRoot`); without it they are streamed",
      ),
    ffmpeg: z
      .string()
      .min(1)
      .default("ffmpeg")
      .describe("ffmpeg program for video posters; when missing, videos get no poster"),
    posters: postersSchema,
    xmppUpload: xmppUploadSchema,
  })
  .strict()
  .prefault({})
  .describe("attachments: storage, upload limits, images, downloads (docs/attachments.md)");

export type MediaConfig = z.infer<typeof mediaSchema>;
export type UploadKind = keyof MediaConfig["uploads"];
