import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newKey } from "#common/media/keys.ts";
import { lastRetentionRuns } from "#common/retention-runs.ts";
import { runSidecars } from "../../../../test/support/cli.ts";
import { testConfigDir } from "../../../../test/support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";

/**
 * `sidecars purge`, run as the operator runs it (bin/sidecars.js): the retention of config `retention`,
 * media included (rows and files of an fs storage in a temporary directory).
 */

let db: TestDatabase;
let configDir: string;
let root: string;

beforeAll(async () => {
  db = await createTestDatabase();
  root = await mkdtemp(path.join(tmpdir(), "sidecars-purge-root-"));
  configDir = testConfigDir((t) => {
    t.media = { ...(t.media as object), storage: { kind: "fs", options: { root } } };
    t.retention = { pushNotifications: "30d", smsBudgets: "0", media: "90d", locations: "off" };
  });
});
afterAll(async () => {
  await db.drop();
  await rm(root, { recursive: true, force: true });
  await rm(configDir, { recursive: true, force: true });
});

const sidecars = (args: string[]) =>
  runSidecars(["purge", ...args], { env: { DATABASE_URL: db.url, CONFIG_DIR: configDir } });

const fileOf = (name: string) => path.join(root, name.slice(0, 2), name);

async function picture(ageDays: number): Promise<string> {
  const name = newKey("jpg");
  await mkdir(path.dirname(fileOf(name)), { recursive: true });
  await writeFile(fileOf(name), "bytes");
  await db.pool.query(
    `INSERT INTO attachments (name, domain, node, kind, original_name, content_type, size, sha256, created_at)
     VALUES ($1, 'a.test', 'n', 'picture', 'p.jpg', 'image/jpeg', 5, sha256('x'), now() - make_interval(days => $2))`,
    [name, ageDays],
  );
  return name;
}

async function counts() {
  const r = await db.pool.query<{ n: string; a: string; s: string }>(
    `SELECT (SELECT count(*) FROM push_notifications) n, (SELECT count(*) FROM attachments) a,
            (SELECT count(*) FROM sms_budgets) s`,
  );
  return r.rows[0];
}

describe("sidecars purge", () => {
  it("prints a line per table, counts on --dry-run without deleting, then deletes the same rows and files", async () => {
    await db.pool.query(
      `INSERT INTO push_notifications (id, domain, node, created_at)
       SELECT gen_random_uuid(), 'a.test', 'n', now() - make_interval(days => g, hours => 12) FROM generate_series(25, 34) g`,
    );
    await db.pool.query(
      "INSERT INTO sms_budgets (scope, window_start) VALUES ('global', now() - interval '400 days')",
    );
    const old = await picture(100);
    const recent = await picture(10);

    const dry = await sidecars(["--dry-run"]);
    expect(dry.stderr).toBe("");
    expect(dry.code).toBe(0);
    const lines = dry.stdout.trimEnd().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(
        /^pushNotifications: would delete 5 row\(s\) of push_notifications before \d{4}-/,
      ),
      expect.stringMatching(/^broadcasts: would delete 0 row\(s\) of push_broadcast_deliveries before /),
      expect.stringMatching(/^broadcasts: would delete 0 row\(s\) of push_broadcasts before /),
      expect.stringMatching(/^registrationChallenges: would delete 0 row\(s\) of registration_challenges /),
      expect.stringMatching(/^rateLimits: would delete 0 row\(s\) of rate_limits /),
      expect.stringMatching(/^media: would delete 1 row\(s\) of attachments /),
      expect.stringMatching(
        /^would delete 6 row\(s\) in all; kept for ever \(retention 0\): smsBudgets, locations; pg-boss removes its finished jobs itself after retention.jobs \(7d\)$/,
      ),
    ]);
    expect(await counts()).toEqual({ n: "10", a: "2", s: "1" });
    expect(existsSync(fileOf(old))).toBe(true);

    const run = await sidecars([]);
    expect(run.code).toBe(0);
    expect(run.stdout.replaceAll("deleted", "would delete").replace(/before \S+/g, "")).toBe(
      dry.stdout.replace(/before \S+/g, ""),
    );
    expect(await counts()).toEqual({ n: "5", a: "1", s: "1" });
    expect(existsSync(fileOf(old))).toBe(false);
    expect(existsSync(fileOf(recent))).toBe(true);
    // the run by hand is recorded (the dry run is not), for the console's retention status
    const runs = await lastRetentionRuns(db.pool);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      trigger: "command",
      deleted: { push_notifications: 5, attachments: 1 },
      error: null,
    });
  });

  it("is listed in the help", async () => {
    const r = await runSidecars(["--help"]);
    expect(r.stdout).toMatch(/purge \[options\] +delete the rows older than their configured retention/);
  });
});
