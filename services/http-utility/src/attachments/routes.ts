import type { ErrorRequestHandler, Request } from "express";
import type { UploadKind } from "#common/config/media-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import { isKey } from "#common/media/keys.ts";
import type { UploadBudget } from "#common/media/upload-budget.ts";
import { validateNode } from "#common/users/jid.ts";
import { type CallerPolicy, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import type { Downloads } from "./downloads.ts";
import type { FreeSpaceCheck } from "./free-space.ts";
import type { GeneratedAvatars } from "./generated-avatars.ts";
import type { LegacyFiles } from "./legacy-files.ts";
import { isLegacyName } from "./legacy-names.ts";
import { createLegacyThumbnails } from "./legacy-thumbnails.ts";
import {
  AVATAR_CACHE,
  downloadHeaders,
  downloadResponses,
  generatedHeaders,
  generatedResponses,
  IMAGES,
} from "./responses.ts";
import {
  AS_STORED,
  AVATAR_DOMAIN,
  avatarNameParams,
  MEDIA_DEFAULTS as DEFAULTS,
  encodeCursor,
  generatedNameParams,
  generatedQuery,
  generatedThumbnailQuery,
  list,
  PICTURE_DOMAIN,
  SMALLEST,
  storedNameParams,
  type VideoList,
  variantQuery,
  videoList,
  videoListQuery,
} from "./schema.ts";
import {
  type AttachmentKind,
  type AttachmentRow,
  findAvatar,
  findVariant,
  listAttachments,
  variantsOf,
} from "./store.ts";
import type { EngineDeps } from "./upload-engine.ts";
import { uploadRoute } from "./upload-route.ts";

/**
 * The attachment endpoints (docs/attachments.md). Uploads are for app callers; downloads are public
 * because a stored name is a capability (144 random bits); a user's avatar is public by their node. Files
 * imported from the legacy services (`sidecars media import`) answer under their legacy names too, and get
 * their thumbnails on first request.
 */

/** The media feature (`createMediaDeps`), the `media` section as `media`, and what else the routes read. */
export interface AttachmentsDeps extends EngineDeps {
  config: Pick<Config, "domains">;
  pool: Pool;
  budget: UploadBudget;
  freeSpace: FreeSpaceCheck;
  generated: GeneratedAvatars;
  downloads: Downloads;
  legacy: LegacyFiles;
}

const PREFIX = "/api/v1/attachments";
/** An avatar by node changes when its owner uploads another: a minute, then revalidate with the ETag. */
const BY_NODE = "public, max-age=60, must-revalidate";

const HEAD_AND_CACHE =
  "HEAD answers the same headers without the body. Answers `ETag`, `Last-Modified` and `Accept-Ranges: bytes`: " +
  "send `If-None-Match` (or `If-Modified-Since`, ignored beside it) for a `304`, and one `Range` " +
  "(`bytes=<start>-<end>`, `bytes=<start>-` or `bytes=-<suffix length>`) for a `206` (seeking, resuming); " +
  "several ranges, another unit or a malformed header answer the whole file, as does a `Range` whose " +
  "`If-Range` (an ETag or an HTTP date) no longer names this content.";
/** What generated-avatars.ts counts (faces drawn before are answered from memory, uncounted). */
const DRAWING_LIMIT =
  " New faces are drawn for an address at most as often as `services.httpUtility.rateLimits.generatedAvatarsPerIp` allows (faces this process drew already are not counted).";
const STORED_NAME = "Public: the stored name is the capability.";
/** Files of the legacy services registered by `sidecars media import` (docs/attachments.md "Importing legacy media"). */
const LEGACY_NAMES =
  " A file imported from the legacy services answers under its legacy name too (`Cache-Control: public, max-age=86400`)";
const LEGACY_THUMBNAILS =
  ", its thumbnails made on their first request (`503 images_busy` while the image slots are full).";
const downloadErrors = [errors.rangeNotSatisfiable];
const GENERATED = DEFAULTS.generated;

export function attachmentsRoutes(deps: AttachmentsDeps): Route<CallerPolicy>[] {
  const { pool, media, downloads } = deps;
  const legacyThumbnails = createLegacyThumbnails(deps);
  const { generated } = deps;
  const urlOf = (group: string) => (req: Request, name: string) =>
    `${req.protocol}://${req.get("host")}${PREFIX}/${group}/${name}`;
  const uploadDeps = {
    ...deps,
    onDeleted: (names: string[]) => downloads.forget(names),
  };

  /** A stored name of this kind (an original or one of its variants), or 404. */
  async function stored(name: string, kind: AttachmentKind): Promise<AttachmentRow> {
    const row = await downloads.lookup(name);
    if (!row || row.kind !== kind) throw errors.noAttachment();
    return row;
  }

  /** The original itself, or its `?size=` thumbnail (an imported legacy image's made on its first request). */
  async function sized(row: AttachmentRow, size: number | undefined): Promise<AttachmentRow> {
    if (size === undefined) return row;
    let variant = await findVariant(pool, row.parent ?? row.name, String(size));
    if (!variant && row.legacyPath && row.kind !== "video") {
      await legacyThumbnails.make(row);
      variant = await findVariant(pool, row.name, String(size));
    }
    if (!variant) throw errors.noThumbnail(size);
    return variant;
  }

  const smallest = () => media.images.thumbnailSizes[0] as number;

  /**
   * An avatar by stored name (immutable), by its owner's node (changes), or by an imported legacy file's name;
   * undefined for a node without. A user's node comes before a legacy name, so `/avatars/<node>` follows the
   * user's current avatar even where a legacy file is named exactly so.
   */
  async function avatar(filename: string, domain: string | undefined) {
    if (isKey(filename)) return { row: await stored(filename, "avatar"), cacheControl: undefined };
    const [node, at] = filename.split("@", 2);
    // not a stored name, and not a user part either (`../x`, a NUL): no such avatar, not a generated face
    if (validateNode(node ?? "")) throw errors.noAvatar();
    const wanted = domain ?? at;
    // only a served domain is looked in: anything else (a typo, bytes PostgreSQL refuses) has no avatar
    if (wanted !== undefined && !Object.hasOwn(deps.config.domains, wanted)) return undefined;
    const domains = wanted ? [wanted] : Object.keys(deps.config.domains);
    const rows = await findAvatar(pool, (node ?? "").toLowerCase(), domains);
    if (rows.length === 1 && rows[0]) return { row: rows[0], cacheControl: BY_NODE };
    if (at === undefined && isLegacyName(filename)) {
      const imported = await downloads.lookup(filename);
      if (imported?.kind === "avatar" && imported.legacyPath)
        return { row: imported, cacheControl: undefined };
    }
    return undefined;
  }

  /**
   * What a node's generated avatar is drawn from: `<node>@<domain>` when the domain is known, whether the
   * URL says it with `@` or `?domain=`, so that both URLs of one user show the same face.
   */
  function drawnFrom(filename: string, domain: string | undefined): string {
    const [node, at] = filename.split("@", 2);
    const wanted = domain ?? at;
    return wanted ? `${node}@${wanted}` : filename;
  }

  const upload = (kind: UploadKind, summary: string, description: string) =>
    uploadRoute(kind, uploadDeps, urlOf(kind), { path: `${PREFIX}/${kind}`, summary, description });

  /**
   * A stored avatar (the original, or `size`), or the generated face of a node without one: the same URL
   * serves the real avatar once its owner uploads one, so the face is revalidated like it.
   */
  const avatarRoute = (thumbnail: boolean) =>
    defineRoute({
      method: "get",
      path: `${PREFIX}/avatars${thumbnail ? "/thumbnails" : ""}/{filename}`,
      summary: thumbnail
        ? "An avatar's thumbnail, by stored name or by user"
        : "An avatar, by stored name or by user; a generated one for a user without",
      description: thumbnail
        ? "As `GET /api/v1/attachments/avatars/{filename}`, the smallest thumbnail by default; a user without an " +
          `avatar gets the generated avatar at \`media.generated.thumbnailSize\` (${GENERATED.thumbnailSize} px by default). ` +
          HEAD_AND_CACHE +
          DRAWING_LIMIT
        : "`{filename}` is a stored avatar name (immutable, cached a year), or a user's node or `node@domain` " +
          "(their current avatar, `Cache-Control: public, max-age=60, must-revalidate`). A user without an avatar, " +
          `or a node found in several domains without \`domain\`, gets the generated avatar of that name (PNG, ${GENERATED.defaultSize} px by default).` +
          LEGACY_NAMES +
          LEGACY_THUMBNAILS +
          " " +
          HEAD_AND_CACHE +
          DRAWING_LIMIT,
      caller: caller.public,
      request: {
        params: avatarNameParams,
        query: variantQuery(media.images, thumbnail ? SMALLEST : AS_STORED("avatar"), AVATAR_DOMAIN),
        headers: downloadHeaders,
      },
      responses: downloadResponses(
        IMAGES,
        `${thumbnail ? "The thumbnail" : "The avatar"}, or the generated avatar (PNG, \`Cache-Control: public, max-age=86400\`, no ranges)`,
        { cache: AVATAR_CACHE, orGenerated: true },
      ),
      errors: [
        ...downloadErrors,
        errors.noAttachment,
        errors.noAvatar,
        errors.noThumbnail,
        errors.rateLimited,
        errors.imagesBusy,
      ],
      async handler({ params, query, req, res }) {
        const found = await avatar(params.filename, query.domain);
        if (!found) {
          const size = thumbnail ? media.generated.thumbnailSize : media.generated.defaultSize;
          await generated.send(req, res, drawnFrom(params.filename, query.domain), size, "png", BY_NODE);
          return;
        }
        const size = thumbnail ? (query.size ?? smallest()) : query.size;
        await downloads.send(req, res, await sized(found.row, size), found.cacheControl);
      },
    });

  const pictureRoute = (thumbnail: boolean) =>
    defineRoute({
      method: "get",
      path: `${PREFIX}/pictures${thumbnail ? "/thumbnails" : ""}/{filename}`,
      summary: thumbnail ? "A picture's thumbnail" : "A picture, or one of its thumbnails",
      description: `${thumbnail ? "The smallest thumbnail by default. " : ""}${STORED_NAME}${LEGACY_NAMES}${LEGACY_THUMBNAILS} ${HEAD_AND_CACHE}`,
      caller: caller.public,
      request: {
        params: storedNameParams,
        query: variantQuery(media.images, thumbnail ? SMALLEST : AS_STORED("picture"), PICTURE_DOMAIN),
        headers: downloadHeaders,
      },
      responses: downloadResponses(IMAGES, thumbnail ? "The thumbnail" : "The picture"),
      errors: [...downloadErrors, errors.noAttachment, errors.noThumbnail, errors.imagesBusy],
      async handler({ params, query, req, res }) {
        const row = await stored(params.filename, "picture");
        const size = thumbnail ? (query.size ?? smallest()) : query.size;
        await downloads.send(req, res, await sized(row, size));
      },
    });

  return [
    // ---- pictures
    upload(
      "pictures",
      "Store pictures",
      "Stores each picture (its type decided from its bytes: " +
        `${list(DEFAULTS.uploads.pictures.types)} by default) with its metadata removed and its orientation applied, and makes its ` +
        `thumbnails (\`media.images.thumbnailSizes\`: ${list(DEFAULTS.images.thumbnailSizes)} px by default, longest side). ` +
        "A request is stored whole or not at all.",
    ),
    pictureRoute(true),
    pictureRoute(false),

    // ---- avatars
    upload(
      "avatars",
      "Set the caller's avatar",
      "Stores one picture as the caller's avatar, cropped square, with its square thumbnails " +
        `(${list(DEFAULTS.images.thumbnailSizes)} px by default). The previous avatar and its thumbnails are deleted.`,
    ),
    avatarRoute(true),
    avatarRoute(false),

    // ---- generated avatars
    defineRoute({
      method: "get",
      path: `${PREFIX}/gravatar`,
      summary: "A generated default avatar",
      description:
        "An identicon for `name`, the same for the same name, size and format (deterministic): what apps show " +
        "for a user without an avatar. HEAD answers the headers only; send `If-None-Match` for a `304`." +
        DRAWING_LIMIT,
      caller: caller.public,
      request: { query: generatedQuery(media.generated), headers: generatedHeaders },
      responses: generatedResponses("The generated avatar"),
      errors: [errors.rateLimited],
      async handler({ query, req, res }) {
        await generated.send(req, res, query.name, query.size, query.format);
      },
    }),
    defineRoute({
      method: "get",
      path: `${PREFIX}/gravatar/thumbnails/{filename}`,
      summary: "The thumbnail of a generated avatar",
      description:
        `The generated avatar of \`{filename}\` at \`media.generated.thumbnailSize\` (${GENERATED.thumbnailSize} px by default). ` +
        "A filename ending in `.png` or `.webp` names the format (the name is what comes before); a bare name is PNG. " +
        "Send `If-None-Match` for a `304`." +
        DRAWING_LIMIT,
      caller: caller.public,
      request: { params: generatedNameParams, query: generatedThumbnailQuery, headers: generatedHeaders },
      responses: generatedResponses("The generated thumbnail"),
      errors: [errors.noGeneratedAvatar, errors.rateLimited],
      async handler({ params, query, req, res }) {
        // `<name>.png` or `<name>.webp` names the format; a bare name is PNG
        const ext = /\.(png|webp)$/.exec(params.filename);
        const format = query.format ?? (ext?.[1] as "png" | "webp" | undefined) ?? "png";
        const name = ext ? params.filename.slice(0, ext.index) : params.filename;
        if (name.length === 0 || name.length > 320) throw errors.noGeneratedAvatar();
        await generated.send(req, res, name, media.generated.thumbnailSize, format);
      },
    }),

    // ---- videos
    upload(
      "videos",
      "Store videos",
      "Streams each video to storage as sent (never buffered whole), its type decided from its first bytes " +
        `(${list(DEFAULTS.uploads.videos.types)} by default). Where ffmpeg is installed and storage is local, ` +
        "poster thumbnails are made from a frame (`thumbnailUrl`, `thumbnails`); without them the upload still succeeds.",
    ),
    defineRoute({
      method: "get",
      path: `${PREFIX}/videos`,
      summary: "The caller's videos, newest first, a page at a time",
      description:
        "Pass the answer's `next` as `before` (with the same `limit`) for the next, older page; `next` is null on the last page.",
      caller: caller.app,
      request: { query: videoListQuery },
      responses: { 200: { description: "One page", schema: videoList } },
      async handler({ query, caller: who, req, res }) {
        const rows = await listAttachments(pool, who.jid, "video", {
          limit: query.limit + 1,
          before: query.before,
        });
        const page = rows.slice(0, query.limit);
        const variants = await variantsOf(
          pool,
          page.map((r) => r.name),
        );
        const url = urlOf("videos");
        const answer: VideoList = {
          videos: page.map((r) => {
            const poster = variants.find((v) => v.parent === r.name && v.variant === String(smallest()));
            return {
              name: r.originalName ?? null,
              fileName: r.name,
              url: url(req, r.name),
              thumbnailUrl: poster ? url(req, poster.name) : null,
              contentType: r.contentType,
              size: r.size,
              sha256: r.sha256,
              created: r.created.toISOString(),
            };
          }),
          next: rows.length > query.limit && page.at(-1) ? encodeCursor(page.at(-1) as AttachmentRow) : null,
        };
        res.json(answer);
      },
    }),
    defineRoute({
      method: "get",
      path: `${PREFIX}/videos/{filename}`,
      summary: "A video (or its poster thumbnail), with byte ranges for seeking",
      description: `${STORED_NAME}${LEGACY_NAMES}. ${HEAD_AND_CACHE}`,
      caller: caller.public,
      request: { params: storedNameParams, headers: downloadHeaders },
      responses: downloadResponses(
        ["video/*", "image/*"],
        "The video (a poster thumbnail's name answers the image)",
      ),
      errors: [...downloadErrors, errors.noAttachment],
      async handler({ params, req, res }) {
        await downloads.send(req, res, await stored(params.filename, "video"));
      },
    }),
  ];
}

/**
 * Mounted after the attachments' routes: a name that is not even valid percent-encoding (`..%c0%af`) names no
 * attachment, the same 404 as any other name without a row, rather than express's 400 for a parameter it
 * cannot decode.
 */
export const undecodableName: ErrorRequestHandler = (err, _req, _res, next) => {
  next(err instanceof URIError ? errors.noAttachment() : err);
};
