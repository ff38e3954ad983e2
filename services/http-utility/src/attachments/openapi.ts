import { z } from "zod";
import type {
  ZodOpenApiContentObject,
  ZodOpenApiOperationObject,
  ZodOpenApiPathsObject,
  ZodOpenApiRequestBodyObject,
  ZodOpenApiResponseObject,
  ZodOpenApiResponsesObject,
} from "zod-openapi";
import { type MediaConfig, mediaSchema, type UploadKind } from "#common/config/media-schema.ts";
import { errorBody, errorResponse, invalidRequest, security } from "../openapi/components.ts";
import { generatedQuery, generatedThumbnailQuery, variantQuery, videoListQuery } from "./schema.ts";

/**
 * The OpenAPI paths of the attachments group (routes.ts), from the schemas its routes validate with. Limits
 * and sizes come from the `media` configuration (common/src/config/media-schema.ts); the document names
 * their defaults.
 */

const DEFAULTS: MediaConfig = mediaSchema.parse({});
const THUMBNAIL_SIZES = DEFAULTS.images.thumbnailSizes;
const GENERATED = DEFAULTS.generated;
const list = (values: readonly (string | number)[]) => values.join(", ");
const mib = (bytes: number) => `${bytes / (1024 * 1024)} MiB`;

// ---- request pieces

const filenameParams = (description: string) =>
  z.object({ filename: z.string().min(1).meta({ description, example: "kq3v9T0cXh2bYw7LpR4sAe.jpg" }) });

const storedName = filenameParams(
  "the stored name (`fileName` of the upload answer, or the file name of a `thumbnails` URL); unguessable, so it is the capability to read the file",
);

const variant = variantQuery(DEFAULTS.images);
const sizeParam = (absent: string) =>
  variant.shape.size.meta({
    description: `a thumbnail size in pixels, one of \`media.images.thumbnailSizes\` (${list(THUMBNAIL_SIZES)} by default); ${absent}`,
    example: String(THUMBNAIL_SIZES[0]),
  });

const pictureQuery = (absent: string) => z.object({ size: sizeParam(absent) });

const avatarQuery = (absent: string) =>
  z.object({
    size: sizeParam(absent),
    domain: variant.shape.domain.meta({
      description:
        "with an avatar asked by node: the user's XMPP domain (a `node@domain` filename names it too); without it, every configured domain is looked in",
    }),
  });

const generated = generatedQuery(GENERATED);
const generatedParams = z.object({
  name: generated.shape.name.meta({
    description:
      "whose avatar: a node, a JID or an e-mail address; the same name always gives the same picture",
    example: "alice@example.com",
  }),
  size: generated.shape.size.meta({
    description: `the size in pixels, one of \`media.generated.sizes\` (${list(GENERATED.sizes)} by default); ${GENERATED.defaultSize} by default`,
    example: String(GENERATED.defaultSize),
  }),
  format: generated.shape.format.meta({ description: "the image format" }),
});

const generatedThumbnailParams = z.object({
  format: generatedThumbnailQuery.shape.format.meta({
    description: "the image format; by default the filename's extension (`.png`, `.webp`), else PNG",
  }),
});

/** Conditional and range requests of a download (downloads.ts). */
const downloadHeaders = z.object({
  "If-None-Match": z.string().optional().meta({
    description: "the `ETag` of a copy the client holds: `304 Not Modified` when it still names the content",
    example: '"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"',
  }),
  "If-Modified-Since": z.string().optional().meta({
    description:
      "an HTTP date: `304 Not Modified` when the file is not newer (ignored when If-None-Match is sent)",
  }),
  Range: z.string().optional().meta({
    description:
      "`bytes=<start>-<end>`, `bytes=<start>-` or `bytes=-<suffix length>`: one range answers `206` with those bytes; several ranges, another unit or a malformed header answer the whole file",
    example: "bytes=0-1048575",
  }),
  "If-Range": z.string().optional().meta({
    description:
      "an ETag or an HTTP date: the Range counts only while it still names this content, else the whole file",
  }),
});

