import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "#common/paths.ts";
import { runSidecars } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";

/** `sidecars buddies …`, run as the operator runs it (bin/sidecars.js) against this file's database. */

const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-buddies-config-"));
cpSync(path.join(projectRoot, "config"), configDir, { recursive: true });
const testConfig = JSON.parse(readFileSync(path.join(configDir, "test.json"), "utf8"));
testConfig.domains = {
  ...testConfig.domains,
  "ext.test": {
    authenticator: { kind: "http", options: { url: "http://127.0.0.1:9/check" } },
    buddies: ["zabbix"],
  },
};
testConfig.buddies = {
  domains: { localhost: { definitions: { liam: { kind: "service", password: { env: "LIAM_PASSWORD" } } } } },
};
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

describe("sidecars buddies", () => {
  it("adds a runtime buddy, lists it next to the config's, replaces and removes it", async () => {
    const added = await sidecars([
      "buddies",
      "add",
      "Echo@localhost",
      "--kind",
      "echo",
      "--password-file",
      "/etc/x/echo.pw",
      "--room",
      "ops@conference.localhost",
      "--nick",
      "Echo",
    ]);
    expect(added).toMatchObject({
      code: 0,
      stdout: "added echo@localhost (echo); the runners pick it up at once\n",
    });
    const row = await db.pool.query(
      "SELECT kind, password, rooms, nick FROM buddies WHERE username = 'echo'",
    );
    expect(row.rows).toEqual([
      {
        kind: "echo",
        password: { file: "/etc/x/echo.pw" },
        rooms: ["ops@conference.localhost"],
        nick: "Echo",
      },
    ]);
    const list = await sidecars(["buddies", "list"]);
    expect(list.stdout.split("\n").filter(Boolean)).toEqual([
      "liam@localhost\tservice\tconfig\tunowned\t-\t",
      "echo@localhost\techo\ttable\tunowned\t-\t",
    ]);
    expect(
      (await sidecars(["buddies", "add", "echo@localhost", "--kind", "service", "--password-env", "ECHO_PW"]))
        .stdout,
    ).toBe("updated echo@localhost (service); the runners pick it up at once\n");
    expect(await sidecars(["buddies", "remove", "echo@localhost"])).toMatchObject({
      code: 0,
      stdout: "removed echo@localhost\n",
    });
    expect((await db.pool.query("SELECT 1 FROM buddies")).rowCount).toBe(0);
  });

  it("refuses what cannot run, saying what to do, and writes nothing", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["buddies", "add", "x@localhost", "--kind", "echo"],
        /exactly one of --password-file .* or --password-env/,
      ],
      [
        ["buddies", "add", "x@nowhere.test", "--kind", "echo", "--password-env", "P"],
        /nowhere\.test is not a domain of this service/,
      ],
      [
        ["buddies", "add", "frank@ext.test", "--kind", "echo", "--password-env", "P"],
        /add "frank" to domains\.ext\.test\.buddies/,
      ],
      [
        ["buddies", "add", "x@localhost", "--kind", "nope", "--password-env", "P"],
        /buddy kind "nope" is unknown/,
      ],
      [
        ["buddies", "add", "x@localhost", "--kind", "echo", "--password-env", "P", "--options", "{"],
        /--options is not JSON/,
      ],
      [
        ["buddies", "add", "x@localhost", "--kind", "echo", "--password-env", "lower"],
        /password.*environment variable name/,
      ],
      [["buddies", "add", "../x@localhost", "--kind", "echo", "--password-env", "P"], /is not a buddy JID/],
      [["buddies", "remove", "liam@localhost"], /not a runtime buddy .*config/],
      [["buddies", "restart", "ghost@localhost"], /no buddy ghost@localhost/],
    ];
    for (const [args, message] of cases) {
      const r = await sidecars(args);
      expect(r.code, args.join(" ")).toBeGreaterThan(0);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    expect(
      (await sidecars(["buddies", "add", "zabbix@ext.test", "--kind", "echo", "--password-env", "P"])).code,
    ).toBe(0);
    expect((await db.pool.query("SELECT username FROM buddies")).rows).toEqual([{ username: "zabbix" }]);
  });

  it("stop, start and restart are written where every runner reads them", async () => {
    expect((await sidecars(["buddies", "stop", "liam@localhost"])).stdout).toBe(
      "stop requested for liam@localhost\n",
    );
    const lease = () =>
      db.pool
        .query("SELECT stopped, restart_seq FROM buddy_leases WHERE username = 'liam'")
        .then((r) => r.rows[0]);
    expect(await lease()).toEqual({ stopped: true, restart_seq: 0 });
    expect((await sidecars(["buddies", "list"])).stdout).toContain(
      "liam@localhost\tservice\tconfig\tstopped",
    );
    await sidecars(["buddies", "start", "liam@localhost"]);
    expect(await lease()).toEqual({ stopped: false, restart_seq: 0 });
    await sidecars(["buddies", "restart", "liam@localhost"]);
    expect(await lease()).toEqual({ stopped: false, restart_seq: 1 });
  });

  it("makes an admin key shown once, configured by its SHA-256", async () => {
    const r = await sidecars(["buddies", "admin-key", "ops"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const key = lines[1] as string;
    expect(key).toMatch(/^ba_[A-Za-z0-9_-]{43}$/);
    const entry = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"), r.stdout.lastIndexOf("}") + 1));
    expect(entry).toEqual({ ops: { sha256: createHash("sha256").update(key).digest("hex") } });
    expect(r.stdout).toContain("services.buddies.admins");
    const hook = await sidecars(["buddies", "admin-key", "zabbix", "--hook"]);
    expect(hook.stdout).toContain("services.buddies.hookKeys");
    expect(hook.stdout.split("\n")[1]).toMatch(/^bh_/);
    expect((await sidecars(["buddies", "admin-key", "bad name"])).code).toBe(2);
  });
});
