import { type NextFunction, type Request, type Response, Router } from "express";
import { LRUCache } from "lru-cache";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { notFound } from "#common/errors.ts";
import { createRateLimit } from "#common/http/rate-limit.ts";
import { validated } from "#common/http/validate.ts";
import { isKey } from "#common/media/keys.ts";
import { createUploadBudget } from "#common/media/upload-budget.ts";
import { validateNode } from "#common/users/jid.ts";
import { type Callers, callerOf } from "../callers.ts";
import { createDownloads } from "./downloads.ts";
import { identicon, identiconEtag } from "./identicon.ts";
import {
  encodeCursor,
  generatedQuery,
  generatedThumbnailQuery,
  variantQuery,
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
 * The attachment endpoints (legacy-api.md "Attachments"). Uploads are for app callers; downloads are public
 * because a stored name is a capability (144 random bits); a user's avatar is public by their node.
 */

/** The media feature (`createMediaDeps`), the `media` section as `media`, and what else the routes read. */
export interface AttachmentsDeps extends EngineDeps {
  config: Pick<Config, "domains" | "services">;
  pool: Pool;
  callers: Callers;
}

const PREFIX = "/api/v1/attachments";
/** An avatar by node changes when its owner uploads another: a minute, then revalidate with the ETag. */
const BY_NODE = "public, max-age=60, must-revalidate";
const GENERATED = "public, max-age=86400";

export function attachmentsRouter(deps: AttachmentsDeps): Router {
  const { pool, media } = deps;
  const downloads = createDownloads({ pool, storage: deps.storage, media });
  const router = Router();
  const urlOf = (group: string) => (req: Request, name: string) =>
    `${req.protocol}://${req.get("host")}${PREFIX}/${group}/${name}`;
  const uploadDeps = {
    ...deps,
    onDeleted: (names: string[]) => downloads.forget(names),
    budget: createUploadBudget(pool, media.dailyUploadBytes),
  };
  // Drawing a face costs an SVG render; a cached one (or a 304) costs nothing and is never counted, so only
  // a stream of new names (one render each) meets the limit.
  const generatedPerIp = createRateLimit(
    pool,
    "generatedAvatarsPerIp",
    deps.config.services.httpUtility.rateLimits.generatedAvatarsPerIp,
    (s) => `Too many new generated avatars from your address; retry in ${s} s.`,
  );

  /** A stored name of this kind (an original or one of its variants), or 404. */
  async function stored(name: string, kind: AttachmentKind): Promise<AttachmentRow> {
    const row = await downloads.lookup(name);
    if (!row || row.kind !== kind) throw notFound("attachment");
    return row;
  }

  /** The original itself, or its `?size=` thumbnail. */
  async function sized(row: AttachmentRow, size: number | undefined): Promise<AttachmentRow> {
    if (size === undefined) return row;
    const variant = await findVariant(pool, row.parent ?? row.name, String(size));
    if (!variant) throw notFound(`${size} px thumbnail`);
    return variant;
  }

  const smallest = () => media.images.thumbnailSizes[0] as number;
  const variantParams = variantQuery(media.images);

  // ---- pictures
  router.post("/pictures", deps.callers.app, ...uploadRoute("pictures", uploadDeps, urlOf("pictures")));
  router.get(
    "/pictures/thumbnails/:filename",
    validated({ query: variantParams }, async ({ query }, req, res) => {
      const row = await stored(String(req.params.filename), "picture");
      await downloads.send(req, res, await sized(row, query.size ?? smallest()));
    }),
  );
  router.get(
    "/pictures/:filename",
    validated({ query: variantParams }, async ({ query }, req, res) => {
      const row = await stored(String(req.params.filename), "picture");
      await downloads.send(req, res, await sized(row, query.size));
    }),
  );

  // ---- avatars
  router.post("/avatars", deps.callers.app, ...uploadRoute("avatars", uploadDeps, urlOf("avatars")));

  /** An avatar by stored name (immutable) or by its owner's node (changes), or undefined for a node without. */
  async function avatar(filename: string, domain: string | undefined) {
    if (isKey(filename)) return { row: await stored(filename, "avatar"), cacheControl: undefined };
    const [node, at] = filename.split("@", 2);
    // not a stored name, and not a user part either (`../x`, a NUL): no such avatar, not a generated face
    if (validateNode(node ?? "")) throw notFound("avatar");
    const wanted = domain ?? at;
    const domains = wanted ? [wanted] : Object.keys(deps.config.domains);
    const rows = await findAvatar(pool, (node ?? "").toLowerCase(), domains);
    return rows.length === 1 && rows[0] ? { row: rows[0], cacheControl: BY_NODE } : undefined;
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

  async function generated(
    req: Request,
    res: Response,
    name: string,
    size: number,
    format: "png" | "webp",
    cacheControl = GENERATED,
  ) {
    const etag = identiconEtag(name, size, format);
    res.setHeader("Content-Type", `image/${format}`);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("ETag", etag);
    res.setHeader("Cache-Control", cacheControl);
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    let data = generatedCache.get(etag);
    if (!data) {
      await generatedPerIp.consume(req.ip ?? req.socket.remoteAddress ?? "unknown").catch((err) => {
        // the refusal must not carry the image's headers (a day of public caching)
        for (const h of ["Content-Type", "X-Content-Type-Options", "ETag", "Cache-Control"])
          res.removeHeader(h);
        throw err;
      });
      data = await identicon(name, size, format);
      generatedCache.set(etag, data);
    }
    res.setHeader("Content-Length", String(data.length));
    res.end(req.method === "HEAD" ? undefined : data);
  }
  const generatedCache = new LRUCache<string, Buffer>({
    maxSize: Math.max(1, Math.min(16 * 1024 * 1024, media.cache.maxBytes)),
    sizeCalculation: (b) => b.length,
  });

  /**
   * A stored avatar (the original, or `size`), or the generated face of a node without one: the same URL
   * serves the real avatar once its owner uploads one, so the face is revalidated like it.
   */
  const avatarRoute = (thumbnail: boolean) =>
    validated({ query: variantParams }, async ({ query }, req, res) => {
      const filename = String(req.params.filename);
      const found = await avatar(filename, query.domain);
      if (!found) {
        const size = thumbnail ? media.generated.thumbnailSize : media.generated.defaultSize;
        await generated(req, res, drawnFrom(filename, query.domain), size, "png", BY_NODE);
        return;
      }
      const size = thumbnail ? (query.size ?? smallest()) : query.size;
      await downloads.send(req, res, await sized(found.row, size), found.cacheControl);
    });
  router.get("/avatars/thumbnails/:filename", avatarRoute(true));
  router.get("/avatars/:filename", avatarRoute(false));

  // ---- generated avatars
  router.get(
    "/gravatar",
    validated({ query: generatedQuery(media.generated) }, async ({ query }, req, res) => {
      await generated(req, res, query.name, query.size, query.format);
    }),
  );
  router.get(
    "/gravatar/thumbnails/:filename",
    validated({ query: generatedThumbnailQuery }, async ({ query }, req, res) => {
      // `<name>.png` or `<name>.webp` names the format; a bare name is PNG
      const filename = String(req.params.filename);
      const ext = /\.(png|webp)$/.exec(filename);
      const format = query.format ?? (ext?.[1] as "png" | "webp" | undefined) ?? "png";
      const name = ext ? filename.slice(0, ext.index) : filename;
      if (name.length === 0 || name.length > 320) throw notFound("generated avatar");
      await generated(req, res, name, media.generated.thumbnailSize, format);
    }),
  );

  // ---- videos
  router.post("/videos", deps.callers.app, ...uploadRoute("videos", uploadDeps, urlOf("videos")));
  router.get(
    "/videos",
    deps.callers.app,
    validated({ query: videoListQuery }, async ({ query }, req, res) => {
      const caller = callerOf(res);
      if (caller.kind !== "app") throw new Error("video list reached without an app caller");
      const rows = await listAttachments(pool, caller.jid, "video", {
        limit: query.limit + 1,
        before: query.before,
      });
      const page = rows.slice(0, query.limit);
      const variants = await variantsOf(
        pool,
        page.map((r) => r.name),
      );
      const url = urlOf("videos");
      res.json({
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
      });
    }),
  );
  router.get("/videos/:filename", async (req, res, next) => {
    try {
      await downloads.send(req, res, await stored(String(req.params.filename), "video"));
    } catch (err) {
      next(err);
    }
  });

  // a name that is not even valid percent-encoding (`..%c0%af`) names no attachment: the same 404 as any
  // other name without a row, rather than express's 400 for a parameter it cannot decode
  router.use((err: unknown, _req: Request, _res: Response, next: NextFunction) => {
    next(err instanceof URIError ? notFound("attachment") : err);
  });

  return router;
}
