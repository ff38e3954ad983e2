import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "#common/logger.ts";
import type { Downloads } from "./downloads.ts";
import type { AttachmentKind } from "./store.ts";

/**
 * The lean path of downloads (docs/attachments.md "Memory cache"): a plain node:http handler in front of the
 * Express app, as the auth contract is (services/auth/src/contract/routes.ts), for the request apps make most:
 * a GET or HEAD of a stored name whose bytes are already in this process's memory (a thumbnail, an avatar).
 * A stored name is immutable, so once its row and bytes are cached nothing else is looked up: no database
 * query, no storage read, no Express routing or request logger. It answers exactly what the full path answers
 * for that request (downloads.ts builds both from the same headers); anything else (a query such as
 * `?size=`, a Range or If-Range, If-Modified-Since without If-None-Match, a name not cached yet, an imported
 * legacy name, a trusted proxy that did not say who its client is) goes to Express. With `media.accelRedirect`
 * a known row is enough: the answer is the headers and `X-Accel-Redirect`, and nginx sends the bytes.
 *
 * Answers are counted in `http_request_duration_seconds` under the same route label as the full path, and
 * logged at debug level only: a download from memory costs less than its log line would.
 */

const PREFIX = "/api/v1/attachments/";
/** `<kind folder>/<stored name>`: a stored name is a key (keys.ts) with its extension. */
const PATH = /^(pictures|avatars|videos)\/([\w-]+\.[a-z0-9]+)$/;
const NO_CACHE = /(?:^|,)\s*no-cache\s*(?:,|$)/i;
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const KINDS: Record<string, AttachmentKind> = { pictures: "picture", avatars: "avatar", videos: "video" };

export interface LeanDownloadsDeps {
  downloads: Pick<Downloads, "hot">;
  log: Logger;
  /** Express's `trust proxy fn`: a trusted proxy must name its client (app.ts `requireForwardedFor`). */
  trusted: (address: string, hop: number) => boolean;
  observe?: (method: string, route: string, status: number, seconds: number) => void;
}

/** An If-None-Match list naming `etag` (or `*`): weak comparison, as `fresh` does for GET and HEAD. */
function matches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === "*") return true;
  for (const tag of ifNoneMatch.split(",")) {
    const t = tag.trim();
    if ((t.startsWith("W/") ? t.slice(2) : t) === etag) return true;
  }
  return false;
}

/** Returns a handler that answers a hot download and returns true, or returns false (Express answers). */
export function leanDownloads(
  deps: LeanDownloadsDeps,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const debug = deps.log.isLevelEnabled("debug");
  return (req, res) => {
    const url = req.url;
    if (url === undefined || !url.startsWith(PREFIX)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const m = PATH.exec(url.slice(PREFIX.length));
    if (!m) return false;
    const h = req.headers;
    if (h.range !== undefined || h["if-range"] !== undefined) return false;
    if (h["if-modified-since"] !== undefined && h["if-none-match"] === undefined) return false;
    // `Cache-Control: no-cache` asks for the bytes whatever the validators say (`fresh`)
    if (h["cache-control"] !== undefined && NO_CACHE.test(h["cache-control"])) return false;
    const address = req.socket.remoteAddress;
    if (address === undefined || (deps.trusted(address, 0) && h["x-forwarded-for"] === undefined))
      return false;
    const file = deps.downloads.hot(m[2] as string);
    if (!file || file.row.kind !== KINDS[m[1] as string]) return false;

    const start = deps.observe ? process.hrtime.bigint() : 0n;
    // as every answer of the app (common/http/app-base.ts): the caller's request id, or a new one
    const given = h["x-request-id"];
    res.setHeader("x-request-id", typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID());
    const notModified =
      h["if-none-match"] !== undefined && matches(h["if-none-match"], file.headers.ETag as string);
    const status = notModified ? 304 : 200;
    if (notModified) {
      // what `res.status(304).end()` sends after the file's headers: no body, so no length, and nothing for
      // nginx to send (downloads.ts answers 304 before it hands a file over)
      const { "Content-Length": _length, "X-Accel-Redirect": _accel, ...headers } = file.headers;
      res.writeHead(status, headers).end();
    } else {
      res.writeHead(status, file.headers);
      if (req.method === "HEAD" || file.data.length === 0) res.end();
      else res.end(file.data);
    }
    const route = `${PREFIX}${m[1]}/:filename`;
    deps.observe?.(req.method, route, status, Number(process.hrtime.bigint() - start) / 1e9);
    if (debug) deps.log.debug({ method: req.method, route, status }, "download from memory");
    return true;
  };
}
