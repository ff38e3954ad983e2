import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Checks the presigned PUT URLs of MongooseIM's `mod_http_upload` (AWS Signature Version 4, query-string
 * authentication: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html) as MongooseIM
 * makes them (its `mod_http_upload_s3.erl` and `aws_signature_v4.erl`): signed headers `host`,
 * `content-length` and, when the slot request named one, `content-type` (and `x-amz-acl` with `add_acl`),
 * payload `UNSIGNED-PAYLOAD`; MongooseIM 2.1.0 put `x-amz-acl=public-read` in the signed query instead (its
 * `add_acl` default). Every query parameter but the signature is part of the canonical request, as in S3. MongooseIM's canonical URI encodes the URL's path a second time (its `%` become
 * `%25`) with upper-case hexadecimal and no zero padding below 0x10; S3's own rule encodes the decoded path
 * once. A signature is accepted in either form: both need the secret. Plain functions, no HTTP.
 */

export interface PresignedQuery {
  accessKeyId: string;
  /** `YYYYMMDD` of the credential's scope */
  scopeDate: string;
  region: string;
  service: string;
  /** X-Amz-Date, `YYYYMMDDTHHMMSSZ` */
  amzDate: string;
  signedAt: Date;
  expiresSeconds: number;
  signedHeaders: string[];
  /** hex, 64 characters */
  signature: string;
  /** the other query parameters, decoded, in the order sent (X-Amz-Signature left out) */
  params: Array<[string, string]>;
}

export type Refusal = { ok: false; reason: string };

/** AWS's UriEncode: unreserved characters as they are, every other UTF-8 byte `%XX` (upper case). */
export function awsUriEncode(text: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.~-]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** MongooseIM's `uri_encode/2` (aws_signature_v4.erl): `integer_to_list(C, 16)`, so no zero padding. */
export function mongooseUriEncode(text: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.~-]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += `%${byte.toString(16).toUpperCase()}`;
  }
  return out;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The query of a presigned URL, raw as sent (`a=b&c=d`), read; a refusal says what is missing or malformed. */
export function readPresignedQuery(rawQuery: string): PresignedQuery | Refusal {
  const all: Array<[string, string]> = [];
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const [k, v] = eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
    try {
      all.push([decodeURIComponent(k), decodeURIComponent(v)]);
    } catch {
      return { ok: false, reason: "the query is not valid percent-encoding" };
    }
  }
  const get = (name: string) => {
    const found = all.filter(([k]) => k === name);
    return found.length === 1 ? found[0]?.[1] : undefined;
  };
  if (get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") {
    return { ok: false, reason: "X-Amz-Algorithm must be AWS4-HMAC-SHA256 (a presigned URL of MongooseIM)" };
  }
  const credential = get("X-Amz-Credential")?.split("/") ?? [];
  const [accessKeyId, scopeDate, region, service, terminator] = credential;
  if (
    credential.length !== 5 ||
    !accessKeyId ||
    !scopeDate ||
    !region ||
    !service ||
    terminator !== "aws4_request"
  ) {
    return { ok: false, reason: "X-Amz-Credential is not <key>/<date>/<region>/s3/aws4_request" };
  }
  const amzDate = get("X-Amz-Date") ?? "";
  const d = AMZ_DATE.exec(amzDate);
  if (!d) return { ok: false, reason: "X-Amz-Date is not YYYYMMDDTHHMMSSZ" };
  const [y, mo, day, h, mi, sec] = d.slice(1).map(Number) as [number, number, number, number, number, number];
  const signedAt = new Date(Date.UTC(y, mo - 1, day, h, mi, sec));
  const expires = get("X-Amz-Expires") ?? "";
  if (!/^\d{1,7}$/.test(expires)) return { ok: false, reason: "X-Amz-Expires is not a number of seconds" };
  const signedHeaders = (get("X-Amz-SignedHeaders") ?? "").split(";");
  if (signedHeaders.some((h) => !/^[a-z0-9-]+$/.test(h))) {
    return { ok: false, reason: "X-Amz-SignedHeaders is not a ;-separated list of lower-case header names" };
  }
  // lower case from MongooseIM 6 (binary:encode_hex/2), the base16 library's from 2.1.0: either is read
  const signature = (get("X-Amz-Signature") ?? "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: "X-Amz-Signature is not 64 hex digits" };
  return {
    accessKeyId,
    scopeDate,
    region,
    service,
    amzDate,
    signedAt,
    expiresSeconds: Number(expires),
    signedHeaders,
    signature,
    params: all.filter(([k]) => k !== "X-Amz-Signature"),
  };
}

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data, "utf8").digest();
const sha256hex = (data: string) => createHash("sha256").update(data, "utf8").digest("hex");

/** A header's value as SigV4 canonicalises it: trimmed, inner runs of spaces made one. */
const canonicalValue = (value: string | string[] | undefined) =>
  (Array.isArray(value) ? value.join(",") : (value ?? "")).trim().replace(/\s+/g, " ");

export interface SignedRequest {
  method: string;
  /** the path as sent, still percent-encoded */
  rawPath: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The signing key of a day, region and service (four chained HMACs): the same for every URL signed that day,
 * so kept (a few entries: today's, yesterday's a while after midnight, per configured secret).
 */
const signingKeys = new Map<string, Buffer>();
function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${secret}\0${date}\0${region}\0${service}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
    if (signingKeys.size >= 64) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

/**
 * The hex signatures `q` may carry for `req` under `secret`, lazily: MongooseIM's form first, then S3's (only
 * asked for when the first did not match).
 */
export function* expectedSignatures(
  q: PresignedQuery,
  req: SignedRequest,
  secret: string,
): Generator<string> {
  const query = q.params
    .map(([k, v]) => [awsUriEncode(k, false), awsUriEncode(v, false)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const names = [...q.signedHeaders].sort();
  const headers = names.map((h) => `${h}:${canonicalValue(req.headers[h])}\n`).join("");
  const scope = `${q.scopeDate}/${q.region}/${q.service}/aws4_request`;
  const key = signingKey(secret, q.scopeDate, q.region, q.service);
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(req.rawPath);
  } catch {
    decoded = undefined;
  }
  const uris = (function* () {
    yield mongooseUriEncode(req.rawPath, true);
    if (decoded !== undefined) yield awsUriEncode(decoded, true);
  })();
  for (const uri of uris) {
    const canonical = [req.method, uri, query, headers, names.join(";"), "UNSIGNED-PAYLOAD"].join("\n");
    const toSign = ["AWS4-HMAC-SHA256", q.amzDate, scope, sha256hex(canonical)].join("\n");
    yield hmac(key, toSign).toString("hex");
  }
}

/** Whether `given` (hex) is one of `expected`, compared in constant time. */
export function signatureMatches(given: string, expected: Iterable<string>): boolean {
  const a = Buffer.from(given, "hex");
  for (const e of expected) {
    const b = Buffer.from(e, "hex");
    if (a.length === b.length && timingSafeEqual(a, b)) return true;
  }
  return false;
}