const generatedHeaders = z.object({
  "If-None-Match": z.string().optional().meta({
    description: "the `ETag` of a copy the client holds: `304 Not Modified` when it still names the picture",
  }),
});

/** `attachments`: one or more files, as a form's file field. */
const binaryFile = z.string().meta({
  format: "binary",
  contentMediaType: "application/octet-stream",
  description: "a file",
});

function uploadBody(kind: UploadKind): ZodOpenApiRequestBodyObject {
  const limits = DEFAULTS.uploads[kind];
  return {
    required: true,
    description: `multipart/form-data with ${limits.maxFiles === 1 ? "the file" : "the files"} in the field \`attachments\``,
    content: {
      "multipart/form-data": {
        schema: z.object({
          attachments: z
            .array(binaryFile)
            .min(1)
            .max(limits.maxFiles)
            .meta({
              description: `${limits.maxFiles === 1 ? "one file" : `1 to \`media.uploads.${kind}.maxFiles\` files (${limits.maxFiles} by default)`}, each at most \`media.uploads.${kind}.maxBytes\` (${mib(limits.maxBytes)} by default), of a type in \`media.uploads.${kind}.types\` (${list(limits.types)} by default)`,
            }),
        }),
        encoding: { attachments: { contentType: list(limits.types) } },
      },
    },
  };
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

const uploadAnswer = z
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

const videoList = z.object({
  videos: z.array(storedVideo).meta({ description: "newest first" }),
  next: z
    .string()
    .nullable()
    .meta({ description: "pass as `before` for the next (older) page; null on the last page" }),
});

const binary = (description: string) => ({ type: "string" as const, format: "binary", description });
const content = (types: string[], description: string): ZodOpenApiContentObject =>
  Object.fromEntries(types.map((t) => [t, { schema: binary(description) }]));

const IMAGES = ["image/*"];
const IMAGE_TYPES = list(DEFAULTS.uploads.pictures.types);

const etag = z
  .string()
  .meta({ description: "an entity tag of the content (for If-None-Match and If-Range)" });
const cacheControl = (value: string) => z.string().meta({ description: value });

/**
 * The headers of a stored file's answer (downloads.ts `setHeaders`). `orGenerated`: the answer may be a
 * generated avatar instead, which has no Last-Modified, ranges, disposition or resource policy.
 */
const storedHeaders = (cache: string, extra: Record<string, z.ZodType> = {}, orGenerated = false) => {
  const storedOnly = (description: string) =>
    orGenerated
      ? z
          .string()
          .optional()
          .meta({ description: `${description} (not on a generated avatar)` })
      : z.string().meta({ description });
  return z.object({
    "Content-Type": z.string().meta({ description: "the stored type, never sniffed" }),
    "Content-Length": z.number().int().meta({ description: "bytes in this answer" }),
    ETag: etag,
    "Last-Modified": storedOnly("when it was uploaded (HTTP date)"),
    "Cache-Control": cacheControl(cache),
    "Accept-Ranges": storedOnly("`bytes`"),
    "Content-Disposition": storedOnly(
      '`inline; filename="<stored name>"` for the image and video types, `attachment; …` otherwise',
    ),
    "X-Content-Type-Options": z.string().meta({ description: "`nosniff`" }),
    "Cross-Origin-Resource-Policy": storedOnly("`cross-origin`: other sites may embed it"),
    ...extra,
  });
};

const IMMUTABLE_CACHE = "`public, max-age=31536000, immutable` (a stored name never changes content)";

const AVATAR_CACHE =
  "`public, max-age=31536000, immutable` by stored name; `public, max-age=60, must-revalidate` by user; `public, max-age=86400` for a generated avatar";

