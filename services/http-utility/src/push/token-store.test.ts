import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import type { PushService } from "./senders/sender.ts";
import {
  createBadgeCounter,
  deleteAllTokens,
  deleteToken,
  findToken,
  forgetToken,
  nextBadge,
  type Owner,
  registerToken,
  resetBadge,
  storeToken,
  subscribe,
  tokensOf,
  unsubscribe,
} from "./token-store.ts";

/** The push_tokens and push_channel_subscriptions tables (migrations/1763800000006_push.sql), directly. */

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query("TRUNCATE push_tokens, push_channel_subscriptions");
});

const ALICE: Owner = { domain: "oyo.test", node: "306900000001" };
const BOB: Owner = { domain: "oyo.test", node: "306900000002" };
const ALICE_ELSEWHERE: Owner = { domain: "other.test", node: "306900000001" };
const MAX = 3;

const register = (
  owner: Owner,
  token: string,
  over: { service?: PushService; app?: string; max?: number } = {},
) =>
  registerToken(
    db.pool,
    { ...owner, token, service: over.service ?? "fcm", app: over.app ?? "OyoChat" },
    over.max ?? MAX,
  );

const tokenNames = async (owner: Owner) => (await tokensOf(db.pool, owner)).map((t) => t.token);

async function setBadge(token: string, badge: number) {
  await db.pool.query("UPDATE push_tokens SET badge = $2 WHERE token = $1", [token, badge]);
}

describe("registerToken", () => {
  it("stores a new token with badge 0, then refreshes it idempotently, keeping its badge", async () => {
    expect(await register(ALICE, "tok-a")).toEqual({ outcome: "new", evicted: 0 });
    await setBadge("tok-a", 4);
    expect(await register(ALICE, "tok-a")).toEqual({ outcome: "refreshed", evicted: 0 });
    expect(await tokensOf(db.pool, ALICE)).toEqual([
      { service: "fcm", token: "tok-a", app: "OyoChat", domain: "oyo.test", node: ALICE.node, badge: 4 },
    ]);
  });

  it("moves a token registered by another user to that user, badge back to 0", async () => {
    await register(ALICE, "tok-a", { service: "apns" });
    await setBadge("tok-a", 7);
    expect(await register(BOB, "tok-a", { service: "apns" })).toEqual({
      outcome: "moved",
      from: ALICE,
      evicted: 0,
    });
    expect(await tokensOf(db.pool, ALICE)).toEqual([]);
    expect(await tokensOf(db.pool, BOB)).toMatchObject([{ token: "tok-a", service: "apns", badge: 0 }]);
  });

  it("counts the same node in another domain as another user", async () => {
    await register(ALICE, "tok-a");
    expect((await register(ALICE_ELSEWHERE, "tok-a")).outcome).toBe("moved");
    expect(await tokenNames(ALICE)).toEqual([]);
    expect(await tokenNames(ALICE_ELSEWHERE)).toEqual(["tok-a"]);
  });

  it("keeps one token per service: the same text under fcm and apns is two devices", async () => {
    await register(ALICE, "same", { service: "fcm" });
    expect((await register(ALICE, "same", { service: "apns" })).outcome).toBe("new");
    expect((await tokensOf(db.pool, ALICE)).map((t) => t.service).sort()).toEqual(["apns", "fcm"]);
  });

  it("keeps at most `max` tokens per user and app, forgetting the least recently registered", async () => {
    for (const t of ["t1", "t2", "t3"]) expect((await register(ALICE, t)).evicted).toBe(0);
    expect(await register(ALICE, "t4")).toEqual({ outcome: "new", evicted: 1 });
    expect(await tokenNames(ALICE)).toEqual(["t4", "t3", "t2"]);
    // registering t2 again makes it the most recent: t3 is now the oldest
    await register(ALICE, "t2");
    expect(await register(ALICE, "t5")).toEqual({ outcome: "new", evicted: 1 });
    expect(await tokenNames(ALICE)).toEqual(["t5", "t2", "t4"]);
  });

  it("counts each app apart, and other users not at all", async () => {
    for (const t of ["t1", "t2", "t3"]) await register(ALICE, t);
    for (const t of ["o1", "o2"]) expect((await register(ALICE, t, { app: "OtherApp" })).evicted).toBe(0);
    for (const t of ["b1", "b2", "b3"]) expect((await register(BOB, t)).evicted).toBe(0);
    expect((await tokensOf(db.pool, ALICE)).length).toBe(5);
  });

  it("always keeps the token just registered, whatever the other rows' dates", async () => {
    await register(ALICE, "t1");
    await register(ALICE, "t2");
    // rows dated ahead of this transaction's now() (a clock stepped back): the new one still stays
    await db.pool.query("UPDATE push_tokens SET updated_at = now() + interval '1 hour'");
    expect(await register(ALICE, "t3", { max: 2 })).toEqual({ outcome: "new", evicted: 1 });
    // then the most recently registered of the others (created_at breaks the tie of their dates)
    expect((await tokenNames(ALICE)).sort()).toEqual(["t2", "t3"]);
  });

  it("moving a token into a full set evicts the new owner's oldest", async () => {
    for (const t of ["b1", "b2", "b3"]) await register(BOB, t);
    await register(ALICE, "a1");
    expect(await register(BOB, "a1")).toEqual({ outcome: "moved", from: ALICE, evicted: 1 });
    expect(await tokenNames(BOB)).toEqual(["a1", "b3", "b2"]);
  });
});

describe("storeToken", () => {
  it("answers true for a new or moved token, false for a refresh", async () => {
    const t = { token: "tok", service: "fcm" as const, app: "OyoChat" };
    expect(await storeToken(db.pool, { ...ALICE, ...t }, MAX)).toBe(true);
    expect(await storeToken(db.pool, { ...ALICE, ...t }, MAX)).toBe(false);
    expect(await storeToken(db.pool, { ...BOB, ...t }, MAX)).toBe(true);
  });
});

