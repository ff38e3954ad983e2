import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../test/support/bytes.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../test/support/http-utility-app.ts";
import { type RecordingLogger, recordingLogger } from "../../../test/support/recording-logger.ts";

/**
 * Compatibility with the legacy "HTTPS utility services", endpoint by endpoint: each legacy path called as an
 * installed app or a legacy backend calls it (form-encoded bodies with exactly the legacy field names: `node`
 * for the msisdn, `token`, `service`, `channel`, `domain`, `appName`, `appVersionCode`, `challengecode`,
 * `msisdn`, `latitude`, `longitude`, `date`, `app_type`, `app_version`, the multipart field `attachments`),
 * and the answer fields those clients read (`files.attachments.name` / `fileName`, `token` of the
 * authorization, `minimumVersion`). Installed apps send no credentials: the app's legacy compatibility is on.
 */

const DOMAIN = "oyo.test";
const MSISDN = "+306912345678";
const NODE = "306912345678";
const BACKEND_KEY = "sk_test_legacy_backend_compat_0123456789";

let app: HttpUtilityTestApp;
let rec: RecordingLogger;
let password = "";

const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});
const call = async (path: string, init: RequestInit = {}) => {
  const r = await fetch(app.url(path), init);
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  return { status: r.status, body: (await r.json()) as any };
};

beforeAll(async () => {
  rec = recordingLogger({ level: "info" });
  app = await startHttpUtilityApp({
    log: rec.log,
    overrides: {
      domains: {
        [DOMAIN]: {
          scramIterations: 4096,
          registration: { enabled: true, countries: ["GR"], sms: { kind: "log", options: {} } },
        },
      },
      apps: {
        OyoChat: {
          default: true,
          minimumVersion: { default: "0.1" },
          legacy: {
            domains: [DOMAIN],
            belowVersion: "9.0",
            until: new Date(Date.now() + 86_400_000).toISOString(),
          },
        },
      },
      push: { apps: { OyoChat: { log: {} } }, domains: { [DOMAIN]: { app: "OyoChat" } } },
      services: {
        httpUtility: {
          apiKeys: { backend: { sha256: sha256(BACKEND_KEY), scopes: ["push"], domain: DOMAIN } },
        },
      },
    },
  });
});

afterAll(async () => {
  await app?.close();
});