/** 200/206/304/416 of a stored file (downloads.ts `send`). */
function downloadAnswers(
  types: string[],
  what: string,
  { cache = IMMUTABLE_CACHE, orGenerated = false } = {},
): ZodOpenApiResponsesObject {
  return {
    "200": {
      description: `${what}, whole`,
      headers: storedHeaders(cache, {}, orGenerated),
      content: content(types, what),
    },
    "206": {
      description: `Partial Content: the bytes of the one range asked for in \`Range\``,
      headers: storedHeaders(cache, {
        "Content-Range": z.string().meta({
          description: "`bytes <start>-<end>/<size>`",
          example: "bytes 0-1048575/7340032",
        }),
      }),
      content: content(types, "the bytes of the range"),
    },
    "304": {
      description: "Not Modified: the client's copy (If-None-Match / If-Modified-Since) is current; no body",
      headers: z.object({ ETag: etag, "Cache-Control": cacheControl(cache) }),
    },
    "416": {
      description:
        "range_not_satisfiable: the range starts beyond the end of the file; `Content-Range: bytes */<size>` tells its size",
      headers: z.object({
        "Content-Range": z.string().meta({ description: "`bytes */<size>`", example: "bytes */7340032" }),
      }),
      content: { "application/json": { schema: errorBody } },
    },
  };
}

/** 200/304 of a generated avatar (routes.ts `generated`): no ranges, no Last-Modified. */
function generatedAnswer(description: string, types = ["image/png", "image/webp"]): ZodOpenApiResponseObject {
  return {
    description,
    headers: z.object({
      "Content-Type": z.string().meta({ description: "`image/png` or `image/webp`" }),
      ETag: etag,
      "Cache-Control": cacheControl("`public, max-age=86400` (a day)"),
      "X-Content-Type-Options": z.string().meta({ description: "`nosniff`" }),
    }),
    content: content(types, "the picture"),
  };
}

const generated304: ZodOpenApiResponseObject = {
  description: "Not Modified: the client's copy (If-None-Match) is current; no body",
  headers: z.object({ ETag: etag }),
};

const generated429 = errorResponse(
  "rate_limited: this address had more generated avatars drawn than `services.httpUtility.rateLimits.generatedAvatarsPerIp` allows (faces already drawn by this process are not counted); retry after `Retry-After` seconds",
);

// ---- operations

function upload(kind: UploadKind, summary: string, description: string): ZodOpenApiOperationObject {
  const limits = DEFAULTS.uploads[kind];
  const imageErrors: ZodOpenApiResponsesObject =
    kind === "videos"
      ? {}
      : {
          "422": errorResponse(
            `invalid_image: the content is not a readable image; image_too_large: more than \`media.images.maxPixels\` (${DEFAULTS.images.maxPixels} by default) pixels`,
          ),
          "503": errorResponse(
            `images_busy: this process already decodes \`media.images.slots\` images with \`media.images.queue\` waiting (${DEFAULTS.images.slots} and ${DEFAULTS.images.queue} by default); retry after \`Retry-After\` seconds. Nothing is stored`,
          ),
        };
  const pixelErrors =
    kind === "videos"
      ? ""
      : `; request_pixels_exceeded: the request's images declare more than \`media.images.requestPixels\` (${DEFAULTS.images.requestPixels} by default) pixels together`;
  return {
    summary,
    description,
    security: security.app,
    requestBody: uploadBody(kind),
    responses: {
      "201": {
        description: "Stored; each file is answered, also in the legacy shape `files.attachments`",
        content: { "application/json": { schema: uploadAnswer } },
      },
      "400": errorResponse(
        "no_files: no file in the field `attachments`; unexpected_field: a file in another field; invalid_multipart: a malformed multipart body (no boundary, cut short, too many fields)",
      ),
      "413": errorResponse(
        `file_too_large: a file over \`media.uploads.${kind}.maxBytes\` (${mib(limits.maxBytes)} by default); too_many_files: more than \`media.uploads.${kind}.maxFiles\` (${limits.maxFiles} by default); quota_exceeded: the upload would take the caller over \`media.quotaBytes\` (${mib(DEFAULTS.quotaBytes)} by default)${pixelErrors}. Nothing is stored`,
      ),
      "429": errorResponse(
        `upload_budget_exceeded: the caller's uploads of the last 24 hours would pass \`media.dailyUploadBytes\` (${mib(DEFAULTS.dailyUploadBytes)} by default); the message says when the budget resets, \`Retry-After\` in seconds. Nothing is stored`,
      ),
      "507": errorResponse(
        `insufficient_storage: the storage's free space would fall under \`media.freeSpaceReserveBytes\` (${mib(DEFAULTS.freeSpaceReserveBytes)} by default); retry later. Nothing is stored`,
      ),
      "415": errorResponse(
        `multipart_required: the body is not multipart/form-data; unsupported_type: a file's content is not one of \`media.uploads.${kind}.types\` (${list(limits.types)} by default); type_mismatch: the part's declared type names another family than its content (send the real type or application/octet-stream)`,
      ),
      ...imageErrors,
    },
  };
}

