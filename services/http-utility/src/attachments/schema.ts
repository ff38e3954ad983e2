import { z } from "zod";
import { type MediaConfig, mediaSchema, type UploadKind } from "#common/config/media-schema.ts";

/**
 * The input and the JSON answers of the attachment endpoints (docs/attachments.md), as routes.ts validates
 * and documents them. Limits and sizes come from the `media` configuration (common/src/config/media-schema.ts);
 * the descriptions name their defaults.
 */

const DEFAULTS: MediaConfig = mediaSchema.parse({});
export const list = (values: readonly (string | number)[]) => values.join(", ");
export const mib = (bytes: number) => `${bytes / (1024 * 1024)} MiB`;

const oneOf = (sizes: number[], what: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `${what} must be one of ${sizes.join(", ")}`)
    .transform(Number)
    .refine((n) => sizes.includes(n), `${what} must be one of ${sizes.join(", ")}`);

// ---- path parameters

const filenameParams = (description: string) =>
  z.object({ filename: z.string().min(1).meta({ description, example: "kq3v9T0cXh2bYw7LpR4sAe.jpg" }) });

/** `{filename}` of a picture or a video: a stored name. */
export const storedNameParams = filenameParams(
  "the stored name (`fileName` of the upload answer, or the file name of a `thumbnails` URL); unguessable, so it is the capability to read the file",
);

/** `{filename}` of an avatar: a stored name, or a user. */
export const avatarNameParams = filenameParams("a stored avatar name, or a user's node or `node@domain`");

/** `{filename}` of a generated thumbnail: the name it is drawn from, with the format's extension or not. */
export const generatedNameParams = filenameParams(
  "the name (a node, a JID or an e-mail address), optionally with `.png` or `.webp`",
);

// ---- query strings

/**
 * `?size=` of a picture or avatar (one of the thumbnail sizes; `absent` says what its absence gives) and
 * `?domain=`, which finds an avatar asked by node (`domain` says what it does on the route).
 */
export const variantQuery = (images: MediaConfig["images"], absent: string, domain: string) =>
  z.object({
    size: oneOf(images.thumbnailSizes, "size")
      .optional()
      .meta({
        description: `a thumbnail size in pixels, one of \`media.images.thumbnailSizes\` (${list(DEFAULTS.images.thumbnailSizes)} by default); ${absent}`,
        example: String(DEFAULTS.images.thumbnailSizes[0]),
      }),
    domain: z
      .string()
      .max(255)
      .regex(/^[^\p{Cc}]*$/u, "domain must not contain control characters")
      .optional()
      .meta({ description: domain }),
  });

export const AVATAR_DOMAIN =
  "with an avatar asked by node: the user's XMPP domain (a `node@domain` filename names it too); without it, every configured domain is looked in";
export const PICTURE_DOMAIN = "not used: a picture is found by its stored name alone";
export const AS_STORED = (what: string) => `without it, the ${what} as stored`;
export const SMALLEST = `without it, the smallest (${DEFAULTS.images.thumbnailSizes[0]} by default)`;

export const FORMATS = ["png", "webp"] as const;

export const generatedQuery = (g: MediaConfig["generated"]) =>
  z.object({
    name: z
      .string({ error: "name is required: a node, a JID or an e-mail address" })
      .trim()
      .min(1, "name is required: a node, a JID or an e-mail address")
      .max(320, "name is longer than 320 characters")
      .meta({
        description:
          "whose avatar: a node, a JID or an e-mail address; the same name always gives the same picture",
        example: "alice@example.com",
      }),
    size: oneOf(g.sizes, "size")
      .default(g.defaultSize)
      .meta({
        description: `the size in pixels, one of \`media.generated.sizes\` (${list(DEFAULTS.generated.sizes)} by default); ${DEFAULTS.generated.defaultSize} by default`,
        example: String(DEFAULTS.generated.defaultSize),
      }),
    format: z
      .enum(FORMATS, { error: "format must be png or webp" })
      .default("png")
      .meta({ description: "the image format" }),
  });

export const generatedThumbnailQuery = z.object({
  format: z.enum(FORMATS, { error: "format must be png or webp" }).optional().meta({
    description: "the image format; by default the filename's extension (`.png`, `.webp`), else PNG",
  }),
});

/** A page of the caller's videos: `before` is the `next` cursor of the previous page. */
export const videoListQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, "limit must be 1 to 100")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 100, "limit must be 1 to 100")
    .default(20)
    .meta({ description: "videos per page, 1 to 100; 20 by default" }),
  before: z
    .string()
    .max(200)
    .transform((s, ctx) => {
      const cursor = decodeCursor(s);
      if (!cursor) {
        ctx.addIssue({ code: "custom", message: "before must be the `next` value of the previous page" });
        return z.NEVER;
      }
      return cursor;
    })
    .optional()
    .meta({ description: "the `next` cursor of the previous page" }),
});

