import type { Request, Response } from "express";
import { LRUCache } from "lru-cache";
import type { MediaConfig } from "#common/config/media-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { createRateLimit } from "#common/http/rate-limit.ts";
import { identicon, identiconEtag } from "./identicon.ts";

/**
 * Generated avatars (identicon.ts) as answers: deterministic, so an ETag of the name, size and format and a
 * day of public caching; drawn faces are kept in a small LRU.
 */

const GENERATED_CACHE = "public, max-age=86400";

export interface GeneratedAvatars {
  /** Answers GET/HEAD with the face of `name`, or 304 when the client's copy is current. */
  send(
    req: Request,
    res: Response,
    name: string,
    size: number,
    format: "png" | "webp",
    cacheControl?: string,
  ): Promise<void>;
}

export function createGeneratedAvatars(deps: {
  pool: Pool;
  media: MediaConfig;
  perIp: { points: number; seconds: number };
}): GeneratedAvatars {
  // Drawing a face costs an SVG render; a cached one (or a 304) costs nothing and is never counted, so only
  // a stream of new names (one render each) meets the limit.
  const perIp = createRateLimit(
    deps.pool,
    "generatedAvatarsPerIp",
    deps.perIp,
    (s) => `Too many new generated avatars from your address; retry in ${s} s.`,
  );
  const cache = new LRUCache<string, Buffer>({
    maxSize: Math.max(1, Math.min(16 * 1024 * 1024, deps.media.cache.maxBytes)),
    sizeCalculation: (b) => b.length,
  });

  return {
    async send(req, res, name, size, format, cacheControl = GENERATED_CACHE) {
      const etag = identiconEtag(name, size, format);
      res.setHeader("Content-Type", `image/${format}`);
      res.setHeader("X-Content-Type-Options", "nosniff");
      res.setHeader("ETag", etag);
      res.setHeader("Cache-Control", cacheControl);
      if (req.fresh) {
        res.status(304).end();
        return;
      }
      let data = cache.get(etag);
      if (!data) {
        await perIp.consume(req.ip ?? req.socket.remoteAddress ?? "unknown").catch((err) => {
          // the refusal must not carry the image's headers (a day of public caching)
          for (const h of ["Content-Type", "X-Content-Type-Options", "ETag", "Cache-Control"])
            res.removeHeader(h);
          throw err;
        });
        data = await identicon(name, size, format);
        cache.set(etag, data);
      }
      res.setHeader("Content-Length", String(data.length));
      res.end(req.method === "HEAD" ? undefined : data);
    },
  };
}