const HEAD_AND_CACHE =
  "HEAD answers the same headers without the body. Answers `ETag`, `Last-Modified` and `Accept-Ranges: bytes`: " +
  "send `If-None-Match` for a `304`, and `Range` for a `206` (seeking, resuming).";

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/attachments/pictures": {
    post: upload(
      "pictures",
      "Store pictures",
      "Stores each picture (its type decided from its bytes: " +
        `${IMAGE_TYPES} by default) with its metadata removed and its orientation applied, and makes its ` +
        `thumbnails (\`media.images.thumbnailSizes\`: ${list(THUMBNAIL_SIZES)} px by default, longest side). ` +
        "A request is stored whole or not at all.",
    ),
  },
  "/api/v1/attachments/pictures/{filename}": {
    get: {
      summary: "A picture, or one of its thumbnails",
      description: `Public: the stored name is the capability. ${HEAD_AND_CACHE}`,
      security: security.public,
      requestParams: {
        path: storedName,
        query: pictureQuery("without it, the picture as stored"),
        header: downloadHeaders,
      },
      responses: {
        ...downloadAnswers(IMAGES, "The picture"),
        ...invalidRequest,
        "404": errorResponse("not_found: no picture of that name, or no thumbnail of that size"),
      },
    },
  },
  "/api/v1/attachments/pictures/thumbnails/{filename}": {
    get: {
      summary: "A picture's thumbnail",
      description: `The smallest thumbnail by default. Public: the stored name is the capability. ${HEAD_AND_CACHE}`,
      security: security.public,
      requestParams: {
        path: storedName,
        query: pictureQuery(`without it, the smallest (${THUMBNAIL_SIZES[0]} by default)`),
        header: downloadHeaders,
      },
      responses: {
        ...downloadAnswers(IMAGES, "The thumbnail"),
        ...invalidRequest,
        "404": errorResponse("not_found: no picture of that name, or no thumbnail of that size"),
      },
    },
  },
  "/api/v1/attachments/avatars": {
    post: upload(
      "avatars",
      "Set the caller's avatar",
      "Stores one picture as the caller's avatar, cropped square, with its square thumbnails " +
        `(${list(THUMBNAIL_SIZES)} px by default). The previous avatar and its thumbnails are deleted.`,
    ),
  },
  "/api/v1/attachments/avatars/{filename}": {
    get: {
      summary: "An avatar, by stored name or by user; a generated one for a user without",
      description:
        "`{filename}` is a stored avatar name (immutable, cached a year), or a user's node or `node@domain` " +
        "(their current avatar, `Cache-Control: public, max-age=60, must-revalidate`). A user without an avatar, " +
        `or a node found in several domains without \`domain\`, gets the generated avatar of that name (PNG, ${GENERATED.defaultSize} px by default). ` +
        HEAD_AND_CACHE,
      security: security.public,
      requestParams: {
        path: filenameParams("a stored avatar name, or a user's node or `node@domain`"),
        query: avatarQuery("without it, the avatar as stored"),
        header: downloadHeaders,
      },
      responses: {
        ...downloadAnswers(
          IMAGES,
          "The avatar, or the generated avatar (PNG, `Cache-Control: public, max-age=86400`, no ranges)",
          { cache: AVATAR_CACHE, orGenerated: true },
        ),
        ...invalidRequest,
        "404": errorResponse(
          "not_found: a stored name that is no avatar, or a user's avatar without a thumbnail of that size",
        ),
        "429": generated429,
      },
    },
  },
  "/api/v1/attachments/avatars/thumbnails/{filename}": {
    get: {
      summary: "An avatar's thumbnail, by stored name or by user",
      description:
        "As `GET /api/v1/attachments/avatars/{filename}`, the smallest thumbnail by default; a user without an " +
        `avatar gets the generated avatar at \`media.generated.thumbnailSize\` (${GENERATED.thumbnailSize} px by default). ` +
        HEAD_AND_CACHE,
      security: security.public,
      requestParams: {
        path: filenameParams("a stored avatar name, or a user's node or `node@domain`"),
        query: avatarQuery(`without it, the smallest (${THUMBNAIL_SIZES[0]} by default)`),
        header: downloadHeaders,
      },
      responses: {
        ...downloadAnswers(
          IMAGES,
          "The thumbnail, or the generated avatar (PNG, `Cache-Control: public, max-age=86400`, no ranges)",
          { cache: AVATAR_CACHE, orGenerated: true },
        ),
        ...invalidRequest,
        "404": errorResponse(
          "not_found: a stored name that is no avatar, or an avatar without a thumbnail of that size",
        ),
        "429": generated429,
      },
    },
  },
  "/api/v1/attachments/gravatar": {
    get: {
      summary: "A generated default avatar",
      description:
        "An identicon for `name`, the same for the same name, size and format (deterministic): what apps show " +
        "for a user without an avatar. HEAD answers the headers only.",
      security: security.public,
      requestParams: { query: generatedParams, header: generatedHeaders },
      responses: {
        "200": generatedAnswer("The generated avatar"),
        "304": generated304,
        ...invalidRequest,
        "429": generated429,
      },
    },
  },
  "/api/v1/attachments/gravatar/thumbnails/{filename}": {
    get: {
      summary: "The thumbnail of a generated avatar",
      description:
        `The generated avatar of \`{filename}\` at \`media.generated.thumbnailSize\` (${GENERATED.thumbnailSize} px by default). ` +
        "A filename ending in `.png` or `.webp` names the format (the name is what comes before); a bare name is PNG.",
      security: security.public,
      requestParams: {
        path: filenameParams(
          "the name (a node, a JID or an e-mail address), optionally with `.png` or `.webp`",
        ),
        query: generatedThumbnailParams,
        header: generatedHeaders,
      },
      responses: {
        "200": generatedAnswer("The generated thumbnail"),
        "304": generated304,
        ...invalidRequest,
        "404": errorResponse("not_found: an empty name, or one longer than 320 characters"),
        "429": generated429,
      },
    },
  },
  "/api/v1/attachments/videos": {
    post: upload(
      "videos",
      "Store videos",
      "Streams each video to storage as sent (never buffered whole), its type decided from its first bytes " +
        `(${list(DEFAULTS.uploads.videos.types)} by default). Where ffmpeg is installed and storage is local, ` +
        "poster thumbnails are made from a frame (`thumbnailUrl`, `thumbnails`); without them the upload still succeeds.",
    ),
    get: {
      summary: "The caller's videos, newest first, a page at a time",
      description:
        "Pass the answer's `next` as `before` (with the same `limit`) for the next, older page; `next` is null on the last page.",
      security: security.app,
      requestParams: {
        query: z.object({
          limit: videoListQuery.shape.limit.meta({ description: "videos per page, 1 to 100; 20 by default" }),
          before: videoListQuery.shape.before.meta({
            description: "the `next` cursor of the previous page",
          }),
        }),
      },
      responses: {
        "200": {
          description: "One page",
          content: { "application/json": { schema: videoList } },
        },
        ...invalidRequest,
      },
    },
  },
  "/api/v1/attachments/videos/{filename}": {
    get: {
      summary: "A video (or its poster thumbnail), with byte ranges for seeking",
      description: `Public: the stored name is the capability. ${HEAD_AND_CACHE}`,
      security: security.public,
      requestParams: { path: storedName, header: downloadHeaders },
      responses: {
        ...downloadAnswers(["video/*", "image/*"], "The video (a poster thumbnail's name answers the image)"),
        "404": errorResponse("not_found: no video of that name"),
      },
    },
  },
};
