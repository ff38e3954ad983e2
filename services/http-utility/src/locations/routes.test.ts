import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser } from "#common/users/web-users.ts";
import { sha256 } from "../../../../test/support/bytes.ts";
import type { TestDatabase } from "../../../../test/support/database.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";

/**
 * POST /api/v1/locations and its reads, against the real app, auth core and database: what an app and a
 * backend see (status, code, body) and what ends up in the locations table.
 */

const MAX_BATCH = 5;
const SKEW_SECONDS = 300;
const READ_KEY = "sk_test_reader_0123456789";
const PUSH_KEY = "sk_test_pusher_0123456789";

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
// her app writes her msisdn with a leading + in its reports (her JID has none: a + is refused there)
const CAROL = { node: "306900000003", domain: "oyo.test", password: "carol pw" };
const ALICE_ELSEWHERE = { node: "306900000001", domain: "other.test", password: "other pw" };
type User = typeof ALICE;

let app: HttpUtilityTestApp;
let db: TestDatabase;
let base: string;

beforeAll(async () => {
  app = await startHttpUtilityApp({
    overrides: {
      domains: { "oyo.test": { scramIterations: 4096 }, "other.test": { scramIterations: 4096 } },
      services: {
        httpUtility: {
          apiKeys: {
            reader: { sha256: sha256(READ_KEY), scopes: ["locations:read"] },
            pusher: { sha256: sha256(PUSH_KEY), scopes: ["push"] },
          },
          locations: { maxBatch: MAX_BATCH, futureSkewSeconds: SKEW_SECONDS },
        },
      },
    },
    users: [ALICE, BOB, CAROL, ALICE_ELSEWHERE],
  });
  db = app.db;
  base = app.url("/api/v1/locations");
});

afterAll(async () => {
  await app?.close();
});

const basic = (u: User, password = u.password) =>
  `Basic ${Buffer.from(`${u.node}@${u.domain}:${password}`).toString("base64")}`;

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
}

async function call(path: string, init: RequestInit & { auth?: string } = {}): Promise<Answer> {
  const headers = new Headers(init.headers);
  if (init.auth) headers.set("authorization", init.auth);
  const r = await fetch(`${base}${path}`, { ...init, headers });
  return { status: r.status, body: await r.json() };
}

