import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StreamHash } from "./stream-hash.ts";

const reference = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Feeds `data` in chunks of varying sizes, waiting whenever the hash says it is behind. */
async function hashInChunks(data: Buffer, sizes: number[]): Promise<string> {
  const hash = new StreamHash();
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    await hash.update(data.subarray(offset, offset + n));
    offset += n;
  }
  return hash.digest();
}

describe("StreamHash (SHA-256 on a worker thread)", () => {
  it.each([
    ["nothing", 0],
    ["one byte", 1],
    ["exactly one batch", 1024 * 1024],
    ["one batch and a byte", 1024 * 1024 + 1],
    ["ten MiB and change", 10 * 1024 * 1024 + 12_345],
  ])("gives the digest node:crypto gives for %s", async (_what, size) => {
    const data = randomBytes(size);
    expect(await hashInChunks(data, [65_536, 1, 300_000, 4_096])).toBe(reference(data));
  });

  it("keeps hashes running at once apart", async () => {
    const inputs = [randomBytes(3_000_000), randomBytes(2_500_001), randomBytes(17)];
    const digests = await Promise.all(inputs.map((d, i) => hashInChunks(d, [65_536 + i * 1000])));
    expect(digests).toEqual(inputs.map(reference));
  });

  it("asks the caller to wait while every slot is with the worker, and never loses bytes meanwhile", async () => {
    const hash = new StreamHash();
    const data = randomBytes(20 * 1024 * 1024);
    let waits = 0;
    for (let offset = 0; offset < data.length; offset += 1024 * 1024) {
      const behind = hash.update(data.subarray(offset, offset + 1024 * 1024));
      if (behind) {
        waits++;
        await behind;
      }
    }
    expect(await hash.digest()).toBe(reference(data));
    expect(waits).toBeGreaterThan(0);
  });

  it("forgets an aborted hash without disturbing the others", async () => {
    const dropped = new StreamHash();
    await dropped.update(randomBytes(2_000_000));
    dropped.abort();
    const data = randomBytes(1_500_000);
    expect(await hashInChunks(data, [100_000])).toBe(reference(data));
  });
});
