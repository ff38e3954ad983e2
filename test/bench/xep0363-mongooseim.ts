import { createHash, createHmac } from "node:crypto";

/**
 * MongooseIM's `mod_http_upload` slot, made here exactly as MongooseIM makes it: a line-by-line port of its
 * `mod_http_upload_s3:create_slot/6` and `aws_signature_v4:sign/8` (github.com/esl/MongooseIM,
 * src/http_upload/), quirks included: the filename escaped with upper-case hexadecimal and no zero padding, the
 * canonical URI escaping that escaped path once more, the signed headers `host` (without the scheme's default
 * port), `content-length`, `content-type` when the slot request named one and `x-amz-acl` with `add_acl`.
 * Written independently of services/http-utility/src/xmpp-upload/sigv4.ts, which it checks.
 */

export interface MongooseImOptions {
  bucketUrl: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `expiration_time`, seconds (MongooseIM's default: 60) */
  expirationTime: number;
  addAcl?: boolean;
  /**
   * MongooseIM 2.1.0 (apps/ejabberd/src/http_upload/ at its tag) puts `x-amz-acl=public-read` in the query
   * (add_acl defaults to true there) instead of a signed header; the rest is the same.
   */
  version?: "2.1.0" | "6.x";
}

/** aws_signature_v4:uri_encode/2: `[$% | integer_to_list(C, 16)]`, so `\n` is `%A`. */
function uriEncode(data: string, encodeSlash: boolean): string {
  let out = "";
  for (const c of Buffer.from(data, "utf8")) {
    const ch = String.fromCharCode(c);
    if (/[A-Za-z0-9_\-~.]/.test(ch)) out += ch;
    else if (ch === "/" && !encodeSlash) out += ch;
    else out += `%${c.toString(16).toUpperCase()}`;
  }
  return out;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
const dateIso8601 = (t: Date) => `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}`;
const datetimeIso8601 = (t: Date) =>
  `${dateIso8601(t)}T${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}Z`;
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
/** Erlang's map order for these keys: binaries sorted bytewise (maps:keys/1, maps:to_list/1 of a small map). */
const sorted = (m: Record<string, string>) =>
  Object.entries(m).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

export interface MongooseImSlot {
  put: string;
  get: string;
  /** what the client must send with the PUT (XEP-0363 clients send the slot request's type and the size) */
  headers: Record<string, string>;
}

export function createSlot(
  o: MongooseImOptions,
  slot: { utc: Date; token: string; filename: string; contentType?: string | undefined; size: number },
): MongooseImSlot {
  const url = new URL(o.bucketUrl);
  const scheme = url.protocol.replace(":", "");
  const defaultPort = scheme === "http" ? 80 : scheme === "https" ? 443 : undefined;
  const port = url.port === "" ? (defaultPort ?? 80) : Number(url.port);
  const hostWithPort = port === defaultPort ? url.hostname : `${url.hostname}:${port}`;
  const keyless = url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname;
  const path = `${keyless}/${slot.token}/${uriEncode(slot.filename, true)}`;

  const headers: Record<string, string> = { host: hostWithPort, "content-length": String(slot.size) };
  if (slot.contentType !== undefined) headers["content-type"] = slot.contentType;
  const legacy = o.version === "2.1.0";
  if (o.addAcl && !legacy) headers["x-amz-acl"] = "public-read";

  const scope = `${dateIso8601(slot.utc)}/${o.region}/s3/aws4_request`;
  const queries: Record<string, string> = {
    ...(o.addAcl && legacy ? { "x-amz-acl": "public-read" } : {}),
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": `${o.accessKeyId}/${scope}`,
    "X-Amz-Date": datetimeIso8601(slot.utc),
    "X-Amz-Expires": String(o.expirationTime),
    "X-Amz-SignedHeaders": sorted(headers)
      .map(([k]) => k)
      .join(";"),
  };

  const canonicalQuery = sorted(queries)
    .map(([k, v]) => [uriEncode(k, true), uriEncode(v, true)] as const)
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = sorted(headers)
    .map(([k, v]) => `${k}:${v}\n`)
    .join("");
  const signedHeaders = sorted(headers)
    .map(([k]) => k)
    .join(";");
  const canonicalRequest = [
    "PUT",
    uriEncode(path, false),
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    datetimeIso8601(slot.utc),
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  const dateKey = hmac(`AWS4${o.secretAccessKey}`, dateIso8601(slot.utc));
  const signingKey = hmac(hmac(hmac(dateKey, o.region), "s3"), "aws4_request");
  const signature = hmac(signingKey, stringToSign).toString("hex");

  const all = { ...queries, "X-Amz-Signature": signature };
  const query = sorted(all)
    .map(([k, v]) => `${uriEncode(k, true)}=${uriEncode(v, true)}`)
    .join("&");
  const base = `${scheme}://${hostWithPort}${path}`;
  const sent: Record<string, string> = { "content-length": String(slot.size) };
  if (slot.contentType !== undefined) sent["content-type"] = slot.contentType;
  if (o.addAcl && !legacy) sent["x-amz-acl"] = "public-read";
  return { put: `${base}?${query}`, get: base, headers: sent };
}

/** MongooseIM's token: `binary:encode_hex(crypto:strong_rand_bytes(token_bytes), lowercase)`, 32 bytes. */
export const token = (bytes: Buffer) => bytes.toString("hex");