const post = (u: User, body: unknown, password?: string) =>
  call("", {
    method: "POST",
    auth: basic(u, password),
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

const get = (path: string, auth?: string) => call(path, auth ? { auth } : {});

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

function report(u: User, over: Record<string, unknown> = {}) {
  return {
    msisdn: u.node,
    latitude: 37.9838,
    longitude: 23.7275,
    date: minutesAgo(1),
    app_type: "android",
    app_version: "1.4.2",
    ...over,
  };
}

async function stored(u: User): Promise<number> {
  const r = await db.pool.query("SELECT count(*)::int AS n FROM locations WHERE domain = $1 AND node = $2", [
    u.domain,
    u.node,
  ]);
  return r.rows[0].n;
}

describe("POST /api/v1/locations", () => {
  it("stores the caller's report (201, stored: 1) and answers it as their latest", async () => {
    const date = minutesAgo(30);
    const r = await post(BOB, report(BOB, { date, latitude: -33.8688, longitude: 151.2093 }));
    expect(r).toEqual({ status: 201, body: { stored: 1 } });
    const latest = await get(`/${BOB.node}/latest`, basic(BOB));
    expect(latest.status).toBe(200);
    expect(latest.body).toEqual({
      msisdn: BOB.node,
      domain: BOB.domain,
      location: { latitude: -33.8688, longitude: 151.2093, date, app_type: "android", app_version: "1.4.2" },
    });
  });

  it("takes a form with numeric strings, epoch milliseconds and the msisdn with a leading +", async () => {
    const before = await stored(CAROL);
    const epoch = Date.now() - 120_000;
    const form = new URLSearchParams({
      msisdn: "+306900000003",
      latitude: "-12.5",
      longitude: "179.75",
      date: String(epoch),
      app_type: "ios",
      app_version: "2.0.0-beta",
    });
    const r = await call("", { method: "POST", auth: basic(CAROL), body: form });
    expect(r).toEqual({ status: 201, body: { stored: 1 } });
    // the same number without the + is the same user
    expect((await post(CAROL, report(CAROL, { msisdn: "306900000003" }))).status).toBe(201);
    expect(await stored(CAROL)).toBe(before + 2);
    const history = await get(`/306900000003?limit=2`, basic(CAROL));
    expect(history.body.locations[1]).toEqual({
      latitude: -12.5,
      longitude: 179.75,
      date: new Date(epoch).toISOString(),
      app_type: "ios",
      app_version: "2.0.0-beta",
    });
  });

  it.each([
    [{ latitude: 91 }, /^latitude: latitude must be between -90 and 90/],
    [{ latitude: -90.0001 }, /^latitude: latitude must be between -90 and 90/],
    [{ longitude: -181 }, /^longitude: longitude must be between -180 and 180/],
    [{ longitude: 180.5 }, /^longitude: longitude must be between -180 and 180/],
    [{ latitude: "north" }, /^latitude: latitude must be a number/],
    [{ longitude: "" }, /^longitude: longitude must be a number/],
    [{ latitude: null }, /^latitude: latitude must be a number/],
    [{ latitude: "1e999" }, /^latitude: latitude must be between/],
    [{ date: "yesterday" }, /^date: must be ISO 8601 with a time zone .* or epoch milliseconds/],
    [{ date: "2024-05-01T12:00:00" }, /^date: must be ISO 8601 with a time zone/],
    [{ date: 1714564800 }, /^date: is before 2000: send epoch milliseconds, not seconds/],
    [{ app_type: "" }, /^app_type: app_type is required/],
    [{ app_version: "x".repeat(65) }, /^app_version: app_version is longer than 64 characters/],
    [{ msisdn: undefined, app_type: "no msisdn" }, /^msisdn: msisdn must be a string/],
  ])("refuses %j with 400 invalid_request naming the field, storing nothing", async (over, message) => {
    const before = await stored(ALICE);
    const r = await post(ALICE, report(ALICE, over));
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("invalid_request");
    expect(r.body.error.message).toMatch(message);
    expect(await stored(ALICE)).toBe(before);
  });

  it("refuses a date in the future beyond the allowed skew, accepts one within it", async () => {
    const before = await stored(ALICE);
    const tooFar = new Date(Date.now() + (SKEW_SECONDS + 120) * 1000).toISOString();
    const r = await post(ALICE, report(ALICE, { date: tooFar }));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toBe(
      `date: is in the future (more than ${SKEW_SECONDS} s ahead of the server's clock)`,
    );
    expect(await stored(ALICE)).toBe(before);
    const slightlyAhead = new Date(Date.now() + 60_000).toISOString();
    expect((await post(ALICE, report(ALICE, { date: slightlyAhead }))).status).toBe(201);
    expect(await stored(ALICE)).toBe(before + 1);
  });

  it("refuses another user's msisdn with 403 forbidden, alone or anywhere in a batch, storing nothing", async () => {
    const [alice, bob] = [await stored(ALICE), await stored(BOB)];
    const alone = await post(ALICE, report(BOB));
    expect(alone.status).toBe(403);
    expect(alone.body.error).toMatchObject({ code: "forbidden" });
    expect(alone.body.error.message).toMatch(/msisdn 306900000002 is not yours/);
    const batch = [
      report(ALICE, { date: minutesAgo(7) }),
      report(ALICE, { date: minutesAgo(8) }),
      report(BOB),
    ];
    expect((await post(ALICE, batch)).status).toBe(403);
    expect(await stored(ALICE)).toBe(alice);
    expect(await stored(BOB)).toBe(bob);
  });

  it("stores a batch, as an array or as { locations }, whole; a batch with one bad element stores nothing", async () => {
    const before = await stored(ALICE);
    const dates = [11, 12, 13, 14, 15].map(minutesAgo);
    const array = dates.map((date) => report(ALICE, { date }));
    expect(await post(ALICE, array)).toEqual({ status: 201, body: { stored: MAX_BATCH } });
    const wrapped = { locations: [16, 17].map((m) => report(ALICE, { date: minutesAgo(m) })) };
    expect(await post(ALICE, wrapped)).toEqual({ status: 201, body: { stored: 2 } });
    expect(await stored(ALICE)).toBe(before + MAX_BATCH + 2);

    const oneBad = [18, 19, 20].map((m) => report(ALICE, { date: minutesAgo(m) }));
    oneBad[2] = report(ALICE, { date: minutesAgo(20), latitude: 123 });
    const bad = await post(ALICE, oneBad);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^2\.latitude: latitude must be between -90 and 90/);
    const badWrapped = await post(ALICE, { locations: oneBad });
    expect(badWrapped.body.error.message).toMatch(/^locations\.2\.latitude: /);
    expect(await stored(ALICE)).toBe(before + MAX_BATCH + 2);
  });

  it("refuses a batch over the limit, and an empty one", async () => {
    const before = await stored(ALICE);
    const tooMany = Array.from({ length: MAX_BATCH + 1 }, (_, i) =>
      report(ALICE, { date: minutesAgo(30 + i) }),
    );
    const r = await post(ALICE, tooMany);
    expect(r.status).toBe(400);
    expect(r.body.error).toEqual({
      code: "invalid_request",
      message: `at most ${MAX_BATCH} reports per request`,
    });
    expect((await post(ALICE, { locations: tooMany })).body.error.message).toBe(
      `locations: at most ${MAX_BATCH} reports per request`,
    );
    expect((await post(ALICE, [])).body.error.message).toBe("no reports: send at least one");
    expect(await stored(ALICE)).toBe(before);
  });

  it("keeps a retried report once", async () => {
    const before = await stored(ALICE);
    const batch = [report(ALICE, { date: minutesAgo(41) }), report(ALICE, { date: minutesAgo(42) })];
    expect((await post(ALICE, batch)).status).toBe(201);
    expect((await post(ALICE, batch)).status).toBe(201);
    expect(await stored(ALICE)).toBe(before + 2);
  });

  it("needs the user's credentials: 401 without them or with a wrong password or an API key", async () => {
    const none = await call("", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(report(ALICE)),
    });
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("invalid_credentials");
    expect((await post(ALICE, report(ALICE), "wrong")).status).toBe(401);
    const key = await call("", {
      method: "POST",
      auth: `Bearer ${READ_KEY}`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(report(ALICE)),
    });
    expect(key.status).toBe(401);
  });
});

