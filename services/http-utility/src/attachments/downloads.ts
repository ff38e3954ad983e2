import type { OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Request, Response } from "express";
import { LRUCache } from "lru-cache";
import type { MediaConfig } from "#common/config/media-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { relativePathOf } from "#common/media/fs-storage.ts";
import { isKey } from "#common/media/keys.ts";
import { type ByteRange, MissingObjectError, type Storage } from "#common/media/storage.ts";
import { errors } from "../errors.ts";
import { createLegacyFiles, type LegacyFiles } from "./legacy-files.ts";
import { isLegacyName } from "./legacy-names.ts";
import { type AttachmentRow, findAttachment } from "./store.ts";

/**
 * Downloads of stored attachments: the right type, never sniffed; conditional answers (ETag from the
 * SHA-256, Last-Modified from the upload) and byte ranges through express's own `req.fresh` and
 * `req.range` (the `fresh` and `range-parser` libraries, as in `send`), for every backend alike; an LRU of
 * small hot files (thumbnails, avatars) under a byte budget; optionally `X-Accel-Redirect`, so an nginx in
 * front sends the bytes of an fs backend itself. Imported legacy files (legacy-files.ts) are found by their
 * legacy names and read under `media.legacyRoot` (or handed to nginx's `media.legacyAccelRedirect`).
 */

/** Types a browser may show inline: they cannot run script in our origin. */
const INLINE = new Set([
  "image/jpeg",
  "image/png",
  "image/webp",
  "image/avif",
  "image/gif",
  "video/mp4",
  "video/webm",
  "video/quicktime",
  "video/3gpp",
  "video/x-matroska",
]);

