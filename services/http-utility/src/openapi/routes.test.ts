import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { finishApp } from "#common/http/app-base.ts";
import { startServer } from "#common/http/server.ts";
import { appVersionRoutes } from "../app-version/routes.ts";
import { createMediaDeps } from "../attachments/media-deps.ts";
import { attachmentsRoutes } from "../attachments/routes.ts";
import { locationsRoutes } from "../locations/routes.ts";
import { createPushDeps } from "../push/deps.ts";
import { deviceRoutes } from "../push/devices/routes.ts";
import { mongooseImRoutes } from "../push/mongooseim/routes.ts";
import { sendRoutes } from "../push/send/routes.ts";
import { createRegistrationDeps } from "../registration/deps.ts";
import { registrationRoutes } from "../registration/routes.ts";
import { sessionRoutes } from "../sessions/routes.ts";
import { createAppSessions } from "../sessions/tokens.ts";
import { xmppUploadRoutes } from "../xmpp-upload/routes.ts";
import { buildOpenApiDocument, routeGroups } from "./document.ts";
import { apiDocsRouter, CONTENT_SECURITY_POLICY } from "./routes.ts";

/**
 * /api/docs: the document as JSON, and the Swagger UI page built from swagger-ui-dist's files, loading
 * nothing from anywhere else. Chromium (Debian's, as the other browser tests use) renders it under its CSP.
 */

// the route definitions as app.ts makes them; building them queries nothing (the pool never connects)
const deps = { config: loadConfig({ env: { APP_ENV: "test" } }), pool: new pg.Pool() };
const log = pino({ level: "silent" });
const push = await createPushDeps({ ...deps, log }, { workers: false });
const media = await createMediaDeps({ ...deps, log });
const doc = buildOpenApiDocument(
  routeGroups({
    users: registrationRoutes({ ...deps, log, ...createRegistrationDeps({ ...deps, log }) }),
    // described only: no request reaches them here
    sessions: sessionRoutes({
      ...deps,
      core: { userExists: async () => false },
      sessions: createAppSessions({ ...deps, log }),
      callers: {
        login: () => Promise.reject(new Error("not called")),
        checkApp: () => Promise.reject(new Error("not called")),
      },
    }),
    locations: locationsRoutes(deps),
    "app-version": appVersionRoutes(deps),
    attachments: attachmentsRoutes({ ...deps, log, ...media, media: deps.config.media }),
    notifications: [...deviceRoutes({ ...deps, ...push }), ...sendRoutes({ ...deps, ...push })],
    mongooseim: mongooseImRoutes({ ...deps, log, notifier: push.notifier }),
    "xmpp-upload": xmppUploadRoutes({ ...deps, log, ...media, media: deps.config.media }),
  }),
);
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = express();
  app.use("/api/docs", apiDocsRouter(doc));
  finishApp(app, pino({ level: "silent" }));
  const server = await startServer(app, {
    name: "test",
    host: "127.0.0.1",
    port: 0,
    log: pino({ level: "silent" }),
  });
  base = server.url;
  close = () => server.close(100);
});
afterAll(async () => {
  await close?.();
  await push.close();
  await media.storage.close();
  await deps.pool.end();
});

const get = (p: string) => fetch(`${base}${p}`, { redirect: "manual" });