describe("the legacy endpoints, with the legacy fields", () => {
  it("POST /api/v1/users (appName, appVersionCode, domain, node) and /users/authorize (node, challengecode): token", async () => {
    const started = await call(
      "/api/v1/users",
      form({ appName: "OyoChat", appVersionCode: "0.1", domain: DOMAIN, node: MSISDN }),
    );
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ node: NODE, domain: DOMAIN });
    const sent = rec.lines.filter((l) => typeof l.code === "string").at(-1);
    expect(sent).toBeDefined();
    const authorized = await call(
      "/api/v1/users/authorize",
      form({ node: MSISDN, challengecode: String(sent?.code), domain: DOMAIN }),
    );
    expect(authorized.status).toBe(200);
    expect(authorized.body).toMatchObject({ jid: `${NODE}@${DOMAIN}`, node: NODE, domain: DOMAIN });
    expect(typeof authorized.body.token).toBe("string");
    password = authorized.body.token;
  });

  it("GET /api/v1/minimum_app_version (appName, platform; or neither): appName, platform, minimumVersion", async () => {
    for (const query of ["?appName=OyoChat&platform=android", ""]) {
      const r = await call(`/api/v1/minimum_app_version${query}`);
      expect(r.status, query).toBe(200);
      expect(Object.keys(r.body).sort()).toEqual(["appName", "minimumVersion", "platform"]);
      expect(r.body.minimumVersion).toBe("0.1");
    }
  });

  it("the token storage (node, token, service), without credentials", async () => {
    const stored = await call(
      "/api/v1/notifications/store_token",
      form({ node: MSISDN, token: "legacy-fcm", service: "fcm" }),
    );
    expect(stored).toMatchObject({ status: 200, body: { stored: true } });
    await call(
      "/api/v1/notifications/store_token",
      form({ node: MSISDN, token: "legacy-apns", service: "apns" }),
    );
    const reset = await call(
      "/api/v1/notifications/reset_badge",
      form({ node: MSISDN, token: "legacy-apns" }),
    );
    expect(reset).toMatchObject({ status: 200, body: { reset: true } });
    const deleted = await call(
      "/api/v1/notifications/delete_token",
      form({ node: MSISDN, token: "legacy-apns" }),
    );
    expect(deleted).toMatchObject({ status: 200, body: { deleted: 1 } });
  });

  it("POST /api/v1/notifications/send (node, token, title, body, data, badge, sound, silent) with a backend key", async () => {
    const r = await call(
      "/api/v1/notifications/send",
      form(
        {
          node: NODE,
          token: "legacy-fcm",
          title: "Ticket",
          body: "Your ticket is ready",
          data: JSON.stringify({ ticket: "42" }),
          badge: "3",
          sound: "default",
          silent: "false",
        },
        { authorization: `Bearer ${BACKEND_KEY}` },
      ),
    );
    expect(r.status).toBe(200);
    expect(r.body.results).toEqual([expect.objectContaining({ token: "legacy-fcm", status: "sent" })]);
    expect(typeof r.body.id).toBe("string");
  });

  it("channel_subscribe and channel_unsubscribe (node, channel, domain), delete_all_tokens (node)", async () => {
    const fields = { node: MSISDN, channel: "offers", domain: DOMAIN };
    expect(await call("/api/v1/notifications/channel_subscribe", form(fields))).toMatchObject({
      status: 200,
      body: { subscribed: true },
    });
    expect(await call("/api/v1/notifications/channel_unsubscribe", form(fields))).toMatchObject({
      status: 200,
      body: { unsubscribed: true },
    });
    expect(await call("/api/v1/notifications/delete_all_tokens", form({ node: MSISDN }))).toMatchObject({
      status: 200,
      body: { deleted: 1 },
    });
  });

  it("POST /api/v1/locations (msisdn, latitude, longitude, date, app_type, app_version)", async () => {
    const r = await call(
      "/api/v1/locations",
      form({
        msisdn: MSISDN,
        latitude: "37.9838",
        longitude: "23.7275",
        date: new Date().toISOString(),
        app_type: "ios",
        app_version: "0.1",
      }),
    );
    expect(r.status).toBe(201);
    const stored = await app.db.pool.query("SELECT node FROM locations");
    expect(stored.rows).toEqual([{ node: NODE }]);
  });

  it("attachments: POST with the field attachments answers files.attachments.name and .fileName; GET :filename", async () => {
    const jpeg = await sharp({ create: { width: 120, height: 90, channels: 3, background: "#284" } })
      .jpeg()
      .toBuffer();
    for (const auth of [
      {},
      { authorization: `Basic ${Buffer.from(`${NODE}@${DOMAIN}:${password}`).toString("base64")}` },
    ]) {
      const body = new FormData();
      body.append("attachments", new Blob([new Uint8Array(jpeg)], { type: "image/jpeg" }), "photo.jpg");
      // without credentials the installed app names itself in the query
      const query = "authorization" in auth ? "" : `?node=${NODE}`;
      const r = await fetch(app.url(`/api/v1/attachments/pictures${query}`), {
        method: "POST",
        headers: auth,
        body,
      });
      expect(r.status).toBe(201);
      const answer = (await r.json()) as { files: { attachments: { name: string; fileName: string } } };
      expect(answer.files.attachments.name).toBe("photo.jpg");
      const got = await fetch(app.url(`/api/v1/attachments/pictures/${answer.files.attachments.fileName}`));
      expect(got.status).toBe(200);
      expect(got.headers.get("content-type")).toBe("image/jpeg");
    }
  });
});
