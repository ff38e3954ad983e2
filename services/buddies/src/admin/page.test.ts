import { mkdirSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import express, { type Response, Router } from "express";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "../../../../test/support/browser.ts";
import { ROOT } from "../../../../test/support/processes.ts";
import { adminPageRouter, CONTENT_SECURITY_POLICY } from "./page.ts";

// The page router alone, with a stand-in for the admin API: this file checks what the page does with the
// API's answers. The end-to-end suite drives the same page against the real service.

interface Call {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
const HOSTILE = `<img src=x onerror="document.title='pwned'"> connection refused`;

function buddy(jid: string, fields: Record<string, unknown>) {
  const [username = "", domain = ""] = jid.split("@");
  return {
    jid,
    domain,
    username,
    kind: "echo",
    source: "table",
    state: "online",
    stateSince: ago(300),
    connectedSince: ago(300),
    lastError: null,
    messagesIn: 1234,
    messagesOut: 1200,
    reconnects: 0,
    stopped: false,
    rooms: [],
    owner: { id: "r1", host: "app-1", pid: 4242 },
    ...fields,
  };
}

/** The admin API as the page sees it: answers from memory, records every call, pushes SSE on demand. */
function fakeApi() {
  const buddies = [
    buddy("alice@example.org", {
      kind: "welcome",
      source: "config",
      rooms: ["lobby@conference.example.org"],
    }),
    buddy("bob@example.org", { state: "backoff", stateSince: ago(40), lastError: HOSTILE, reconnects: 3 }),
    buddy("carol@example.org", { state: "stopped", stopped: true, connectedSince: null }),
    buddy("dave@example.org", { state: "unowned", owner: null, connectedSince: null }),
  ];
  const runners = [
    {
      id: "r1",
      host: "app-1",
      pid: 4242,
      startedAt: ago(900),
      heartbeatAt: ago(2),
      adminUrl: null,
      live: true,
    },
    {
      id: "r2",
      host: "app-2",
      pid: 77,
      startedAt: ago(9000),
      heartbeatAt: ago(600),
      adminUrl: null,
      live: false,
    },
  ];
  const calls: Call[] = [];
  const streams = new Set<Response>();
  const router = Router();
  const api = { buddies, calls, eventsDown: false, push, unavailable, dropStreams, router };
  const snapshot = () => JSON.stringify({ buddies, runners });
  function push() {
    for (const res of streams) res.write(`event: buddies\ndata: ${snapshot()}\n\n`);
  }
  function unavailable() {
    for (const res of streams) res.write("event: unavailable\ndata: {}\n\n");
  }
  function dropStreams() {
    for (const res of streams) res.end();
    streams.clear();
  }
  const find = (jid: string) => buddies.find((b) => b.jid === jid);
  const error = (res: Response, status: number, code: string, message: string) =>
    res.status(status).json({ error: { code, message } });

  router.use(express.json());
  router.use((req, _res, next) => {
    calls.push({ method: req.method, path: req.path, contentType: req.get("content-type"), body: req.body });
    next();
  });
  router.get("/buddies", (_req, res) => {
    res.type("application/json").send(snapshot());
  });
  router.get("/events", (req, res) => {
    if (api.eventsDown) return error(res, 503, "unavailable", "restarting");
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    res.write(`retry: 500\nevent: buddies\ndata: ${snapshot()}\n\n`);
    streams.add(res);
    req.on("close", () => streams.delete(res));
  });
  router.get("/kinds", (_req, res) => {
    res.json({
      kinds: [
        { name: "echo", description: "answers with what it is sent", source: "builtin" },
        { name: "welcome", description: "greets new users", source: "builtin" },
      ],
    });
  });
  router.get("/buddies/:jid/logs", (req, res) => {
    if (!find(req.params.jid)) return error(res, 404, "not_found", "No such buddy.");
    res.json({
      lines: [
        { time: ago(30), level: "info", msg: "connected" },
        { time: ago(10), level: "warn", msg: "<b>not bold</b> slow stanza" },
      ],
    });
  });
  router.post("/buddies/:jid/:action", (req, res) => {
    const b = find(req.params.jid);
    if (!b) return error(res, 404, "not_found", "No such buddy.");
    if (b.owner === null) return error(res, 409, "not_owned", `${b.jid} has no live runner: start a runner.`);
    const action = req.params.action;
    if (action === "stop") Object.assign(b, { state: "stopped", stopped: true, stateSince: ago(0) });
    else Object.assign(b, { state: "connecting", stopped: false, stateSince: ago(0) });
    res.status(202).json({ buddy: b });
  });
  router.put("/buddies/:jid", (req, res) => {
    const old = find(req.params.jid);
    const next = buddy(req.params.jid, {
      ...old,
      kind: req.body.kind,
      rooms: req.body.rooms,
      state: "connecting",
    });
    if (old) Object.assign(old, next);
    else buddies.push(next);
    res.status(old ? 200 : 201).json({ buddy: next });
  });
  router.delete("/buddies/:jid", (req, res) => {
    const i = buddies.findIndex((b) => b.jid === req.params.jid);
    buddies.splice(i, 1);
    res.status(204).end();
  });
  return api;
}

let server: Server;
let base: string;
let fake: ReturnType<typeof fakeApi>;

beforeAll(async () => {
  fake = fakeApi();
  const app = express();
  app.use("/admin", adminPageRouter());
  app.use("/api", fake.router);
  server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  fake?.dropStreams();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const file = (name: string) => readFileSync(new URL(`./page/${name}`, import.meta.url), "utf8");

describe("adminPageRouter", () => {
  it.each([
    ["/admin/", "text/html; charset=utf-8", "index.html"],
    ["/admin/admin.js", "text/javascript; charset=utf-8", "admin.js"],
    ["/admin/console.js", "text/javascript; charset=utf-8", "console.js"],
    ["/admin/common.js", "text/javascript; charset=utf-8", "common.js"],
    ["/admin/admin.css", "text/css; charset=utf-8", "admin.css"],
  ])("serves %s as %s with the page's security headers", async (url, type, name) => {
    const res = await fetch(base + url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(type);
    expect(res.headers.get("content-security-policy")).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(CONTENT_SECURITY_POLICY).toBe(res.headers.get("content-security-policy"));
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(await res.text()).toBe(file(name));
  });

  it("redirects to the trailing slash the page's relative URLs need", async () => {
    const res = await fetch(`${base}/admin?x=1`, { redirect: "manual" });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("admin/?x=1");
  });

  it("serves a page with nothing inline and nothing from elsewhere", () => {
    const html = file("index.html");
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=|https?:/i);
    for (const script of ["admin.js", "console.js", "common.js"]) {
      expect(file(script)).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    }
  });

  it("answers 404 for any other file", async () => {
    expect((await fetch(`${base}/admin/page.ts`)).status).toBe(404);
  });
});

describe("the page in Chromium", () => {
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const foreignRequests: string[] = [];
  // URLs the tests make fail on purpose: Chromium logs each failed load as a console error
  const expectedFailures = new Set<string>();

  const row = (jid: string) => page.locator(`tr[data-jid="${jid}"]`);
  const stateOf = (jid: string) => row(jid).locator(".state").textContent();
  const callsTo = (method: string, p: string) =>
    fake.calls.filter((c) => c.method === method && c.path === p);

  beforeAll(async () => {
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1600, height: 600 } });
    // CSP violations are events in the page: record them from before the first script runs
    await page.addInitScript({
      content: `window.__csp = []; document.addEventListener("securitypolicyviolation",
        (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`,
    });
    page.on("console", (msg) => {
      if (msg.type() === "error" && !expectedFailures.has(msg.location().url)) {
        consoleErrors.push(`${msg.text()} (${msg.location().url})`);
      }
    });
    page.on("pageerror", (err) => consoleErrors.push(err.message));
    page.on("request", (req) => {
      if (!req.url().startsWith(`${base}/`) && !req.url().startsWith("data:"))
        foreignRequests.push(req.url());
    });
    await page.goto(`${base}/admin/`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("lists every buddy with its state, counters and owner, writing data as text", async () => {
    await expect.poll(() => page.locator("tbody tr").count()).toBe(4);
    expect(await stateOf("alice@example.org")).toBe("online");
    expect(await row("alice@example.org").locator(".state").getAttribute("class")).toBe("state state-online");
    expect(await stateOf("bob@example.org")).toBe("backoff");
    expect(await stateOf("dave@example.org")).toBe("unowned");
    const alice = await row("alice@example.org").locator("td").allTextContents();
    expect(alice.slice(0, 9)).toEqual([
      "alice@example.org config",
      "welcome",
      "online",
      "5 minutes ago",
      "",
      "1,234",
      "1,200",
      "0",
      "app-1:4242",
    ]);
    expect(await row("dave@example.org").locator("td").nth(8).textContent()).toBe("—");
    expect(await page.locator("#summary").textContent()).toBe("1 online of 4 buddies · 1 of 2 runners live");
    // the hostile error text is shown as it is, not parsed into an element
    expect(await row("bob@example.org").locator("td.error").textContent()).toBe(HOSTILE);
    expect(await page.locator("tbody img").count()).toBe(0);
    expect(await page.title()).toBe("xmpp-sidecars console");
    // a stopped buddy offers Start instead of Stop
    expect(await row("carol@example.org").getByRole("button", { name: "Start", exact: true }).count()).toBe(
      1,
    );
    expect(await row("carol@example.org").getByRole("button", { name: "Stop", exact: true }).count()).toBe(0);
  });

  it("changes a row live when the event stream says so", async () => {
    Object.assign(fake.buddies[1] ?? {}, { state: "online", lastError: null, stateSince: ago(0) });
    fake.push();
    await expect.poll(() => stateOf("bob@example.org")).toBe("online");
    expect(await page.locator("#summary").textContent()).toBe("2 online of 4 buddies · 1 of 2 runners live");
  });

  it("restarts a buddy with POST …/restart and shows the answer", async () => {
    await row("alice@example.org").getByRole("button", { name: "Restart", exact: true }).click();
    await expect.poll(() => callsTo("POST", "/buddies/alice%40example.org/restart").length).toBe(1);
    const [call] = callsTo("POST", "/buddies/alice%40example.org/restart");
    expect(call?.contentType).toBe("application/json");
    expect(call?.body).toEqual({});
    await expect.poll(() => stateOf("alice@example.org")).toBe("connecting");
    expect(
      await row("alice@example.org").getByRole("button", { name: "Restart", exact: true }).isEnabled(),
    ).toBe(true);
  });

  it("stops and starts a buddy, offering the other button", async () => {
    await row("bob@example.org").getByRole("button", { name: "Stop", exact: true }).click();
    await expect.poll(() => stateOf("bob@example.org")).toBe("stopped");
    await row("bob@example.org").getByRole("button", { name: "Start", exact: true }).click();
    await expect.poll(() => stateOf("bob@example.org")).toBe("connecting");
    expect(fake.calls.filter((c) => c.method === "POST").map((c) => c.path)).toEqual([
      "/buddies/alice%40example.org/restart",
      "/buddies/bob%40example.org/stop",
      "/buddies/bob%40example.org/start",
    ]);
  });

  it("shows the API's error message in the alert banner", async () => {
    expectedFailures.add(`${base}/api/buddies/dave%40example.org/restart`);
    await row("dave@example.org").getByRole("button", { name: "Restart", exact: true }).click();
    const banner = page.locator("#error");
    await banner.waitFor({ state: "visible" });
    expect(await banner.getAttribute("role")).toBe("alert");
    expect(await banner.locator("#error-text").textContent()).toBe(
      "dave@example.org has no live runner: start a runner.",
    );
    await page.getByRole("button", { name: "Dismiss error" }).click();
    await banner.waitFor({ state: "hidden" });
  });

  it("shows a buddy's recent log lines", async () => {
    await row("alice@example.org").getByRole("button", { name: "Logs", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Logs of alice@example.org" });
    await dialog.waitFor();
    // the dialog opens at once and its lines follow the GET
    await expect
      .poll(() => dialog.locator("li .msg").allTextContents())
      .toEqual(["connected", "<b>not bold</b> slow stanza"]);
    expect(await dialog.locator("li .level").allTextContents()).toEqual(["info", "warn"]);
    await dialog.getByRole("button", { name: "Close" }).click();
    await dialog.waitFor({ state: "hidden" });
  });

  it("adds a buddy with PUT and the form's fields", async () => {
    await page.getByRole("button", { name: "Add buddy" }).click();
    const dialog = page.getByRole("dialog", { name: "Add buddy" });
    await dialog.getByLabel("JID").fill("erin@example.org");
    await expect.poll(() => dialog.locator("select[name=kind] option").count()).toBe(2);
    await dialog.getByLabel("Kind").selectOption("welcome");
    await dialog.locator("select[name=passwordFrom]").selectOption("env");
    await dialog.getByLabel("Name").fill("ERIN_PASSWORD");
    await dialog
      .getByLabel("Rooms, one per line")
      .fill("lobby@conference.example.org\n\n  dev@conference.example.org ");
    await dialog.getByLabel("Options (JSON object)").fill("[1]");
    await dialog.getByRole("button", { name: "Save" }).click();
    expect(await dialog.getByRole("alert").textContent()).toBe("Options: expected a JSON object such as {}.");
    await dialog.getByLabel("Options (JSON object)").fill('{ "greeting": "hi" }');
    await dialog.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => row("erin@example.org").count()).toBe(1);
    expect(callsTo("PUT", "/buddies/erin%40example.org").map((c) => c.body)).toEqual([
      {
        kind: "welcome",
        password: { env: "ERIN_PASSWORD" },
        options: { greeting: "hi" },
        rooms: ["lobby@conference.example.org", "dev@conference.example.org"],
      },
    ]);
    expect(await dialog.isVisible()).toBe(false);
  });

  it("opens the edit dialog with what the buddy says of itself", async () => {
    await row("alice@example.org").getByRole("button", { name: "Edit", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Edit alice@example.org" });
    await dialog.waitFor();
    expect(await dialog.getByLabel("JID").inputValue()).toBe("alice@example.org");
    expect(await dialog.getByLabel("JID").getAttribute("readonly")).not.toBeNull();
    await expect.poll(() => dialog.getByLabel("Kind").inputValue()).toBe("welcome");
    expect(await dialog.getByLabel("Rooms, one per line").inputValue()).toBe("lobby@conference.example.org");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
  });

  it("says live updates are paused while the service cannot read the cluster's state", async () => {
    fake.unavailable();
    await page.locator("#paused").waitFor({ state: "visible" });
    fake.push();
    await page.locator("#paused").waitFor({ state: "hidden" });
  });

  it("removes a buddy with DELETE after confirm()", async () => {
    page.once("dialog", (d) => d.accept());
    await row("erin@example.org").getByRole("button", { name: "Remove", exact: true }).click();
    await expect.poll(() => row("erin@example.org").count()).toBe(0);
    expect(callsTo("DELETE", "/buddies/erin%40example.org")).toHaveLength(1);
  });

  it("falls back to polling while the event stream is down, and says so", async () => {
    expectedFailures.add(`${base}/api/events`);
    fake.eventsDown = true;
    fake.dropStreams();
    await page.locator("#paused").waitFor({ state: "visible" });
    Object.assign(fake.buddies[3] ?? {}, {
      state: "backoff",
      lastError: "connect ECONNREFUSED 192.0.2.5:5222",
    });
    await expect.poll(() => stateOf("dave@example.org"), { timeout: 12_000 }).toBe("backoff");
    fake.eventsDown = false;
    await page.locator("#paused").waitFor({ state: "hidden", timeout: 12_000 });
  }, 30_000);

  it("ran without console errors, CSP violations or requests to other origins", async () => {
    mkdirSync(path.join(ROOT, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, "test-artifacts/buddies-admin-page.png"), fullPage: true });
    expect(await page.evaluate("window.__csp")).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