export function encodeCursor(c: { created: Date; name: string }): string {
  return Buffer.from(`${c.created.toISOString()}|${c.name}`).toString("base64url");
}

function decodeCursor(s: string): { created: Date; name: string } | undefined {
  const [iso, name] = Buffer.from(s, "base64url").toString().split("|");
  const created = new Date(iso ?? "");
  return name && !Number.isNaN(created.getTime()) ? { created, name } : undefined;
}

// ---- the upload body (read by multer, upload-route.ts: described here, never parsed with it)

/** `attachments`: one or more files, as a form's file field. */
const binaryFile = z.string().meta({
  format: "binary",
  contentMediaType: "application/octet-stream",
  description: "a file",
});

/** The multipart body of an upload of `kind`, with the default limits of `media.uploads.<kind>`. */
export function uploadBody(kind: UploadKind) {
  const limits = DEFAULTS.uploads[kind];
  return z
    .object({
      attachments: z
        .array(binaryFile)
        .min(1)
        .max(limits.maxFiles)
        .meta({
          description: `${limits.maxFiles === 1 ? "one file" : `1 to \`media.uploads.${kind}.maxFiles\` files (${limits.maxFiles} by default)`}, each at most \`media.uploads.${kind}.maxBytes\` (${mib(limits.maxBytes)} by default), of a type in \`media.uploads.${kind}.types\` (${list(limits.types)} by default)`,
        }),
    })
    .meta({
      description: `multipart/form-data with ${limits.maxFiles === 1 ? "the file" : "the files"} in the field \`attachments\``,
    });
}

// ---- answers

const uploadedAttachment = z
  .object({
    name: z
      .string()
      .meta({ description: "the file name the client sent (may be empty)", example: "holiday.jpg" }),
    fileName: z.string().meta({
      description: "the stored name: unguessable, the `{filename}` of the downloads",
      example: "kq3v9T0cXh2bYw7LpR4sAe.jpg",
    }),
    url: z.string().meta({ description: "where to download it", format: "uri" }),
    thumbnailUrl: z.string().nullable().meta({
      description: "the smallest thumbnail (a video's poster frame), or null when there is none",
      format: "uri",
    }),
    thumbnails: z.record(z.string(), z.string()).meta({
      description:
        'every thumbnail\'s URL by its size in pixels (`{ "128": url, "512": url }`); empty when none',
    }),
    contentType: z
      .string()
      .meta({ description: "the type, decided from the file's bytes", example: "image/jpeg" }),
    size: z.number().int().meta({ description: "bytes stored" }),
    width: z.number().int().nullable().meta({ description: "pixels; null for a video" }),
    height: z.number().int().nullable().meta({ description: "pixels; null for a video" }),
    sha256: z.string().meta({ description: "SHA-256 of the stored bytes, hex" }),
  })
  .meta({ id: "UploadedAttachment" });

export type UploadAnswer = z.infer<typeof uploadedAttachment>;

export const uploadAnswer = z
  .object({
    attachments: z.array(uploadedAttachment).meta({ description: "one per file, in the order sent" }),
    files: z
      .object({
        attachments: z.union([uploadedAttachment, z.array(uploadedAttachment)]).meta({
          description:
            "the same, as legacy clients read it: the object itself for one file, an array for several",
        }),
      })
      .meta({ description: "legacy shape (`files.attachments.fileName`)" }),
  })
  .meta({ id: "UploadAnswer" });

const storedVideo = z
  .object({
    name: z.string().nullable().meta({ description: "the file name the client sent" }),
    fileName: z.string().meta({ description: "the stored name" }),
    url: z.string().meta({ format: "uri" }),
    thumbnailUrl: z.string().nullable().meta({
      description: "its smallest poster frame, or null when none was made",
      format: "uri",
    }),
    contentType: z.string().meta({ example: "video/mp4" }),
    size: z.number().int().meta({ description: "bytes" }),
    sha256: z.string().meta({ description: "SHA-256 of the stored bytes, hex" }),
    created: z.string().meta({ description: "when it was uploaded, ISO 8601, UTC" }),
  })
  .meta({ id: "StoredVideo" });

export const videoList = z.object({
  videos: z.array(storedVideo).meta({ description: "newest first" }),
  next: z
    .string()
    .nullable()
    .meta({ description: "pass as `before` for the next (older) page; null on the last page" }),
});

export type VideoList = z.infer<typeof videoList>;

export { DEFAULTS as MEDIA_DEFAULTS };
