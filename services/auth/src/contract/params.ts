import { isUtf8 } from "node:buffer";

/**
 * MongooseIM's `user`, `server`, `pass` (docs/auth.md "The contract";
 * https://esl.github.io/MongooseDocs/latest/authentication-methods/http/): a query string (GET) or the
 * same string as a body with no Content-Type (POST). 2.1.0 percent-encodes per RFC 3986 and may send raw
 * UTF-8 bytes; 6.x form-encodes (`+` is a space). Decoding bytes with form rules reads both.
 *
 * The input is the bytes as a latin1 string (one char per byte, as node:http keeps a request line): plain
 * ASCII components, the usual case on every login, are taken as they are without copying bytes around.
 */
const NEEDS_DECODING = /[%+\u0080-\u00ff]/;

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** One component: `+` → space, `%XX` → that byte, any other byte as it is; then UTF-8 (undefined when invalid). */
function decode(s: string): string | undefined {
  if (!NEEDS_DECODING.test(s)) return s;
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const h = c === 0x25 && i + 2 < s.length + 0 ? hex(s.charCodeAt(i + 1)) : -1;
    const l = h >= 0 ? hex(s.charCodeAt(i + 2)) : -1;
    if (c === 0x2b) out[n++] = 0x20;
    else if (l >= 0) {
      out[n++] = h * 16 + l;
      i += 2;
    } else out[n++] = c;
  }
  const bytes = out.subarray(0, n);
  return isUtf8(bytes) ? bytes.toString("utf8") : undefined;
}

/**
 * The parameters of a query or form body, given as bytes or as their latin1 string; undefined when they are
 * not valid UTF-8. The first occurrence of a name wins.
 */
export function parseParams(raw: Uint8Array | string): Map<string, string> | undefined {
  const text =
    typeof raw === "string"
      ? raw
      : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
  const params = new Map<string, string>();
  for (const pair of text.split("&")) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : decode(pair.slice(eq + 1));
    if (key === undefined || value === undefined) return undefined;
    if (!params.has(key)) params.set(key, value);
  }
  return params;
}

/** The query string of a request's URL, as its latin1 bytes (Node keeps each byte of the request line as a char). */
export function rawQuery(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? "" : url.slice(q + 1);
}
