import { expect } from "vitest";
import { DEEP_EQUALITY_LIMIT } from "./bytes.ts";

/**
 * Every test file's setup (vitest.config.ts `setupFiles`): `toEqual`, `toStrictEqual` and `toMatchObject`
 * refuse binary data or arrays above DEEP_EQUALITY_LIMIT, with a message that names the way to compare them,
 * instead of walking them element by element for minutes on a slow machine.
 */
expect.addEqualityTesters([
  function refuseLargeDeepEquality(a: unknown, b: unknown): undefined {
    const size = Math.max(bulk(a), bulk(b));
    if (size > DEEP_EQUALITY_LIMIT)
      throw new Error(
        `deep equality on ${size} bytes or elements refused (the limit is ${DEEP_EQUALITY_LIMIT}): compare ` +
          "binary data with expectSameBytes or a SHA-256 from test/support/bytes.ts, and large arrays by " +
          "their length and a few sampled elements",
      );
    return undefined;
  },
]);

function bulk(x: unknown): number {
  if (ArrayBuffer.isView(x) || x instanceof ArrayBuffer || x instanceof SharedArrayBuffer)
    return x.byteLength;
  if (Array.isArray(x)) return x.length;
  return 0;
}
