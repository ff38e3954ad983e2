import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import {
  createRuntimeDomains,
  deleteRuntimeDomain,
  insertRuntimeDomain,
  readRuntimeDomains,
  replaceDomains,
  saveRuntimeDomain,
  updateRuntimeDomain,
} from "./runtime-domains.ts";
import type { Config } from "./schema.ts";

/**
 * Domains kept in the database, on a real PostgreSQL: the files' domains and the rows served together, the
 * files winning with a warning once per change, rows that do not parse left out, the checks across the config
 * made on the whole set, and every change heard through NOTIFY.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query("DELETE FROM runtime_domains");
});

const env = { APP_ENV: "test" };
const KEY = "0".repeat(64);

function runtime(overrides?: Record<string, unknown>) {
  const rec = recordingLogger({ level: "info" });
  const domains = createRuntimeDomains({
    load: { env, ...(overrides ? { overrides } : {}) },
    pool: db.pool,
    log: rec.log,
  });
  return { domains, rec, said: (re: RegExp) => rec.lines.filter((l) => re.test(String(l.msg))) };
}

describe("runtime domains", () => {
  it("serves the rows with the files' domains, the files winning over a row of the same name, said once per change", async () => {
    await insertRuntimeDomain(db.pool, "db.test", { passwordFormat: "plain", scramIterations: 4096 }, "test");
    // config/test.json serves localhost as a `plain` domain
    await insertRuntimeDomain(db.pool, "localhost", { passwordFormat: "scram" }, "test");
    const { domains, said } = runtime();

    const config = await domains.load();
    expect(Object.keys(config.domains).sort()).toEqual(["db.test", "localhost"]);
    expect(config.domains["db.test"]).toMatchObject({ passwordFormat: "plain", scramIterations: 4096 });
    expect(config.domains.localhost?.passwordFormat).toBe("plain");
    const hidden = /^domain localhost is in the config files and in the database: the config files win/;
    expect(said(hidden)).toHaveLength(1);
    expect(said(hidden)[0]).toMatchObject({ level: 40, domain: "localhost" });

    await domains.load();
    await updateRuntimeDomain(db.pool, "db.test", { passwordFormat: "scram" }, "test");
    await domains.load();
    expect(said(hidden)).toHaveLength(1); // nothing changed about localhost's row
    await updateRuntimeDomain(db.pool, "localhost", { passwordFormat: "plain" }, "test");
    await domains.load();
    expect(said(hidden)).toHaveLength(2);

    const view = await domains.view();
    expect(view.domains.map((d) => [d.name, d.source, d.row?.updatedBy])).toEqual([
      ["db.test", "database", "test"],
      ["localhost", "config", "test"],
    ]);
    expect(view.hidden.map((r) => r.name)).toEqual(["localhost"]);
    expect(view.problems).toEqual([]);
  });

  it("leaves out a row that does not parse, saying why with the schema's message, and serves the rest", async () => {
    await db.pool.query(
      `INSERT INTO runtime_domains (name, config) VALUES ('bad.test', '{"passwordFormat": "md5"}'), ('good.test', '{}')`,
    );
    const { domains, said } = runtime();
    const config = await domains.load();
    expect(Object.keys(config.domains).sort()).toEqual(["good.test", "localhost"]);
    const lines = said(/^domain bad\.test: its database row is not served/);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(
      /domains\.bad\.test\.passwordFormat: Invalid option: expected one of "plain"\|"scram"/,
    );
    await domains.load();
    expect(said(/^domain bad\.test/)).toHaveLength(1);
    const view = await domains.view();
    expect(view.invalid.map((i) => i.row.name)).toEqual(["bad.test"]);
  });

  it("checks an entry and a name with the config file's schema and messages", async () => {
    const { domains } = runtime();
    expect(await domains.check("x.test", { passwordFormat: "md5", keepCleartext: true })).toEqual({
      ok: false,
      problems: ['domains.x.test.passwordFormat: Invalid option: expected one of "plain"|"scram"'],
    });
    expect(await domains.check("x.test", { keepCleartext: true })).toEqual({
      ok: false,
      problems: ["domains.x.test.keepCleartext: only a `plain` domain may keep cleartext passwords"],
    });
    expect(await domains.check("x.test", { colour: "red" })).toMatchObject({
      ok: false,
      problems: [
        expect.stringMatching(
          /^domains\.x\.test\.colour: unknown key: remove it, or use one of authenticator, /,
        ),
      ],
    });
    expect(await domains.check("Not A Domain", {})).toEqual({
      ok: false,
      problems: ['"Not A Domain": a domain is lower-case letters, digits, dots, dashes'],
    });
    const ok = await domains.check("x.test", { passwordFormat: "plain" });
    expect(ok.ok && ok.config.domains["x.test"]?.passwordFormat).toBe("plain");
  });

  it("checks what the files name against the files' and the database's domains together", async () => {
    // an API key limited to a domain that lives in the database only
    const overrides = {
      services: {
        httpUtility: { apiKeys: { partner: { sha256: KEY, scopes: ["push"], domain: "db.test" } } },
      },
    };
    const { domains } = runtime(overrides);
    await expect(domains.load()).rejects.toThrow(
      /services\.httpUtility\.apiKeys\.partner\.domain: db\.test is not a domain of `domains`/,
    );
    expect((await domains.check("db.test", {})).ok).toBe(true);
    await insertRuntimeDomain(db.pool, "db.test", {}, "test");
    expect(Object.keys((await domains.load()).domains)).toContain("db.test");
    // removing it would leave the key naming nothing: refused, saying which key
    expect(await domains.check("db.test", undefined)).toMatchObject({
      ok: false,
      problems: [
        expect.stringMatching(/^services\.httpUtility\.apiKeys\.partner\.domain: db\.test is not a domain/),
      ],
    });
    expect((await domains.view()).problems).toEqual([]);
  });

  it("hears every change within a second, and one made before it listened", async () => {
    const { domains } = runtime();
    const config = await domains.load();
    // made after the load and before LISTEN: heard once the subscription is in place
    await insertRuntimeDomain(db.pool, "early.test", {}, "test");
    const seen: Config[] = [];
    const watch = domains.watch(db.listener, (next) => {
      seen.push(next);
    });
    try {
      await vi.waitFor(() => expect(seen.at(-1)?.domains["early.test"]).toBeDefined(), { timeout: 5000 });

      let started = performance.now();
      await saveRuntimeDomain(db.pool, "late.test", { passwordFormat: "plain" }, "test");
      await vi.waitFor(() => expect(seen.at(-1)?.domains["late.test"]?.passwordFormat).toBe("plain"), {
        timeout: 5000,
        interval: 10,
      });
      expect(performance.now() - started).toBeLessThan(1000);

      started = performance.now();
      await deleteRuntimeDomain(db.pool, "late.test");
      await vi.waitFor(() => expect(seen.at(-1)?.domains["late.test"]).toBeUndefined(), {
        timeout: 5000,
        interval: 10,
      });
      expect(performance.now() - started).toBeLessThan(1000);

      // in place: what holds the config object sees the domains of now
      replaceDomains(config, seen.at(-1) as Config);
      expect(Object.keys(config.domains).sort()).toEqual(["early.test", "localhost"]);
    } finally {
      watch.close();
    }
  });

  it("reload() (SIGHUP) rejects when the domains cannot be loaded, and keeps serving what it had", async () => {
    const overrides = {
      services: {
        httpUtility: { apiKeys: { partner: { sha256: KEY, scopes: ["push"], domain: "db.test" } } },
      },
    };
    await insertRuntimeDomain(db.pool, "db.test", {}, "test");
    const { domains, said } = runtime(overrides);
    await domains.load();
    const seen: Config[] = [];
    const watch = domains.watch(db.listener, (next) => {
      seen.push(next);
    });
    try {
      // by hand, past the CLI's check: the key now names nothing
      await db.pool.query("DELETE FROM runtime_domains WHERE name = 'db.test'");
      // heard through NOTIFY, or by the look taken once LISTEN is in place (on a loaded machine, both)
      await vi.waitFor(() => expect(said(/^domains not reloaded/).length).toBeGreaterThan(0), {
        timeout: 5000,
      });
      await expect(watch.reload()).rejects.toThrow(/apiKeys\.partner\.domain: db\.test is not a domain/);
      expect(seen).toEqual([]);
    } finally {
      watch.close();
    }
  });

  it("reads what it wrote", async () => {
    expect(await saveRuntimeDomain(db.pool, "a.test", { cacheTtlSeconds: 5 }, "ops")).toBe(true);
    expect(await saveRuntimeDomain(db.pool, "a.test", { cacheTtlSeconds: 6 }, "ops2")).toBe(false);
    expect(await insertRuntimeDomain(db.pool, "a.test", {}, "ops")).toBe(false);
    expect(await updateRuntimeDomain(db.pool, "b.test", {}, "ops")).toBe(false);
    const rows = await readRuntimeDomains(db.pool);
    expect(rows).toMatchObject([{ name: "a.test", config: { cacheTtlSeconds: 6 }, updatedBy: "ops2" }]);
    expect(await deleteRuntimeDomain(db.pool, "a.test")).toBe(true);
    expect(await deleteRuntimeDomain(db.pool, "a.test")).toBe(false);
  });
});
