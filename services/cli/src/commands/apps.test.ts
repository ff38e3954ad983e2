import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { projectRoot } from "#common/paths.ts";
import { runSidecars } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";

/** `sidecars apps …`, run as the operator runs it (bin/sidecars.js) against this file's database. */

const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-apps-config-"));
cpSync(path.join(projectRoot, "config"), configDir, { recursive: true });
const testConfig = JSON.parse(readFileSync(path.join(configDir, "test.json"), "utf8"));
testConfig.apps = {
  OyoChat: { minimumVersion: { android: "1.2.0", ios: "1.3", default: "1.0" } },
  Empty: { minimumVersion: {} },
};
writeFileSync(path.join(configDir, "test.json"), JSON.stringify(testConfig));

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});
beforeEach(async () => {
  await db.pool.query("DELETE FROM app_minimum_versions");
});

const sidecars = (args: string[]) =>
  runSidecars(args, { env: { DATABASE_URL: db.url, CONFIG_DIR: configDir } });

async function overrides(): Promise<string[][]> {
  const r = await db.pool.query(
    "SELECT app_name, platform, minimum_version FROM app_minimum_versions ORDER BY 1, 2",
  );
  return r.rows.map((row) => [row.app_name, row.platform, row.minimum_version]);
}

describe("sidecars apps", () => {
  it("lists the config, then the overrides and which applies", async () => {
    expect(await sidecars(["apps", "list"])).toEqual({
      code: 0,
      stdout: [
        "Empty\t(no platform configured)",
        "OyoChat\tandroid\t1.2.0\tconfig",
        "OyoChat\tdefault\t1.0\tconfig",
        "OyoChat\tios\t1.3\tconfig",
        "",
      ].join("\n"),
      stderr: "",
    });
    expect((await sidecars(["apps", "set-minimum", "OyoChat", "ios", "1.4"])).code).toBe(0);
    expect((await sidecars(["apps", "set-minimum", "OyoChat", "web", "7"])).stdout).toBe(
      "OyoChat web: 1.0 (default) → 7\n",
    );
    // a row left behind by an app since removed from the config
    await db.pool.query(
      "INSERT INTO app_minimum_versions (app_name, platform, minimum_version) VALUES ('Gone', 'ios', '9')",
    );
    const list = await sidecars(["apps", "list"]);
    expect(list.stdout.split("\n")).toEqual([
      "Empty\t(no platform configured)",
      "OyoChat\tandroid\t1.2.0\tconfig",
      "OyoChat\tdefault\t1.0\tconfig",
      expect.stringMatching(/^OyoChat\tios\t1\.4\toverride \(set \d{4}-\d\d-\d\dT[\d:.]+Z; config: 1\.3\)$/),
      expect.stringMatching(/^OyoChat\tweb\t7\toverride \(set \S+; config: none\)$/),
      "Gone\tios\t9\tignored (not in config; clear it with `sidecars apps clear-minimum`)",
      "",
    ]);
    expect((await sidecars(["apps", "clear-minimum", "Gone", "ios"])).stdout).toBe("Gone ios: 9 → none\n");
  });

  it("sets, replaces and clears an override, printing old → new", async () => {
    expect((await sidecars(["apps", "set-minimum", "OyoChat", "android", "1.10"])).stdout).toBe(
      "OyoChat android: 1.2.0 → 1.10\n",
    );
    expect((await sidecars(["apps", "set-minimum", "OyoChat", "android", "100"])).stdout).toBe(
      "OyoChat android: 1.10 → 100\n",
    );
    expect(await overrides()).toEqual([["OyoChat", "android", "100"]]);
    expect((await sidecars(["apps", "clear-minimum", "OyoChat", "android"])).stdout).toBe(
      "OyoChat android: 100 → 1.2.0\n",
    );
    expect(await overrides()).toEqual([]);
  });

  it("refuses a bad version, platform or app, and a clear with nothing to clear: one line, nothing changed", async () => {
    for (const bad of ["1.x", "v2", "1..2", "1.2.3.4.5", "2.0-a..b"]) {
      const r = await sidecars(["apps", "set-minimum", "OyoChat", "android", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toBe(
        `sidecars: "${bad}" is not a version: write dotted numbers (1.10.2), a pre-release (2.0.0-beta) or a build number (100)\n`,
      );
    }
    const platform = await sidecars(["apps", "set-minimum", "OyoChat", "Android OS", "2"]);
    expect(platform).toMatchObject({ code: 2 });
    expect(platform.stderr).toMatch(/^sidecars: platform "Android OS": use lower-case letters/);
    const app = await sidecars(["apps", "set-minimum", "oyochat", "android", "2"]);
    expect(app.code).toBe(1);
    expect(app.stderr).toBe(
      'sidecars: unknown app "oyochat" (configured: OyoChat, Empty); add it under "apps" in config/<env>.json (names are case-sensitive)\n',
    );
    const nothing = await sidecars(["apps", "clear-minimum", "OyoChat", "android"]);
    expect(nothing).toMatchObject({
      code: 1,
      stderr: "sidecars: OyoChat android has no override to clear\n",
    });
    expect(await overrides()).toEqual([]);
  });
});
