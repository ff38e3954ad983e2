import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Storage } from "#common/media/storage.ts";
import { createFreeSpaceCheck } from "./free-space.ts";

const MiB = 1024 * 1024;
const RESERVE = 100 * MiB;

/** A backend whose free space the test sets, counting how often it is asked (each ask is a statfs). */
function disk(free: number) {
  const d = {
    free,
    asked: 0,
    fail: false,
    storage: {
      async freeBytes() {
        d.asked++;
        await new Promise((r) => setTimeout(r, 5));
        if (d.fail) throw new Error("EIO: statfs failed");
        return d.free;
      },
    } as unknown as Storage,
  };
  return d;
}

const log = pino({ level: "silent" });

describe("the free-space check", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("counts what it let through against one reading, and refuses what would eat into the reserve", async () => {
    const d = disk(RESERVE + 3 * MiB);
    const check = createFreeSpaceCheck(d.storage, RESERVE, log);
    await check(MiB);
    await check(MiB);
    await check(MiB);
    await expect(check(MiB)).rejects.toMatchObject({ status: 507, code: "insufficient_storage" });
    expect(d.asked).toBe(1);
  });

  it("asks the disk once for uploads arriving together", async () => {
    const d = disk(RESERVE + 64 * MiB);
    const check = createFreeSpaceCheck(d.storage, RESERVE, log);
    await Promise.all(Array.from({ length: 16 }, () => check(MiB)));
    expect(d.asked).toBe(1);
    // and the 16 of them are counted: 48 MiB more fit, 49 do not
    await check(48 * MiB);
    await expect(check(MiB)).rejects.toMatchObject({ code: "insufficient_storage" });
  });

  it("reads the disk again after a second: space freed meanwhile is seen, and so is space used by others", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const d = disk(RESERVE + MiB);
    const check = createFreeSpaceCheck(d.storage, RESERVE, log);
    await check(MiB);
    await expect(check(MiB)).rejects.toMatchObject({ code: "insufficient_storage" });
    d.free = RESERVE + 10 * MiB; // media gc ran
    vi.setSystemTime(Date.now() + 1000);
    await check(5 * MiB);
    expect(d.asked).toBe(2);
    d.free = RESERVE; // another writer filled the disk
    vi.setSystemTime(Date.now() + 1000);
    await expect(check(1)).rejects.toMatchObject({ code: "insufficient_storage" });
    expect(d.asked).toBe(3);
  });

  it("fails an upload when the disk cannot be read, and reads it again for the next one", async () => {
    const d = disk(RESERVE + 10 * MiB);
    d.fail = true;
    const check = createFreeSpaceCheck(d.storage, RESERVE, log);
    await expect(check(MiB)).rejects.toThrow("statfs failed");
    d.fail = false;
    await check(MiB);
    expect(d.asked).toBe(2);
  });

  it("never asks a disk when no reserve is set", async () => {
    const d = disk(0);
    await createFreeSpaceCheck(d.storage, 0, log)(10 * MiB);
    expect(d.asked).toBe(0);
  });
});
