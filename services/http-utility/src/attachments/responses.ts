import { z } from "zod";
import type { ZodOpenApiContentObject } from "zod-openapi";
import type { RouteResponse } from "#common/http/route.ts";
import { errorBody } from "#common/http/route-openapi.ts";

/**
 * The answers of the download routes (routes.ts) that are not JSON: a stored file's (downloads.ts `send`)
 * and a generated avatar's (generated-avatars.ts), with the headers caches and players read
 * (RFC 9110 §13 conditional requests, §14 ranges).
 */

const binary = (description: string) => ({ type: "string" as const, format: "binary", description });
const content = (types: readonly string[], description: string): ZodOpenApiContentObject =>
  Object.fromEntries(types.map((t) => [t, { schema: binary(description) }]));

export const IMAGES = ["image/*"];

/** The conditional and range requests a stored file's download reads (downloads.ts). */
export const downloadHeaders = z.object({
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

/** The conditional request a generated avatar reads (generated-avatars.ts). */
export const generatedHeaders = z.object({
  "If-None-Match": z.string().optional().meta({
    description: "the `ETag` of a copy the client holds: `304 Not Modified` when it still names the picture",
  }),
});

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

export const AVATAR_CACHE =
  "`public, max-age=31536000, immutable` by stored name; `public, max-age=60, must-revalidate` by user; `public, max-age=86400` for a generated avatar";

/** 200/206/304/416 of a stored file (downloads.ts `send`); 416's code comes from the route's errors. */
export function downloadResponses(
  types: readonly string[],
  what: string,
  { cache = IMMUTABLE_CACHE, orGenerated = false } = {},
): Record<number, RouteResponse> {
  return {
    200: {
      description: `${what}, whole`,
      headers: storedHeaders(cache, {}, orGenerated),
      content: content(types, what),
    },
    206: {
      description: "Partial Content: the bytes of the one range asked for in `Range`",
      headers: storedHeaders(cache, {
        "Content-Range": z.string().meta({
          description: "`bytes <start>-<end>/<size>`",
          example: "bytes 0-1048575/7340032",
        }),
      }),
      content: content(types, "the bytes of the range"),
    },
    304: {
      description: "Not Modified: the client's copy (If-None-Match / If-Modified-Since) is current; no body",
      headers: z.object({ ETag: etag, "Cache-Control": cacheControl(cache) }),
    },
    416: {
      description:
        "Range Not Satisfiable: the range starts beyond the end of the file; `Content-Range: bytes */<size>` tells its size",
      headers: z.object({
        "Content-Range": z.string().meta({ description: "`bytes */<size>`", example: "bytes */7340032" }),
      }),
      content: { "application/json": { schema: errorBody } },
    },
  };
}

/** 200/304 of a generated avatar (generated-avatars.ts): no ranges, no Last-Modified. */
export function generatedResponses(description: string): Record<number, RouteResponse> {
  return {
    200: {
      description,
      headers: z.object({
        "Content-Type": z.string().meta({ description: "`image/png` or `image/webp`" }),
        ETag: etag,
        "Cache-Control": cacheControl("`public, max-age=86400` (a day)"),
        "X-Content-Type-Options": z.string().meta({ description: "`nosniff`" }),
      }),
      content: content(["image/png", "image/webp"], "the picture"),
    },
    304: {
      description: "Not Modified: the client's copy (If-None-Match) is current; no body",
      headers: z.object({ ETag: etag }),
    },
  };
}
