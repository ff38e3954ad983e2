import { createHash } from "node:crypto";
import { expect } from "vitest";

/**
 * The most bytes (or array elements) a test may deep-compare with `toEqual`/`toStrictEqual`. Deep equality
 * walks a buffer element by element: a 5 MiB Buffer took 45 s on a slow CI machine, and a failing one prints
 * a diff of millions of lines. Larger data is compared with `expectSameBytes` (`large-equality-guard.ts`
 * refuses the rest).
 */
export const DEEP_EQUALITY_LIMIT = 64 * 1024;

/**
 * Asserts that `actual` holds exactly the bytes of `expected`, in one `Buffer.equals`. A failure says what
 * differed: both lengths, both SHA-256s and the first differing offset, never the bytes themselves.
 */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const a = asBuffer(actual);
  const b = asBuffer(expected);
  if (a.equals(b)) return;
  const shared = Math.min(a.length, b.length);
  let at = 0;
  while (at < shared && a[at] === b[at]) at++;
  expect.fail(
    `${what}: ${a.length} bytes (sha256 ${sha256(a)}) where ${b.length} were expected (sha256 ${sha256(b)}); ` +
      (at < shared ? `first difference at byte ${at}` : `identical for the first ${shared} bytes`),
  );
}

/** The hex SHA-256 of some bytes or text: a short, comparable stand-in for large data in assertions. */
export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
