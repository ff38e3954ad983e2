import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../test/support/bytes.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../test/support/http-utility-app.ts";

/**
 * Legacy app compatibility (config `apps.<app>.legacy`, docs/cutover.md "Installed apps"), against the real
 * app, auth core and database: installed versions call the legacy endpoints without credentials, as the legacy
 * services let them, in the domains and until the date configured, counted and rate-limited; what they cannot
 * do (read stored data, act for a user who does not exist, outlive the end date); the 426 every app endpoint
 * gives a version below its minimum; and the legacy request and answer fields those apps use.
 */

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
const ERIN = { node: "306900000005", domain: "closed.test", password: "erin pw" };
const PUSH_KEY = "sk_test_legacy_backend_0123456789";
const NEXT_YEAR = new Date(Date.now() + 365 * 86_400_000).toISOString();
const YESTERDAY = new Date(Date.now() - 86_400_000).toISOString();

const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});
const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});
const basic = (u: typeof ALICE) =>
  `Basic ${Buffer.from(`${u.node}@${u.domain}:${u.password}`).toString("base64")}`;

function overrides(legacy: Record<string, unknown> | undefined) {
  return {
    domains: { "oyo.test": { scramIterations: 4096 }, "closed.test": { scramIterations: 4096 } },
    apps: {
      OyoChat: { minimumVersion: { default: "2.0", ios: "2.5" }, ...(legacy ? { legacy } : {}) },
    },
    push: { apps: { OyoChat: { log: {} } }, domains: { "oyo.test": { app: "OyoChat" } } },
    services: {
      httpUtility: {
        apiKeys: { legacyBackend: { sha256: sha256(PUSH_KEY), scopes: ["push"], domain: "oyo.test" } },
      },
    },
  };
}

async function legacyCalls(app: HttpUtilityTestApp): Promise<Record<string, number>> {
  const metric = await app.deps.metrics?.registry.getSingleMetric("legacy_calls_total")?.get();
  return Object.fromEntries(
    (metric?.values ?? []).map((v) => [`${v.labels.endpoint} ${v.labels.app}`, v.value]),
  );
}

async function tokensOf(app: HttpUtilityTestApp, node: string): Promise<string[]> {
  const r = await app.db.pool.query<{ token: string }>(
    "SELECT token FROM push_tokens WHERE node = $1 ORDER BY token",
    [node],
  );
  return r.rows.map((row) => row.token);
}