describe("GET /api/docs/openapi.json", () => {
  it("serves the document as JSON", async () => {
    const r = await get("/api/docs/openapi.json");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await r.json()).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});

describe("GET /api/docs", () => {
  it("redirects to the page's folder, so that its relative URLs resolve under /api/docs/", async () => {
    const r = await get("/api/docs");
    expect(r.status).toBe(301);
    expect(r.headers.get("location")).toBe("docs/");
    expect((await get("/api/docs?deepLink=x")).headers.get("location")).toBe("docs/?deepLink=x");
  });

  it("serves the Swagger UI page with a self-only policy, scripts from files, no other origin", async () => {
    const r = await get("/api/docs/");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("content-security-policy")).toBe(
      "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'",
    );
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await r.text();
    expect(html).not.toMatch(/https?:|\/\//);
    expect(html).not.toMatch(/<script>|<script(?![^>]*\ssrc=)[^>]*>/); // every script has a src
    expect(html).not.toMatch(/<style|style=/);
    const linked = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(linked).toEqual([
      "./swagger-ui.css",
      "./index.css",
      "./favicon-32x32.png",
      "./favicon-16x16.png",
      "./swagger-ui-bundle.js",
      "./swagger-initializer.js",
    ]);
    for (const file of linked) {
      const asset = await get(`/api/docs/${file}`);
      expect(asset.status, file).toBe(200);
      expect(asset.headers.get("content-security-policy"), file).toBe(CONTENT_SECURITY_POLICY);
    }
  });

  it("points Swagger UI at ./openapi.json, with no validator badge and no ?url= loading", async () => {
    const r = await get("/api/docs/swagger-initializer.js");
    expect(r.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const js = await r.text();
    expect(js).toContain('url: "./openapi.json"');
    expect(js).toContain("validatorUrl: null");
    expect(js).toContain("queryConfigEnabled: false");
    expect(js).not.toMatch(/https?:/);
  });

  it("serves the UI's assets with their types, and nothing else of swagger-ui-dist", async () => {
    const types = {
      "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
      "swagger-ui.css": "text/css; charset=utf-8",
      "favicon-32x32.png": "image/png",
    };
    for (const [file, type] of Object.entries(types)) {
      const r = await get(`/api/docs/${file}`);
      expect(r.headers.get("content-type"), file).toBe(type);
      expect(r.headers.get("cache-control"), file).toBe("public, max-age=86400");
    }
    for (const p of [
      "index.html",
      "package.json",
      "swagger-ui.js",
      "oauth2-redirect.html",
      "..%2Fpackage.json",
    ]) {
      const r = await get(`/api/docs/${p}`);
      expect(r.status, p).toBe(404);
      expect(await r.json(), p).toMatchObject({ error: { code: "not_found" } });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// The page in Chromium, driven over the DevTools protocol (Node's own WebSocket): it renders every
// operation, and the browser reports no error, no policy violation and no request to another origin.

const CHROMIUM = "/usr/bin/chromium";

interface Cdp {
  send(method: string, params?: object, sessionId?: string): Promise<Record<string, unknown>>;
  events: { method: string; params: Record<string, unknown> }[];
  close(): void;
}

async function launchChromium(profile: string): Promise<{ cdp: Cdp; child: ChildProcess }> {
  const child = spawn(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const endpoint = await new Promise<string>((resolve, reject) => {
    let stderr = "";
    const timer = setTimeout(() => reject(new Error(`chromium did not start: ${stderr}`)), 20_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  const ws = new WebSocket(endpoint);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const pending = new Map<number, (m: { result?: Record<string, unknown>; error?: unknown }) => void>();
  const events: Cdp["events"] = [];
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data));
    if (m.id !== undefined) pending.get(m.id)?.(m);
    else events.push(m);
  };
  const cdp: Cdp = {
    send(method, params = {}, sessionId) {
      const msg = { id: ++id, method, params, ...(sessionId ? { sessionId } : {}) };
      return new Promise((resolve, reject) => {
        pending.set(msg.id, (m) =>
          m.error ? reject(new Error(JSON.stringify(m.error))) : resolve(m.result ?? {}),
        );
        ws.send(JSON.stringify(msg));
      });
    },
    events,
    close: () => ws.close(),
  };
  return { cdp, child };
}

describe("the page in Chromium", () => {
  // about 13 s, and must be: a real Chromium starts, renders Swagger UI's 30-odd operations and opens each one
  // (parameters, schemas, highlighted examples) under the page's CSP
  it("renders every documented operation under its policy, loading only from this server", async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: run scripts/system-deps.sh as root (Debian package chromium)`);
    const profile = mkdtempSync(path.join(tmpdir(), "sidecars-docs-chromium-"));
    const { cdp, child } = await launchChromium(profile);
    try {
      const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = (await cdp.send("Target.attachToTarget", { targetId, flatten: true })) as {
        sessionId: string;
      };
      for (const domain of ["Runtime", "Log", "Network", "Page"])
        await cdp.send(`${domain}.enable`, {}, sessionId);
      await cdp.send("Page.navigate", { url: `${base}/api/docs` }, sessionId);
      const evaluate = async (expression: string) =>
        ((await cdp.send("Runtime.evaluate", { expression }, sessionId)) as { result: { value: unknown } })
          .result.value;

      const operations = Object.values(doc.paths ?? {}).flatMap((item) =>
        ["get", "put", "post", "delete", "patch"].filter((m) => (item as Record<string, unknown>)[m]),
      ).length;
      let rendered = 0;
      // a loaded machine (the whole suite on 2 cores) renders the page's 30-odd operations in seconds
      for (let i = 0; i < 300 && rendered !== operations; i++) {
        await new Promise((r) => setTimeout(r, 100));
        rendered = Number(await evaluate("document.querySelectorAll('.opblock').length"));
      }
      expect(rendered).toBe(operations);
      // open every operation: parameters, schemas and highlighted examples render under the policy too
      await evaluate("document.querySelectorAll('.opblock-summary-control').forEach((b) => b.click())");
      let opened = 0;
      for (let i = 0; i < 300 && opened !== operations; i++) {
        await new Promise((r) => setTimeout(r, 100));
        opened = Number(await evaluate("document.querySelectorAll('.opblock-body').length"));
      }
      expect(opened).toBe(operations);
      await new Promise((r) => setTimeout(r, 300)); // late images, late errors

      const requested = cdp.events
        .filter((e) => e.method === "Network.requestWillBeSent")
        .map((e) => (e.params.request as { url: string }).url);
      expect(requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith("data:"))).toEqual([]);
      expect(requested).toContain(`${base}/api/docs/openapi.json`);
      const complaints = cdp.events
        .filter(
          (e) =>
            e.method === "Runtime.exceptionThrown" ||
            (e.method === "Log.entryAdded" &&
              ["error", "warning"].includes(String((e.params.entry as { level: string }).level))) ||
            (e.method === "Runtime.consoleAPICalled" && ["error", "warning"].includes(String(e.params.type))),
        )
        .map((e) => JSON.stringify(e.params).slice(0, 300));
      expect(complaints).toEqual([]);
    } finally {
      cdp.close();
      child.kill("SIGKILL");
      // chromium's helpers may still be writing into the profile for a moment after it is killed
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    }
  }, 90_000);
});
