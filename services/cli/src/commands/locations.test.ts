import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { projectRoot } from "#common/paths.ts";
import { runSidecars, runSidecarsOnTerminal } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { parseDuration } from "../durations.ts";

/** `sidecars locations purge`, run as the operator runs it (bin/sidecars.js) against this file's database. */

const DAY = 86_400_000;

// two domains configured, as an operator would
const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-locations-config-"));
cpSync(path.join(projectRoot, "config"), configDir, { recursive: true });
const testConfig = JSON.parse(readFileSync(path.join(configDir, "test.json"), "utf8"));
testConfig.domains = { ...testConfig.domains, "oyo.test": {}, "other.test": {} };
writeFileSync(path.join(configDir, "test.json"), JSON.stringify(testConfig));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const sidecars = (args: string[]) =>
  runSidecars(args, { env: { DATABASE_URL: db.url, CONFIG_DIR: configDir } });

/** Rows of `domain`/`node`, each `age` days (and a few minutes) old. */
async function seed(rows: [domain: string, node: string, ageDays: number][]): Promise<void> {
  for (const [i, [domain, node, age]] of rows.entries()) {
    await db.pool.query(
      `INSERT INTO locations (domain, node, reported_at, latitude, longitude, app_type, app_version)
       VALUES ($1, $2, now() - make_interval(days => $3, mins => $4), 1, 2, 'android', '1.0')`,
      [domain, node, age, i],
    );
  }
}

async function remaining(): Promise<string[]> {
  const r = await db.pool.query<{ row: string }>(
    `SELECT domain || ' ' || node || ' ' || extract(day FROM now() - reported_at)::int AS row
     FROM locations ORDER BY domain, node, reported_at`,
  );
  return r.rows.map((x) => x.row);
}

beforeEach(async () => {
  await db.pool.query("DELETE FROM locations");
  await seed([
    ["oyo.test", "3069001", 400],
    ["oyo.test", "3069001", 91],
    ["oyo.test", "3069001", 89],
    ["oyo.test", "3069001", 0],
    ["oyo.test", "3069002", 120],
    ["other.test", "3069001", 100],
    ["other.test", "3069003", 10],
  ]);
});

describe("sidecars locations purge", () => {
  it("deletes exactly the reports older than the duration, in batches, and prints the count", async () => {
    const r = await sidecars(["locations", "purge", "--older-than", "90d", "--batch", "2"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^deleted 4 location report\(s\) dated before \d{4}-\d\d-\d\dT[\d:.]+Z\n$/);
    expect(r.stderr).toBe(""); // no progress bar without a terminal
    expect(await remaining()).toEqual(["other.test 3069003 10", "oyo.test 3069001 89", "oyo.test 3069001 0"]);
    const again = await sidecars(["locations", "purge", "--older-than", "90d"]);
    expect(again.stdout).toMatch(/^deleted 0 location report\(s\)/);
  });

  it("counts without deleting on --dry-run, and keeps to one domain with --domain", async () => {
    const dry = await sidecars(["locations", "purge", "--older-than", "2160h", "--dry-run"]);
    expect(dry.stdout).toMatch(/^would delete 4 location report\(s\) dated before /);
    expect(await remaining()).toHaveLength(7);

    const one = await sidecars(["locations", "purge", "--older-than", "12w", "--domain", "other.test"]);
    expect(one.stdout).toMatch(/^deleted 1 location report\(s\) dated before \S+ in other\.test\n$/);
    expect(await remaining()).toEqual([
      "other.test 3069003 10",
      "oyo.test 3069001 400",
      "oyo.test 3069001 91",
      "oyo.test 3069001 89",
      "oyo.test 3069001 0",
      "oyo.test 3069002 120",
    ]);
    const minutes = await sidecars(["locations", "purge", "--older-than", "30m", "--domain", "oyo.test"]);
    expect(minutes.stdout).toMatch(/^deleted 4 location report\(s\)/);
    expect(await remaining()).toEqual(["other.test 3069003 10", "oyo.test 3069001 0"]);
  });

  it("refuses a bad duration, batch or domain with one line and exit 2 (1 for an unknown domain), deleting nothing", async () => {
    for (const bad of ["90", "90x", "-5d", "0d", "d", "1.5d", "90 days"]) {
      const r = await sidecars(["locations", "purge", "--older-than", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toBe(
        `sidecars: --older-than: "${bad}" is not a duration: write a positive whole number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 90d\n`,
      );
    }
    const batch = await sidecars(["locations", "purge", "--older-than", "1d", "--batch", "0"]);
    expect(batch).toMatchObject({
      code: 2,
      stderr: 'sidecars: --batch: "0" is not a whole number from 1 to 100000\n',
    });
    const domain = await sidecars(["locations", "purge", "--older-than", "1d", "--domain", "nowhere.test"]);
    expect(domain.code).toBe(1);
    expect(domain.stderr).toMatch(/^sidecars: unknown domain "nowhere\.test" \(configured: .*\)/);
    const missing = await sidecars(["locations", "purge"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--older-than <duration>' not specified/);
    expect(await remaining()).toHaveLength(7);
  });

  it("draws a progress bar when a person watches (a terminal)", async () => {
    const out = await runSidecarsOnTerminal(["locations", "purge", "--older-than", "90d", "--batch", "1"], {
      DATABASE_URL: db.url,
      CONFIG_DIR: configDir,
    });
    expect(out).toMatch(/purge \[=+\] 4\/4 reports/);
    expect(out).toMatch(/deleted 4 location report\(s\)/);
  });
});

describe("parseDuration", () => {
  it("reads minutes, hours, days and weeks", () => {
    expect(parseDuration("30m")).toBe(30 * 60_000);
    expect(parseDuration("12h")).toBe(12 * 3_600_000);
    expect(parseDuration("90d")).toBe(90 * DAY);
    expect(parseDuration("2w")).toBe(14 * DAY);
  });
});
