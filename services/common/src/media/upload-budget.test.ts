import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { HttpError } from "../errors.ts";
import { createUploadBudget } from "./upload-budget.ts";

/** The daily upload budget on the real rate-limit table: what is charged, refused, refunded. */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const MiB = 1024 * 1024;
const owner = (node: string) => ({ node, domain: "oyo.test" });

describe("upload budget", () => {
  it("charges uploads until the budget is spent; the refusal says the budget and when it resets, and costs nothing", async () => {
    const budget = createUploadBudget(db.pool, 10 * MiB);
    const alice = owner("306900000101");
    expect((await budget.left(alice)).bytes).toBe(10 * MiB);
    await budget.charge(alice, 6 * MiB);
    const err = await budget.charge(alice, 6 * MiB).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    const refusal = err as HttpError;
    expect({ status: refusal.status, code: refusal.code }).toEqual({
      status: 429,
      code: "upload_budget_exceeded",
    });
    expect(refusal.message).toContain(`daily upload budget of ${10 * MiB} bytes`);
    expect(refusal.message).toMatch(/resets at \d{4}-\d\d-\d\dT[\d:.]+Z/);
    expect(Number(refusal.headers["retry-after"])).toBeGreaterThan(86_000);
    // the refused 6 MiB were not counted: 4 MiB still fit
    const left = await budget.left(alice);
    expect(left.bytes).toBe(4 * MiB);
    expect(left.resetsAt?.getTime()).toBeGreaterThan(Date.now());
    await budget.charge(alice, 4 * MiB);
    expect((await budget.left(alice)).bytes).toBe(0);
  });

  it("gives back what a refused upload was charged, and keeps owners apart", async () => {
    const budget = createUploadBudget(db.pool, 10 * MiB);
    const bob = owner("306900000102");
    await budget.charge(bob, 8 * MiB);
    await budget.refund(bob, 8 * MiB);
    expect((await budget.left(bob)).bytes).toBe(10 * MiB);
    expect((await budget.left(owner("306900000103"))).bytes).toBe(10 * MiB);
  });

  it("is no budget at 0", async () => {
    const budget = createUploadBudget(db.pool, 0);
    await budget.charge(owner("306900000104"), 100 * 1024 * MiB);
    expect((await budget.left(owner("306900000104"))).bytes).toBe(Number.POSITIVE_INFINITY);
  });
});
