import { createHmac, timingSafeEqual } from "node:crypto";
import type { ExternalProtocol } from "#common/config/xmpp-upload-schema.ts";

/**
 * The external-upload protocols (plain functions, no HTTP):
 * - `v` and `v2`: prosody-modules' mod_http_upload_external README, "Implementation": an HMAC-SHA256 in the
 *   query of `<path> <Content-Length>` (v) or `<path>\0<Content-Length>\0<Content-Type>` (v2), hex, where
 *   `<path>` is the URL's path below the service's base, decoded. ejabberd's `mod_http_upload` with
 *   `external_secret` makes `v` (its `make_query_string/3`: `<user>/<random>/<file> <size>`).
 * - `token`: Prosody's own mod_http_file_share with `http_file_share_base_url` (https://prosody.im/doc/external_upload):
 *   `Authorization: Bearer <JWT>`, HS256 (RFC 7519), whose claims name the slot, the file's name, size and type,
 *   the uploader (`sub`) and the token's expiry (`exp`).
 * A request carrying several uses only the highest one the domain accepts (token, then v2, then v), as the
 * README asks.
 */

export interface ExternalRequest {
  /** the path below `<base>/<domain>/`, decoded: `<random>/<filename>` or `<user>/<random>/<filename>` */
  path: string;
  /** its segments */
  segments: string[];
  query: Record<string, unknown>;
  authorization: string | undefined;
  contentLength: number;
  contentType: string | undefined;
  now: Date;
}

export type ExternalVerdict =
  | {
      ok: true;
      protocol: ExternalProtocol;
      /** the type the file is served with: the token's claim, else the PUT's Content-Type */
      contentType: string | undefined;
      /** the uploader's bare JID (token only) */
      uploader?: string | undefined;
    }
  | { ok: false; problem: "forbidden" | "expired"; reason: string }
  | { ok: false; problem: "size"; signed: number };

const hmacHex = (secret: string, data: string) => createHmac("sha256", secret).update(data, "utf8").digest();

function sameHex(given: unknown, expected: Buffer): boolean {
  if (typeof given !== "string" || !/^[0-9a-fA-F]{64}$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, "hex"), expected);
}

const forbidden = (reason: string): ExternalVerdict => ({ ok: false, problem: "forbidden", reason });

/** Checks a PUT under one of `protocols` with `secret`. */
export function verifyExternal(
  req: ExternalRequest,
  secret: string,
  protocols: readonly ExternalProtocol[],
): ExternalVerdict {
  const bearer = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(req.authorization ?? "")?.[1];
  if (bearer !== undefined && protocols.includes("token")) return verifyToken(req, secret, bearer);
  if (req.query.v2 !== undefined && protocols.includes("v2")) {
    const type = req.contentType ?? "application/octet-stream";
    const expected = hmacHex(secret, `${req.path}\0${req.contentLength}\0${type}`);
    if (!sameHex(req.query.v2, expected)) {
      return forbidden("the v2 signature does not match this path, Content-Length and Content-Type");
    }
    return { ok: true, protocol: "v2", contentType: req.contentType };
  }
  if (req.query.v !== undefined && protocols.includes("v")) {
    const expected = hmacHex(secret, `${req.path} ${req.contentLength}`);
    if (!sameHex(req.query.v, expected)) {
      return forbidden("the v signature does not match this path and Content-Length");
    }
    return { ok: true, protocol: "v", contentType: req.contentType };
  }
  return forbidden(`no signature of an accepted protocol (${protocols.join(", ")})`);
}

interface Claims {
  exp?: unknown;
  slot?: unknown;
  filename?: unknown;
  filesize?: unknown;
  filetype?: unknown;
  sub?: unknown;
}

function decodePart(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

function verifyToken(req: ExternalRequest, secret: string, jwt: string): ExternalVerdict {
  const parts = jwt.split(".");
  if (parts.length !== 3) return forbidden("the token is not a JWT");
  const [header, payload, signature] = parts as [string, string, string];
  const head = decodePart(header) as { alg?: unknown } | undefined;
  // only HS256, as Prosody signs: never `none`, never an algorithm the token itself picks
  if (head?.alg !== "HS256") return forbidden("the token is not signed with HS256");
  const expected = createHmac("sha256", secret).update(`${header}.${payload}`).digest();
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return forbidden("the token's signature does not match");
  }
  const claims = decodePart(payload) as Claims | undefined;
  if (!claims || typeof claims !== "object") return forbidden("the token's claims are not JSON");
  if (typeof claims.exp !== "number") return forbidden("the token has no exp");
  if (claims.exp * 1000 < req.now.getTime()) {
    return {
      ok: false,
      problem: "expired",
      reason: `the token expired at ${new Date(claims.exp * 1000).toISOString()}`,
    };
  }
  if (req.segments.length !== 2 || claims.slot !== req.segments[0]) {
    return forbidden("the token is for another slot");
  }
  if (typeof claims.filename === "string" && claims.filename !== req.segments[1]) {
    return forbidden("the token is for another file name");
  }
  if (typeof claims.filesize !== "number") return forbidden("the token has no filesize");
  if (claims.filesize !== req.contentLength) return { ok: false, problem: "size", signed: claims.filesize };
  return {
    ok: true,
    protocol: "token",
    contentType: typeof claims.filetype === "string" ? claims.filetype : req.contentType,
    uploader: typeof claims.sub === "string" ? claims.sub : undefined,
  };
}
