import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { recordRetentionRun } from "#common/retention-runs.ts";
import { type StartedService, startService } from "#common/service.ts";
import type { Jid } from "#common/users/jid.ts";
import { seedUser } from "#common/users/lifecycle-test-fixtures.ts";
import { launchBrowser } from "../../../../test/support/browser.ts";
import { testConfigDir } from "../../../../test/support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { buddiesService } from "../service.ts";

/**
 * The operator console (the buddies admin page's Users, Domains, Lockouts and Retention sections) in Debian's
 * Chromium, against the real buddies service started as main.ts starts it, on a real PostgreSQL and fs storage:
 * what an operator clicks and what it changes in the database.
 */

const KEY = "console-admin-key-0123456789";
const ALICE: Jid = { node: "306900000001", domain: "oyo.test" };
const BOB: Jid = { node: "306900000002", domain: "oyo.test" };
const text = (j: Jid) => `${j.node}@${j.domain}`;

let db: TestDatabase;
let dir: string;
let configDir: string;
let storage: Storage;
let service: StartedService;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-console-"));
  configDir = testConfigDir((t) => {
    t.domains = { ...(t.domains as object), "oyo.test": { scramIterations: 4096 } };
    t.media = { storage: { kind: "fs", options: { root: path.join(dir, "media") } } };
    t.services.buddies = {
      ...t.services.buddies,
      admins: { ops: { sha256: createHash("sha256").update(KEY).digest("hex") } },
    };
  }, dir);
  const env = { APP_ENV: "test", CONFIG_DIR: configDir, DATABASE_URL: db.url };
  const config = loadConfig({ env });
  storage = await createStorage(config.media.storage);
  const alice = await seedUser(db.pool, storage, ALICE);
  await seedUser(db.pool, storage, BOB);
  // alice's password guessed from one address until it is refused, through the auth core's own guard
  const core = await createAuthCore({
    config,
    pool: db.pool,
    listener: db.listener,
    log: pino({ level: "silent" }),
  });
  for (let i = 0; i < config.services.auth.guard.maxFailures; i++) {
    await core.checkAppLogin(ALICE, `not ${alice.password}`, "203.0.113.7");
  }
  await core.close();
  await recordRetentionRun(db.pool, {
    trigger: "schedule",
    startedAt: new Date(Date.now() - 60_000),
    deleted: { push_notifications: 5, locations: 0 },
  });

  service = await startService(buddiesService, env);
  browser = await launchBrowser();
  context = await browser.newContext({
    httpCredentials: { username: "ops", password: KEY },
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.on("console", (m) => {
    // an API answer the test provokes on purpose (the refused domain entry) is logged as a failed load
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
  });
  page.on("pageerror", (err) => problems.push(err.message));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await service?.shutdown();
  await storage?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const open = async (section: string) => {
  await page.goto(`${service.server.url}/#${section}`);
  await page.locator(`#section-${section}`).waitFor({ state: "visible" });
};
const userRow = (j: Jid) => page.locator(`#users tr[data-jid="${text(j)}"]`);
const notice = () => page.locator("#notice");

describe("the operator console", () => {
  it("finds users, shows one, disables and enables, exports and removes, as the database then says", async () => {
    await open("users");
    await expect.poll(() => userRow(ALICE).count()).toBe(1);
    expect(await userRow(BOB).count()).toBe(1);
    await page.locator("#users-search input[name=search]").fill("0002");
    await page.locator("#users-search button[type=submit]").click();
    await expect.poll(() => userRow(ALICE).count()).toBe(0);
    expect(await userRow(BOB).count()).toBe(1);
    await page.locator("#users-search input[name=search]").fill("");
    await page.locator("#users-search button[type=submit]").click();
    await expect.poll(() => userRow(ALICE).count()).toBe(1);

    await userRow(ALICE).getByRole("button", { name: "Details" }).click();
    await expect.poll(() => page.locator("#user-details-title").textContent()).toBe(text(ALICE));
    expect(await page.locator("#user-details-list").textContent()).toContain("Rows in locations");

    await userRow(ALICE).getByRole("button", { name: "Disable" }).click();
    await expect.poll(() => userRow(ALICE).locator(".state").textContent()).toBe("disabled");
    const disabled = await db.pool.query("SELECT disabled_at FROM web_users WHERE node = $1", [ALICE.node]);
    expect(disabled.rows[0].disabled_at).not.toBeNull();
    await userRow(ALICE).getByRole("button", { name: "Enable" }).click();
    await expect.poll(() => userRow(ALICE).locator(".state").textContent()).toBe("active");

    const download = page.waitForEvent("download");
    await userRow(ALICE).getByRole("link", { name: "Export" }).click();
    const file = await (await download).path();
    const exported = JSON.parse(await readFile(file, "utf8"));
    expect(JSON.stringify(exported)).toContain(ALICE.node);

    page.once("dialog", (d) => d.accept());
    await userRow(BOB).getByRole("button", { name: "Remove" }).click();
    await expect.poll(() => userRow(BOB).count()).toBe(0);
    expect(await notice().textContent()).toContain(`${text(BOB)} removed`);
    const left = await db.pool.query("SELECT 1 FROM web_users WHERE node = $1", [BOB.node]);
    expect(left.rowCount).toBe(0);
  });

  it("adds a domain as JSON, served at once, and removes it; a bad entry is refused in the dialog", async () => {
    await open("domains");
    const row = (name: string) => page.locator(`#domains tr[data-domain="${name}"]`);
    await expect.poll(() => row("oyo.test").count()).toBe(1);
    expect(await row("oyo.test").textContent()).toContain("config");

    await page.locator("#domain-add").click();
    await page.locator("#domain-form input[name=name]").fill("console.example");
    await page.locator("#domain-form textarea[name=entry]").fill('{ "passwordFormat": "sometimes" }');
    await page.locator("#domain-form button[type=submit]").click();
    await expect.poll(() => page.locator("#domain-error").textContent()).toContain("passwordFormat");
    await page.locator("#domain-form textarea[name=entry]").fill('{ "passwordFormat": "plain" }');
    await page.locator("#domain-form button[type=submit]").click();
    await expect.poll(() => row("console.example").count()).toBe(1);
    expect(await row("console.example").textContent()).toContain("database");
    expect(await row("console.example").textContent()).toContain("plain");
    const stored = await db.pool.query("SELECT config FROM runtime_domains WHERE name = 'console.example'");
    expect(stored.rows[0].config).toEqual({ passwordFormat: "plain" });

    page.once("dialog", (d) => d.accept());
    await row("console.example").getByRole("button", { name: "Remove" }).click();
    await expect.poll(() => row("console.example").count()).toBe(0);
    expect((await db.pool.query("SELECT 1 FROM runtime_domains")).rowCount).toBe(0);
  });

  it("shows the lockouts in force, one user's, and unlocks them", async () => {
    await open("lockouts");
    await expect
      .poll(() => page.locator("#lockouts-summary").textContent())
      .toMatch(/^1 user\/address pair\(s\) and 0 address\(es\) refused now \(the last until /);
    await page.locator("#lockouts-lookup input[name=jid]").fill(text(ALICE));
    await page.locator("#lockouts-lookup button[type=submit]").click();
    await expect
      .poll(() => page.locator("#lockouts-user-text").textContent())
      .toMatch(new RegExp(`^${text(ALICE)}: refused from 1 address\\(es\\) until `));
    await page.locator("#lockouts-unlock").click();
    await expect
      .poll(() => page.locator("#lockouts-summary").textContent())
      .toMatch(/^0 user\/address pair\(s\) and 0 address\(es\) refused now;/);
    const left = await db.pool.query("SELECT 1 FROM rate_limits WHERE key LIKE 'loginFailures:%'");
    expect(left.rowCount).toBe(0);
  });

  it("shows the retention settings and the last runs", async () => {
    await open("retention");
    await expect.poll(() => page.locator("#retention-schedule").textContent()).toContain("17 * * * *");
    expect(await page.locator("#retention-kinds").textContent()).toContain("pushNotifications");
    const run = page.locator("#retention-runs tbody tr").first();
    expect(await run.textContent()).toContain("push_notifications 5");
    expect(await run.textContent()).toContain("schedule");
  });

  it("ran without a script error or a Content-Security-Policy violation", () => {
    expect(problems).toEqual([]);
  });
});