describe("legacy compatibility on", () => {
  let app: HttpUtilityTestApp;
  const post = (path: string, init: RequestInit) => fetch(app.url(path), init);

  beforeAll(async () => {
    app = await startHttpUtilityApp({
      overrides: overrides({ domains: ["oyo.test"], belowVersion: "3.0", until: NEXT_YEAR }),
      users: [ALICE, BOB, ERIN],
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it("takes the legacy token calls without credentials, as the user their node names, and counts them", async () => {
    const stored = await post(
      "/api/v1/notifications/store_token",
      form({ node: ALICE.node, token: "legacy-device-1", service: "fcm" }),
    );
    expect(stored.status).toBe(200);
    expect(await stored.json()).toMatchObject({ stored: true, app: "OyoChat" });
    // a version below belowVersion, declared, is legacy too; the msisdn with its + is the same user
    const again = await post(
      "/api/v1/notifications/store_token",
      json({ node: `+${ALICE.node}`, token: "legacy-device-2", service: "apns" }, { "x-app-version": "2.9" }),
    );
    expect(again.status).toBe(200);
    expect(await tokensOf(app, ALICE.node)).toEqual(["legacy-device-1", "legacy-device-2"]);

    const deleted = await post(
      "/api/v1/notifications/delete_token",
      form({ node: ALICE.node, token: "legacy-device-1" }),
    );
    expect(deleted.status).toBe(200);
    expect(await tokensOf(app, ALICE.node)).toEqual(["legacy-device-2"]);
    const all = await post("/api/v1/notifications/delete_all_tokens", form({ node: ALICE.node }));
    expect(all.status).toBe(200);
    expect(await tokensOf(app, ALICE.node)).toEqual([]);

    expect(await legacyCalls(app)).toMatchObject({
      "store_token OyoChat": 2,
      "delete_token OyoChat": 1,
      "delete_all_tokens OyoChat": 1,
    });
  });

  it("takes a legacy location report (its msisdn) and channel subscriptions, with the legacy fields", async () => {
    const report = {
      msisdn: BOB.node,
      latitude: "37.98",
      longitude: "23.72",
      date: new Date().toISOString(),
      app_type: "android",
      app_version: "2.1",
    };
    const r = await post("/api/v1/locations", form(report));
    expect(r.status).toBe(201);
    const rows = await app.db.pool.query("SELECT node FROM locations WHERE node = $1", [BOB.node]);
    expect(rows.rowCount).toBe(1);
    // a batch naming someone else: nothing stored
    const mixed = await post("/api/v1/locations", json([report, { ...report, msisdn: ALICE.node }]));
    expect(mixed.status).toBe(403);
    expect((await app.db.pool.query("SELECT 1 FROM locations")).rowCount).toBe(1);

    const sub = await post(
      "/api/v1/notifications/channel_subscribe",
      form({ node: BOB.node, channel: "news", domain: "oyo.test" }),
    );
    expect(sub.status).toBe(200);
    const unsub = await post(
      "/api/v1/notifications/channel_unsubscribe",
      form({ node: BOB.node, channel: "news", domain: "oyo.test" }),
    );
    expect(unsub.status).toBe(200);
    expect(await unsub.json()).toMatchObject({ unsubscribed: true });
  });

  it("takes a legacy upload naming its user in the query, answering the legacy files.attachments fields", async () => {
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3a6" } })
      .jpeg()
      .toBuffer();
    const body = new FormData();
    body.append("attachments", new Blob([new Uint8Array(jpeg)], { type: "image/jpeg" }), "holiday.jpg");
    const r = await fetch(app.url(`/api/v1/attachments/pictures?node=${BOB.node}`), { method: "POST", body });
    expect(r.status).toBe(201);
    const answer = (await r.json()) as { files: { attachments: Record<string, unknown> } };
    const legacy = answer.files.attachments;
    expect(legacy).toMatchObject({ name: "holiday.jpg", contentType: "image/jpeg", width: 64, height: 48 });
    expect(typeof legacy.fileName).toBe("string");
    const owner = await app.db.pool.query("SELECT node FROM attachments WHERE name = $1", [legacy.fileName]);
    expect(owner.rows[0]).toEqual({ node: BOB.node });
    // the stored picture answers at its URL, as an old link would ask it
    const got = await fetch(String(legacy.url));
    expect(got.status).toBe(200);
    expect(got.headers.get("content-type")).toBe("image/jpeg");
    expect((await got.arrayBuffer()).byteLength).toBe(legacy.size);
  });

  it("refuses what the legacy trust cannot vouch for: a user nobody has, a current version, another domain, reads", async () => {
    const cases: Array<[string, RequestInit]> = [
      // nobody has this node: a legacy call creates nothing for it
      ["/api/v1/notifications/store_token", form({ node: "306999999999", token: "t-ghost", service: "fcm" })],
      // a version at or above belowVersion must log in
      [
        "/api/v1/notifications/store_token",
        json({ node: ALICE.node, token: "t-new", service: "fcm" }, { "x-app-version": "3.0" }),
      ],
      // no node at all
      ["/api/v1/notifications/store_token", form({ token: "t-nobody", service: "fcm" })],
      // a domain whose compatibility is not on: the node is looked up in oyo.test only, where Erin is not
      ["/api/v1/notifications/delete_all_tokens", form({ node: ERIN.node, domain: "closed.test" })],
    ];
    for (const [path, init] of cases) {
      const r = await post(path, init);
      expect(r.status, `${path} ${String(init.body)}`).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("invalid_credentials");
    }
    expect(await tokensOf(app, "306999999999")).toEqual([]);
    // reading stored data always needs credentials, with or without a node
    for (const path of [
      `/api/v1/attachments/videos?node=${ALICE.node}`,
      `/api/v1/locations/${BOB.node}/latest`,
      `/api/v1/locations/${BOB.node}`,
    ]) {
      const r = await fetch(app.url(path));
      expect(r.status, path).toBe(401);
    }
  });

  it("answers 426 with minimumVersion on every app endpoint for a version below the minimum, per platform", async () => {
    const tooOld = await post(
      "/api/v1/notifications/store_token",
      json({ node: ALICE.node, token: "t-old", service: "fcm" }, { "x-app-version": "1.9" }),
    );
    expect(tooOld.status).toBe(426);
    expect(await tooOld.json()).toMatchObject({
      error: { code: "app_version_too_old", minimumVersion: "2.0" },
    });
    // with valid credentials too, and on a read: the app is told to update before anything else
    const read = await fetch(app.url("/api/v1/attachments/videos"), {
      headers: { authorization: basic(ALICE), "x-app-version": "2.4", "x-app-platform": "ios" },
    });
    expect(read.status).toBe(426);
    expect(await read.json()).toMatchObject({ error: { minimumVersion: "2.5" } });
    const ok = await fetch(app.url("/api/v1/attachments/videos"), {
      headers: { authorization: basic(ALICE), "x-app-version": "2.4", "x-app-platform": "android" },
    });
    expect(ok.status).toBe(200);
    const bad = await fetch(app.url("/api/v1/attachments/videos"), {
      headers: { authorization: basic(ALICE), "x-app-version": "yesterday's" },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_app_version" } });
    expect(await tokensOf(app, ALICE.node)).not.toContain("t-old");
  });

  it("gives a legacy backend a key limited to send in one domain, taking the legacy send body", async () => {
    await post(
      "/api/v1/notifications/store_token",
      form({ node: BOB.node, token: "bob-device", service: "fcm" }),
    );
    const auth = { authorization: `Bearer ${PUSH_KEY}` };
    const sent = await post(
      "/api/v1/notifications/send",
      json(
        { node: BOB.node, title: "Hello", body: "from the legacy backend", badge: 1, sound: "default" },
        auth,
      ),
    );
    expect(sent.status, await sent.clone().text()).toBe(200);
    expect(JSON.stringify(await sent.json())).toContain("bob-device");
    // the legacy body names no domain: the key's own is taken; it cannot act in another
    const elsewhere = await post(
      "/api/v1/notifications/send",
      json({ node: ERIN.node, domain: "closed.test", title: "Hello", body: "x" }, auth),
    );
    expect(elsewhere.status).toBe(403);
    expect(await elsewhere.json()).toMatchObject({ error: { code: "forbidden" } });
    // the same key cannot broadcast or read locations
    const broadcast = await post(
      "/api/v1/notifications/channel_broadcast",
      json({ domain: "oyo.test", channel: "news", title: "x", body: "y" }, auth),
    );
    expect(broadcast.status).toBe(403);
    const locations = await fetch(app.url(`/api/v1/locations/${BOB.node}/latest`), { headers: auth });
    expect(locations.status).toBe(403);
  });
});

describe("legacy compatibility bounds", () => {
  it("off by default: the same legacy calls get 401 invalid_credentials, and nothing is counted", async () => {
    const app = await startHttpUtilityApp({ overrides: overrides(undefined), users: [ALICE] });
    try {
      const r = await fetch(
        app.url("/api/v1/notifications/store_token"),
        form({ node: ALICE.node, token: "t1", service: "fcm" }),
      );
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^Basic /);
      expect(await r.json()).toMatchObject({ error: { code: "invalid_credentials" } });
      expect(await legacyCalls(app)).toEqual({});
    } finally {
      await app.close();
    }
  });

  it("ends at its date", async () => {
    const app = await startHttpUtilityApp({
      overrides: overrides({ domains: ["oyo.test"], belowVersion: "3.0", until: YESTERDAY }),
      users: [ALICE],
    });
    try {
      const r = await fetch(
        app.url("/api/v1/notifications/store_token"),
        form({ node: ALICE.node, token: "t1", service: "fcm" }),
      );
      expect(r.status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it("is rate-limited per address: 429 with Retry-After once the address used its calls", async () => {
    const app = await startHttpUtilityApp({
      overrides: overrides({
        domains: ["oyo.test"],
        belowVersion: "3.0",
        until: NEXT_YEAR,
        perAddress: { points: 3, seconds: 60 },
      }),
      users: [ALICE],
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await fetch(
          app.url("/api/v1/notifications/store_token"),
          form({ node: ALICE.node, token: `t${i}`, service: "fcm" }),
        );
        statuses.push(r.status);
        if (r.status === 429) expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(await tokensOf(app, ALICE.node)).toEqual(["t0", "t1", "t2"]);
      // a user with credentials is not held by the legacy budget
      const r = await fetch(app.url("/api/v1/notifications/store_token"), {
        ...json({ node: ALICE.node, token: "t-auth", service: "fcm" }),
        headers: { "content-type": "application/json", authorization: basic(ALICE) },
      });
      expect(r.status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("refuses a config naming a domain not served, or no end date", async () => {
    await expect(
      startHttpUtilityApp({
        overrides: overrides({ domains: ["elsewhere.test"], belowVersion: "3.0", until: NEXT_YEAR }),
      }),
    ).rejects.toThrow(/elsewhere\.test is not a domain of `domains`/);
    await expect(
      startHttpUtilityApp({ overrides: overrides({ domains: ["oyo.test"], belowVersion: "3.0" }) }),
    ).rejects.toThrow(/until/);
  });
});
