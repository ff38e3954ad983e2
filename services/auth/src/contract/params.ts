/**
 * MongooseIM's `user`, `server`, `pass` (../shared/mongooseim-contract.md §1): a query string (GET) or the
 * same string as a body with no Content-Type (POST). 2.1.0 percent-encodes per RFC 3986 and may send raw
 * UTF-8 bytes; 6.x form-encodes (`+` is a space). Decoding bytes with form rules reads both.
 */
const utf8 = new TextDecoder("utf-8", { fatal: true });

function hex(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  return -1;
}

/** One component: `+` → space, `%XX` → that byte, any other byte as it is; then UTF-8 (throws when invalid). */
function decode(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x2b) out[n++] = 0x20;
    else if (
      b === 0x25 &&
      i + 2 < bytes.length + 0 &&
      hex(bytes[i + 1] ?? -1) >= 0 &&
      hex(bytes[i + 2] ?? -1) >= 0
    ) {
      out[n++] = hex(bytes[i + 1] as number) * 16 + hex(bytes[i + 2] as number);
      i += 2;
    } else out[n++] = b;
  }
  return utf8.decode(out.subarray(0, n));
}

/** The parameters of a query or form body given as bytes; undefined when they are not valid UTF-8. */
export function parseParams(raw: Uint8Array): Map<string, string> | undefined {
  const params = new Map<string, string>();
  let start = 0;
  try {
    for (let i = 0; i <= raw.length; i++) {
      if (i < raw.length && raw[i] !== 0x26) continue;
      const pair = raw.subarray(start, i);
      start = i + 1;
      if (pair.length === 0) continue;
      const eq = pair.indexOf(0x3d);
      const key = decode(eq < 0 ? pair : pair.subarray(0, eq));
      if (!params.has(key)) params.set(key, eq < 0 ? "" : decode(pair.subarray(eq + 1)));
    }
  } catch {
    return undefined;
  }
  return params;
}

/** The raw bytes of a request's query string. Node keeps each byte of the request line as one latin1 char. */
export function queryBytes(url: string): Uint8Array {
  const q = url.indexOf("?");
  return q < 0 ? new Uint8Array() : Buffer.from(url.slice(q + 1), "latin1");
}
