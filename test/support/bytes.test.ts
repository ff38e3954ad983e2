import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEEP_EQUALITY_LIMIT, expectSameBytes, sha256 } from "./bytes.ts";

describe("comparing large binary data", () => {
  const big = randomBytes(5 * 1024 * 1024 + 7);

  it("passes the same bytes, in any view, in a moment", () => {
    const copy = Buffer.from(big);
    const view = new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
    const started = performance.now();
    expectSameBytes(view, big, "copy");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("says where the bytes differ, with both lengths and hashes, never the bytes", () => {
    const changed = Buffer.from(big);
    changed.writeUInt8(changed.readUInt8(3_000_000) ^ 0xff, 3_000_000);
    expect(() => expectSameBytes(changed, big, "download")).toThrow(
      `download: ${big.length} bytes (sha256 ${sha256(changed)}) where ${big.length} were expected ` +
        `(sha256 ${sha256(big)}); first difference at byte 3000000`,
    );
    expect(() => expectSameBytes(big.subarray(0, 10), big, "head")).toThrow(
      /head: 10 bytes .* where 5242887 were expected .*; identical for the first 10 bytes$/,
    );
  });

  it("refuses deep equality on large buffers and arrays, naming the way to compare them", () => {
    const copy = Buffer.from(big);
    expect(() => expect(copy).toEqual(big)).toThrow(/deep equality on 5242887 bytes .*expectSameBytes/);
    expect(() => expect({ body: copy }).toStrictEqual({ body: big })).toThrow(/refused/);
    const many = Array.from({ length: DEEP_EQUALITY_LIMIT + 1 }, (_, i) => i);
    expect(() => expect(many).toEqual([...many])).toThrow(/deep equality on 65537 bytes or elements/);
  });

  it("leaves small buffers to deep equality, with its usual diff", () => {
    const small = randomBytes(DEEP_EQUALITY_LIMIT);
    expect(Buffer.from(small)).toEqual(small);
    expect(() => expect(Buffer.from("abc")).toEqual(Buffer.from("abd"))).toThrow(/expected/);
  });
});
