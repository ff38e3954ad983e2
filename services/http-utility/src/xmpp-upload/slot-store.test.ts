import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { complete, findUpload, type Reservation, release, reserve } from "./slot-store.ts";

/** The reservations of XEP-0363 slots against a real PostgreSQL: one per slot, the quotas exact under load. */

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

let n = 0;
const reservation = (domain: string, o: Partial<Reservation> = {}): Reservation => ({
  name: `slot${String(n++).padStart(20, "0")}.bin`,
  owner: { domain, node: "" },
  filename: "f.bin",
  contentType: "application/octet-stream",
  size: 1000,
  ...o,
});
const NO_QUOTA = { domainBytes: 0, userBytes: 0 };
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "reserved",
    (err: { code?: string }) => err.code,
  );

describe("reserve", () => {
  it("without a quota: reserves a slot once, a second reservation is 409, a released slot is free again", async () => {
    const r = reservation("free.test");
    await reserve(db.pool, r, NO_QUOTA);
    expect(await codeOf(reserve(db.pool, r, NO_QUOTA))).toBe("slot_used");
    expect(await findUpload(db.pool, r.name)).toBeUndefined(); // reserved, not complete
    await release(db.pool, r.name);
    await reserve(db.pool, r, NO_QUOTA);
    await complete(db.pool, r.name, "ab".repeat(32));
    expect(await findUpload(db.pool, r.name)).toMatchObject({ name: r.name, size: 1000 });
    await release(db.pool, r.name); // a completed upload is not given back
    expect(await codeOf(reserve(db.pool, r, NO_QUOTA))).toBe("slot_used");
  });

  it("takes one of many reservations of one slot at once, with and without a quota", async () => {
    for (const quotas of [NO_QUOTA, { domainBytes: 1_000_000, userBytes: 0 }]) {
      const r = reservation("race.test");
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () => codeOf(reserve(db.pool, r, quotas))),
      );
      expect(outcomes.sort()).toEqual(["reserved", ...Array<string>(7).fill("slot_used")]);
    }
  });

  it("keeps the domain's quota exactly under concurrency", async () => {
    const quotas = { domainBytes: 5500, userBytes: 0 };
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, () => codeOf(reserve(db.pool, reservation("quota.test"), quotas))),
    );
    expect(outcomes.filter((o) => o === "reserved")).toHaveLength(5);
    expect(outcomes.filter((o) => o === "quota_exceeded")).toHaveLength(7);
  });

  it("counts a named uploader's quota, not the domain's anonymous uploads'", async () => {
    const quotas = { domainBytes: 0, userBytes: 2500 };
    const alice = { domain: "user.test", node: "alice" };
    await reserve(db.pool, reservation("user.test"), quotas); // anonymous: no user quota
    await reserve(db.pool, reservation("user.test", { owner: alice }), quotas);
    await reserve(db.pool, reservation("user.test", { owner: alice }), quotas);
    expect(await codeOf(reserve(db.pool, reservation("user.test", { owner: alice }), quotas))).toBe(
      "quota_exceeded",
    );
    expect(await codeOf(reserve(db.pool, reservation("user.test"), quotas))).toBe("reserved");
  });

  it("answers 409 for a used slot before looking at the quota", async () => {
    const r = reservation("full.test", { size: 900 });
    const quotas = { domainBytes: 1000, userBytes: 0 };
    await reserve(db.pool, r, quotas);
    expect(await codeOf(reserve(db.pool, r, quotas))).toBe("slot_used");
  });
});