describe("deleting tokens", () => {
  it("deleteToken forgets the owner's token (of any service) and leaves another user's alone", async () => {
    await register(ALICE, "mine", { service: "fcm" });
    await register(ALICE, "mine", { service: "apns" });
    await register(BOB, "his");
    expect(await deleteToken(db.pool, ALICE, "his")).toBe(0);
    expect(await tokenNames(BOB)).toEqual(["his"]);
    expect(await deleteToken(db.pool, ALICE, "mine")).toBe(2);
    expect(await deleteToken(db.pool, ALICE, "mine")).toBe(0);
  });

  it("deleteAllTokens forgets every token of the owner only", async () => {
    await register(ALICE, "a1");
    await register(ALICE, "a2", { app: "OtherApp", service: "apns" });
    await register(ALICE_ELSEWHERE, "x1");
    await register(BOB, "b1");
    expect(await deleteAllTokens(db.pool, ALICE)).toBe(2);
    expect(await deleteAllTokens(db.pool, ALICE)).toBe(0);
    expect(await tokenNames(BOB)).toEqual(["b1"]);
    expect(await tokenNames(ALICE_ELSEWHERE)).toEqual(["x1"]);
  });

  it("forgetToken forgets a dead token whoever owns it", async () => {
    await register(BOB, "dead", { service: "apns" });
    await forgetToken(db.pool, "apns", "dead");
    expect(await findToken(db.pool, "apns", "dead")).toBeUndefined();
  });
});

describe("reading tokens", () => {
  it("tokensOf lists the owner's tokens most recent first, or the one named", async () => {
    await register(ALICE, "old");
    await register(ALICE, "new");
    expect(await tokenNames(ALICE)).toEqual(["new", "old"]);
    expect((await tokensOf(db.pool, ALICE, "old")).map((t) => t.token)).toEqual(["old"]);
    expect(await tokensOf(db.pool, BOB, "old")).toEqual([]);
  });

  it("findToken finds a token by service and text", async () => {
    await register(BOB, "tok", { service: "apns-voip" });
    expect(await findToken(db.pool, "apns-voip", "tok")).toMatchObject({ node: BOB.node, app: "OyoChat" });
    expect(await findToken(db.pool, "apns", "tok")).toBeUndefined();
  });
});

describe("badges", () => {
  it("nextBadge counts up from the stored badge, or takes the count given", async () => {
    await register(ALICE, "tok", { service: "apns" });
    expect(await nextBadge(db.pool, "apns", "tok")).toBe(1);
    expect(await nextBadge(db.pool, "apns", "tok")).toBe(2);
    expect(await nextBadge(db.pool, "apns", "tok", 9)).toBe(9);
    expect(await nextBadge(db.pool, "apns", "unknown", 5)).toBe(5);
  });

  it("the badge counter gathers concurrent calls into one statement, repeats of a token counted in order", async () => {
    await register(ALICE, "a", { service: "apns" });
    await register(ALICE, "b", { service: "fcm" });
    const counter = createBadgeCounter(db.pool);
    const statements: string[] = [];
    const query = db.pool.query.bind(db.pool);
    db.pool.query = ((text: string, values?: unknown[]) => {
      statements.push(text);
      return query(text, values);
    }) as typeof db.pool.query;
    try {
      const got = await Promise.all([
        counter.next({ service: "apns", token: "a" }),
        counter.next({ service: "fcm", token: "b", given: 7 }),
        counter.next({ service: "apns", token: "a" }),
        counter.next({ service: "apns", token: "gone", given: 3 }),
        counter.next({ service: "apns", token: "gone-too" }),
      ]);
      expect(got).toEqual([1, 7, 2, 3, 1]);
    } finally {
      db.pool.query = query;
    }
    // the batch, then the one repeat of "a"
    expect(statements.filter((q) => q.includes("UPDATE push_tokens"))).toHaveLength(2);
    const rows = await db.pool.query("SELECT token, badge FROM push_tokens ORDER BY token");
    expect(rows.rows).toEqual([
      { token: "a", badge: 2 },
      { token: "b", badge: 7 },
    ]);
  });

  it("resetBadge sets the owner's token back to 0 and answers its rows; another user's is untouched", async () => {
    await register(ALICE, "tok", { service: "apns" });
    await setBadge("tok", 6);
    expect(await resetBadge(db.pool, BOB, "tok")).toEqual([]);
    expect((await findToken(db.pool, "apns", "tok"))?.badge).toBe(6);
    expect(await resetBadge(db.pool, ALICE, "tok")).toEqual([
      { service: "apns", token: "tok", app: "OyoChat", domain: "oyo.test", node: ALICE.node, badge: 0 },
    ]);
    expect((await findToken(db.pool, "apns", "tok"))?.badge).toBe(0);
  });
});

describe("channel subscriptions", () => {
  it("subscribe and unsubscribe answer whether they changed anything", async () => {
    expect(await subscribe(db.pool, ALICE, "news")).toBe(true);
    expect(await subscribe(db.pool, ALICE, "news")).toBe(false);
    expect(await subscribe(db.pool, BOB, "news")).toBe(true);
    expect(await unsubscribe(db.pool, ALICE, "news")).toBe(true);
    expect(await unsubscribe(db.pool, ALICE, "news")).toBe(false);
    const { rows } = await db.pool.query("SELECT domain, channel, node FROM push_channel_subscriptions");
    expect(rows).toEqual([{ domain: "oyo.test", channel: "news", node: BOB.node }]);
  });
});