/** The headers of a file's answer (besides its length and range): the type, never sniffed, and its validators. */
function fileHeaders(row: AttachmentRow, cacheControl: string): Record<string, string> {
  return {
    "Content-Type": row.contentType,
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": `${INLINE.has(row.contentType) ? "inline" : "attachment"}; filename="${row.name}"`,
    ETag: `"${Buffer.from(row.sha256, "hex").toString("base64url")}"`,
    "Last-Modified": row.created.toUTCString(),
    "Cache-Control": cacheControl,
    "Accept-Ranges": "bytes",
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
}

/** A stored name never changes content: a year, and `immutable` so browsers do not even revalidate. */
export const IMMUTABLE = "public, max-age=31536000, immutable";

/**
 * A legacy name was not drawn at random: the legacy services could write another file under it after a way
 * back (and a new import then records it), so caches keep it a day and then revalidate with the ETag.
 */
export const LEGACY_CACHE = "public, max-age=86400";

interface Entry {
  row: AttachmentRow;
  data?: Buffer;
  /** The whole answer's headers of a cached file (`data`), as `send` sets them with `IMMUTABLE`. */
  headers?: OutgoingHttpHeaders;
}

/**
 * A stored file whose answer is in memory, what the lean path (lean-downloads.ts) serves: its bytes, or with
 * `media.accelRedirect` no bytes and the `X-Accel-Redirect` header that has nginx send them.
 */
export interface HotFile {
  row: AttachmentRow;
  data: Buffer;
  headers: OutgoingHttpHeaders;
}

const ROW_BYTES = 512;
const NOTHING = Buffer.alloc(0);

export interface Downloads {
  /** The row of a stored or imported legacy name (cached), or undefined when the name is neither or has no row. */
  lookup(name: string): Promise<AttachmentRow | undefined>;
  /** Answers GET/HEAD with the object of `row`. */
  send(req: Request, res: Response, row: AttachmentRow, cacheControl?: string): Promise<void>;
  /**
   * The cached answer of a stored name (not an imported legacy one) when its bytes are in memory, or its row
   * with `media.accelRedirect`: found without touching the database or the storage; undefined otherwise (the
   * full path then answers).
   */
  hot(name: string): HotFile | undefined;
  /** Forgets names (their objects were deleted). */
  forget(names: string[]): void;
}

export function createDownloads(deps: {
  pool: Pool;
  storage: Storage;
  media: MediaConfig;
  /** where imported legacy files are read; from `media.legacyRoot` otherwise */
  legacy?: LegacyFiles;
}): Downloads {
  const { storage, media } = deps;
  const legacy = deps.legacy ?? createLegacyFiles({ legacyRoot: media.legacyRoot });
  const cache =
    media.cache.maxBytes > 0
      ? new LRUCache<string, Entry>({
          maxSize: media.cache.maxBytes,
          sizeCalculation: (e) => ROW_BYTES + (e.data?.length ?? 0),
          ttl: media.cache.ttlSeconds * 1000,
        })
      : undefined;
  const accel = media.accelRedirect && storage.localPath ? media.accelRedirect : undefined;

  /** The bytes of a row, from the storage backend or, for an imported legacy file, from the legacy root. */
  const bodyOf = (row: AttachmentRow, range?: ByteRange): Promise<Readable> =>
    row.legacyPath ? legacy.read(row, range) : storage.get(row.name, range);

  async function lookup(name: string): Promise<AttachmentRow | undefined> {
    if (!isKey(name) && !isLegacyName(name)) return undefined;
    const hit = cache?.get(name);
    if (hit) return hit.row;
    const row = await findAttachment(deps.pool, name);
    if (row) cache?.set(name, { row });
    return row;
  }

  /** The whole object of a small file, read once and then served from memory. */
  async function smallBody(row: AttachmentRow): Promise<Buffer | undefined> {
    if (!cache || row.size > media.cache.maxFileBytes) return undefined;
    const hit = cache.get(row.name);
    if (hit?.data) return hit.data;
    const chunks: Buffer[] = [];
    for await (const chunk of await bodyOf(row)) chunks.push(chunk as Buffer);
    const data = Buffer.concat(chunks);
    const headers = row.legacyPath
      ? undefined
      : { ...fileHeaders(row, IMMUTABLE), "Content-Length": String(data.length) };
    cache.set(row.name, { row, data, ...(headers ? { headers } : {}) });
    return data;
  }

  function setHeaders(res: Response, row: AttachmentRow, cacheControl: string) {
    for (const [name, value] of Object.entries(fileHeaders(row, cacheControl))) res.setHeader(name, value);
  }

  /** Removes the file's headers from an answer that turned out not to be the file. */
  function clearHeaders(res: Response) {
    for (const h of res.getHeaderNames()) if (h !== "x-request-id") res.removeHeader(h);
  }

  /** A Range header counts only when If-Range (if any) still names this content. */
  function rangeApplies(req: Request, res: Response): boolean {
    const ifRange = req.get("If-Range");
    if (!ifRange) return true;
    if (ifRange.startsWith('"') || ifRange.startsWith("W/")) return ifRange === res.getHeader("ETag");
    const since = Date.parse(ifRange);
    const modified = Date.parse(String(res.getHeader("Last-Modified")));
    return !Number.isNaN(since) && modified <= since;
  }

  /** Hands the file to nginx when it is configured for this row's kind of file; answers whether it did. */
  async function handedToNginx(res: Response, row: AttachmentRow): Promise<boolean> {
    if (!row.legacyPath) {
      if (!accel) return false;
      // nginx answers Range and HEAD itself from the file; our headers above ride along
      res.setHeader("X-Accel-Redirect", `${accel}${relativePathOf(row.name)}`);
      res.end();
      return true;
    }
    if (!media.legacyAccelRedirect) return false;
    // only a file still as imported is handed over: nginx would send whatever bytes are there now
    await (await legacy.open(row)).close();
    res.setHeader("X-Accel-Redirect", `${media.legacyAccelRedirect}${row.legacyPath}`);
    res.end();
    return true;
  }

  /**
   * The answer for a row whose bytes are gone (deleted a moment ago by another process, or a legacy file
   * changed since its import): no such attachment, and the row is looked up again next time (a new import
   * may have recorded the new content by then).
   */
  function gone(res: Response, row: AttachmentRow): never {
    cache?.delete(row.name);
    clearHeaders(res);
    res.status(200);
    throw errors.noAttachment();
  }

  async function send(req: Request, res: Response, row: AttachmentRow, cacheControl = IMMUTABLE) {
    setHeaders(res, row, row.legacyPath && cacheControl === IMMUTABLE ? LEGACY_CACHE : cacheControl);
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    try {
      if (await handedToNginx(res, row)) return;
    } catch (err) {
      if (err instanceof MissingObjectError) gone(res, row);
      throw err;
    }

    let start = 0;
    let end = row.size - 1;
    const ranges =
      req.get("Range") && rangeApplies(req, res) ? req.range(row.size, { combine: true }) : undefined;
    if (ranges === -1) {
      // an answer about this request, not the file: without the file's year-long `public` caching a shared
      // cache would keep this error for the URL
      clearHeaders(res);
      throw errors.rangeNotSatisfiable(row.size);
    }
    // a malformed header (-2), another unit, or several ranges: the whole file, as `send` does
    const single =
      Array.isArray(ranges) && ranges.type === "bytes" && ranges.length === 1 ? ranges[0] : undefined;
    if (single) {
      start = single.start;
      end = single.end;
      res.status(206).setHeader("Content-Range", `bytes ${start}-${end}/${row.size}`);
    }
    const length = row.size === 0 ? 0 : end - start + 1;
    res.setHeader("Content-Length", String(length));
    if (req.method === "HEAD" || length === 0) {
      // an imported legacy file is looked at for a HEAD too: gone or changed since its import, it answers 404
      // as a GET would (no root configured, a file replaced on the NFS)
      if (row.legacyPath) {
        try {
          await (await legacy.open(row)).close();
        } catch (err) {
          if (err instanceof MissingObjectError) gone(res, row);
          throw err;
        }
      }
      res.end();
      return;
    }

    let small: Buffer | undefined;
    let body: Readable | undefined;
    try {
      small = await smallBody(row);
      if (!small) body = await bodyOf(row, single ? { start, end } : undefined);
    } catch (err) {
      if (!(err instanceof MissingObjectError)) throw err;
      gone(res, row);
    }
    if (small) {
      res.end(single ? small.subarray(start, end + 1) : small);
      return;
    }
    try {
      await pipeline(body as Readable, res);
    } catch {
      // the client went away, or the backend failed after the headers: the connection is cut either way
      res.destroy();
    }
  }

  return {
    lookup,
    send,
    hot(name) {
      const hit = cache?.get(name);
      if (!hit || hit.row.legacyPath) return undefined;
      if (accel) {
        // nginx sends the bytes: a known row is enough, answered as `handedToNginx` answers it
        hit.headers ??= {
          ...fileHeaders(hit.row, IMMUTABLE),
          "X-Accel-Redirect": `${accel}${relativePathOf(hit.row.name)}`,
          // what node:http sends for `res.end()` with nothing written
          "Content-Length": "0",
        };
        return { row: hit.row, data: NOTHING, headers: hit.headers };
      }
      // the full path sends a cached file from `smallBody` with exactly these headers
      return hit.data && hit.headers ? { row: hit.row, data: hit.data, headers: hit.headers } : undefined;
    },
    forget(names) {
      for (const n of names) cache?.delete(n);
    },
  };
}