describe("reading locations", () => {
  const DAVE = { node: "306900000004", domain: "oyo.test", password: "dave pw" };
  const T0 = Date.parse("2025-03-01T00:00:00.000Z");
  const dates = Array.from({ length: 12 }, (_, i) => new Date(T0 + i * 3_600_000).toISOString());

  beforeAll(async () => {
    await addUser(
      db.pool,
      DAVE,
      { cleartext: DAVE.password },
      { keepCleartext: false, scramHashes: ["sha256"], scramIterations: 4096 },
    );
    for (let i = 0; i < dates.length; i += MAX_BATCH) {
      const batch = dates.slice(i, i + MAX_BATCH).map((date, j) => report(DAVE, { date, latitude: i + j }));
      expect((await post(DAVE, batch)).status).toBe(201);
    }
    // the same number in another domain
    expect((await post(ALICE_ELSEWHERE, report(ALICE_ELSEWHERE, { latitude: -1 }))).status).toBe(201);
  });

  it("pages through a user's history newest first, with a next cursor until the last page", async () => {
    const seen: string[] = [];
    let path = `/${DAVE.node}?limit=5`;
    const sizes: number[] = [];
    for (let pages = 0; pages < 10; pages++) {
      const r = await get(path, basic(DAVE));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ msisdn: DAVE.node, domain: DAVE.domain });
      sizes.push(r.body.locations.length);
      seen.push(...r.body.locations.map((l: { date: string }) => l.date));
      if (r.body.next === null) break;
      path = `/${DAVE.node}?limit=5&before=${encodeURIComponent(r.body.next)}`;
    }
    expect(sizes).toEqual([5, 5, 2]);
    expect(seen).toEqual([...dates].reverse());
  });

  it("reads a time range (from and to included), paged as well", async () => {
    const from = encodeURIComponent(dates[3] as string);
    const to = String(Date.parse(dates[8] as string)); // epoch milliseconds work too
    const first = await get(`/${DAVE.node}?from=${from}&to=${to}&limit=4`, basic(DAVE));
    expect(first.body.locations.map((l: { latitude: number }) => l.latitude)).toEqual([8, 7, 6, 5]);
    const second = await get(
      `/${DAVE.node}?from=${from}&to=${to}&limit=4&before=${encodeURIComponent(first.body.next)}`,
      basic(DAVE),
    );
    expect(second.body).toMatchObject({ next: null });
    expect(second.body.locations.map((l: { latitude: number }) => l.latitude)).toEqual([4, 3]);
  });

  it("lets a server key with locations:read read anyone; not a key without it, nor a bad key", async () => {
    const latest = await get(`/${DAVE.node}/latest`, `Bearer ${READ_KEY}`);
    expect(latest.status).toBe(200);
    expect(latest.body.location).toMatchObject({ date: dates[11], latitude: 11 });
    // `+X` is another account than `X`: no fallback from one spelling to the other
    expect((await get(`/+${DAVE.node}/latest`, `Bearer ${READ_KEY}`)).status).toBe(404);
    expect((await get(`/${CAROL.node}/latest`, `Bearer ${READ_KEY}`)).body.msisdn).toBe(CAROL.node);
    expect((await get(`/+${CAROL.node}?limit=1`, `Bearer ${READ_KEY}`)).status).toBe(404);

    const noScope = await get(`/${DAVE.node}/latest`, `Bearer ${PUSH_KEY}`);
    expect(noScope.status).toBe(403);
    expect(noScope.body.error.code).toBe("insufficient_scope");
    const badKey = await get(`/${DAVE.node}`, "Bearer sk_nobody_knows_this_key");
    expect(badKey.status).toBe(401);
    expect(badKey.body.error.code).toBe("invalid_api_key");
  });

  it("refuses another user (403) and answers a user's own latest", async () => {
    const other = await get(`/${DAVE.node}/latest`, basic(BOB));
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe("forbidden");
    expect((await get(`/${DAVE.node}?limit=1`, basic(BOB))).status).toBe(403);
    expect((await get(`/${DAVE.node}/latest?domain=other.test`, basic(DAVE))).status).toBe(403);
    expect((await get(`/${DAVE.node}/latest`, basic(DAVE))).body.location.latitude).toBe(11);
    expect((await get(`/${DAVE.node}`)).status).toBe(401);
  });

  it("asks a server for ?domain= when the msisdn has locations in several domains", async () => {
    const both = await get(`/${ALICE.node}/latest`, `Bearer ${READ_KEY}`);
    expect(both.status).toBe(400);
    expect(both.body.error).toEqual({
      code: "ambiguous_msisdn",
      message: `${ALICE.node} has locations in several domains (other.test, oyo.test): add ?domain= naming one.`,
    });
    const elsewhere = await get(`/${ALICE.node}/latest?domain=other.test`, `Bearer ${READ_KEY}`);
    expect(elsewhere.body).toMatchObject({ domain: "other.test", location: { latitude: -1 } });
    // an app user reads their own domain without saying so
    expect((await get(`/${ALICE.node}/latest`, basic(ALICE_ELSEWHERE))).body.location.latitude).toBe(-1);
  });

  it("answers 404 for an msisdn without locations; an app user's own empty history is an empty page", async () => {
    const unknown = await get("/306999999999/latest", `Bearer ${READ_KEY}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    expect((await get("/306999999999", `Bearer ${READ_KEY}`)).status).toBe(404);
    const FRESH = { node: "306900000009", domain: "oyo.test", password: "fresh pw" };
    await addUser(
      db.pool,
      FRESH,
      { cleartext: FRESH.password },
      { keepCleartext: false, scramHashes: ["sha256"], scramIterations: 4096 },
    );
    expect(await get(`/${FRESH.node}`, basic(FRESH))).toEqual({
      status: 200,
      body: { msisdn: FRESH.node, domain: FRESH.domain, locations: [], next: null },
    });
    expect((await get(`/${FRESH.node}/latest`, basic(FRESH))).status).toBe(404);
  });

  it("refuses a bad limit, cursor or range with 400", async () => {
    for (const q of [
      "limit=0",
      "limit=1001",
      "limit=ten",
      "before=soon",
      "from=2025-03-01",
      "domain=Bad_Domain!",
    ]) {
      const r = await get(`/${DAVE.node}?${q}`, basic(DAVE));
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe("invalid_request");
    }
  });

  it("refuses a date beyond what a Date or PostgreSQL holds with 400 naming the field, not a 500", async () => {
    for (const [field, value] of [
      ["from", "9".repeat(40)], // Date's RangeError inside the schema answered 500
      ["to", "8640000000000001"],
      ["before", "8640000000000000"], // a valid Date in year 275760: PostgreSQL refuses six-digit years
      ["from", "253402300800000"], // 10000-01-01
      ["to", "0000-12-31T23:59:59Z"],
    ]) {
      const r = await get(`/${DAVE.node}?${field}=${value}`, basic(DAVE));
      expect(r.status, `${field}=${value}`).toBe(400);
      expect(r.body.error, `${field}=${value}`).toEqual({
        code: "invalid_request",
        message: expect.stringMatching(
          new RegExp(`^${field}: is out of range: send a date from 0001 to 9999`),
        ),
      });
    }
    const last = await get(`/${DAVE.node}?to=253402300799999&from=0`, basic(DAVE));
    expect(last.status).toBe(200);
    expect(last.body.locations).toHaveLength(dates.length);
  });
});
