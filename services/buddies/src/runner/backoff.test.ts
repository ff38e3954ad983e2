import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff.ts";

describe("backoffDelay", () => {
  it("doubles from the first wait up to the cap, jittered within the upper half", () => {
    const low = () => 0;
    const high = () => 1;
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, 1000, 600_000, high))).toEqual([1000, 2000, 4000, 8000]);
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, 1000, 600_000, low))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(20, 1000, 600_000, high)).toBe(600_000);
    expect(backoffDelay(10_000, 1000, 600_000, low)).toBe(300_000);
  });
});
