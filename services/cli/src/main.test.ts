import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScramCredentials, verifyPassword } from "#common/credentials/scram.ts";
import { projectRoot } from "#common/paths.ts";
import { type CliResult, runSidecars } from "../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.ts";
import { freePort } from "../../../test/support/free-port.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const sidecars = (args: string[], o: Parameters<typeof runSidecars>[1] = {}) =>
  runSidecars(args, { ...o, env: { DATABASE_URL: db.url, ...o.env } });

/** A failure is exactly one line on stderr. */
function oneLine(r: CliResult): string {
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0] as string;
}

async function scramOf(node: string): Promise<{ token: string | null; scram: ScramCredentials } | undefined> {
  const r = await db.pool.query(
    "SELECT token, scram FROM web_users WHERE domain = 'localhost' AND node = $1",
    [node],
  );
  return r.rows[0];
}

describe("sidecars CLI", () => {
  it("migrates (nothing left to do on a migrated database)", async () => {
    expect(await sidecars(["migrate"])).toMatchObject({ code: 0, stdout: "up to date\n" });
  });

  it("adds, lists, re-passwords and removes a user; passwords are stored salted, never in cleartext", async () => {
    const add = await sidecars(["users", "add", "Alice@LocalHost", "--password-stdin"], {
      input: "first pw\n",
    });
    expect(add).toMatchObject({ code: 0, stdout: "added alice@localhost\n" });
    const row = await scramOf("alice");
    expect(row?.token).toBeNull();
    expect(await verifyPassword("first pw", row?.scram as ScramCredentials)).toBe(true);

    const again = await sidecars(["users", "add", "alice@localhost", "--password-stdin"], { input: "x\n" });
    expect(again.code).toBe(1);
    expect(oneLine(again)).toMatch(/alice@localhost exists already; use `sidecars users set-password`/);

    expect((await sidecars(["users", "list", "--domain", "localhost"])).stdout).toBe(
      "alice@localhost\tscram\n",
    );

    expect(
      (await sidecars(["users", "passwd", "alice@localhost", "--password-stdin"], { input: "second\n" }))
        .code,
    ).toBe(0);
    const changed = await scramOf("alice");
    expect(await verifyPassword("second", changed?.scram as ScramCredentials)).toBe(true);
    expect(await verifyPassword("first pw", changed?.scram as ScramCredentials)).toBe(false);

    const generated = await sidecars(["users", "add", "bob@localhost", "--generate"]);
    const password = /^password: (\S{20,})$/m.exec(generated.stdout)?.[1] ?? "";
    expect(await verifyPassword(password, (await scramOf("bob"))?.scram as ScramCredentials)).toBe(true);

    expect(await sidecars(["users", "remove", "alice@localhost"])).toMatchObject({
      code: 0,
      stdout: "removed alice@localhost\n",
    });
    const gone = await sidecars(["users", "remove", "alice@localhost"]);
    expect(gone.code).toBe(1);
    expect(oneLine(gone)).toBe("sidecars: no user alice@localhost");
  });

  it("refuses an unknown domain, a bad JID, a missing password, bad arguments: non-zero, one line", async () => {
    const unknown = await sidecars(["users", "add", "x@nowhere.example", "--generate"]);
    expect(unknown.code).toBe(1);
    expect(oneLine(unknown)).toBe(
      'sidecars: unknown domain "nowhere.example" (configured: localhost); add it under "domains" in config/<env>.json',
    );
    const badJid = await sidecars(["users", "add", "no-domain", "--generate"]);
    expect(badJid.code).toBe(2);
    expect(oneLine(badJid)).toMatch(/"no-domain" is not a JID: write it as user@domain/);
    const noPassword = await sidecars(["users", "add", "carol@localhost"]);
    expect(noPassword.code).toBe(1);
    expect(oneLine(noPassword)).toMatch(/no password: pass --password-stdin .* or --generate/);
    const limit = await sidecars(["users", "list", "--limit", "lots"]);
    expect(limit.code).toBe(2);
    expect(oneLine(limit)).toMatch(/--limit: "lots" is not a positive whole number/);
    const unknownCommand = await sidecars(["frobnicate"]);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it("reports a migration that cannot run with the database's reason and hint, on one line", async () => {
    const legacy = await createTestDatabase({ empty: true });
    try {
      await legacy.pool.query(
        "CREATE TABLE web_users (node text, token text, domain text); INSERT INTO web_users VALUES ('bob','a','oyo'), ('bob','b','oyo')",
      );
      const r = await sidecars(["migrate"], { env: { DATABASE_URL: legacy.url } });
      expect(r.code).toBe(1);
      expect(oneLine(r)).toMatch(
        /^sidecars: database error P0001: web_users has 1 duplicated \(domain, node\) pair\(s\)\. Keep one row per account \(SELECT domain, node, count\(\*\)/,
      );
      const dry = await sidecars(["migrate", "--dry-run"], { env: { DATABASE_URL: legacy.url } });
      const all = readdirSync(path.join(projectRoot, "migrations"))
        .filter((f) => f.endsWith(".sql"))
        .map((f) => f.replace(/\.sql$/, ""))
        .sort();
      expect(all[0]).toBe("1763780000000_web-users");
      expect(dry.stdout.endsWith(`would apply: ${all.join(", ")}\n`)).toBe(true);
    } finally {
      await legacy.drop();
    }
  });

  describe("with domains of every kind", () => {
    const configDir = mkdtempSync(path.join(tmpdir(), "sidecars-cli-config-"));
    cpSync(path.join(projectRoot, "config"), configDir, { recursive: true });
    const testConfig = JSON.parse(readFileSync(path.join(configDir, "test.json"), "utf8"));
    testConfig.domains = {
      ...testConfig.domains,
      "keep.test": { passwordFormat: "plain", keepCleartext: true, scramIterations: 4096 },
      "drop.test": { passwordFormat: "scram", scramIterations: 4096 },
      "ext.test": {
        authenticator: { kind: "http", options: { url: "http://127.0.0.1:9/check" } },
        buddies: ["zabbix"],
      },
    };
    writeFileSync(path.join(configDir, "test.json"), JSON.stringify(testConfig));
    const env = { CONFIG_DIR: configDir };

    it("takes --password, refuses two sources, and keeps web_users for buddies of external domains", async () => {
      expect(await sidecars(["users", "add", "dan@keep.test", "--password", "pw1"], { env })).toMatchObject({
        code: 0,
      });
      const twice = await sidecars(["users", "add", "eve@keep.test", "--password", "x", "--generate"], {
        env,
      });
      expect(twice.code).toBe(2);
      expect(oneLine(twice)).toMatch(/give the password one way/);
      const notBuddy = await sidecars(["users", "add", "frank@ext.test", "--password", "x"], { env });
      expect(notBuddy.code).toBe(1);
      expect(oneLine(notBuddy)).toMatch(/ext\.test checks passwords with its http backend, .* use --buddy/);
      const unlisted = await sidecars(["users", "add", "frank@ext.test", "--password", "x", "--buddy"], {
        env,
      });
      expect(oneLine(unlisted)).toMatch(
        /frank is not a buddy of ext\.test: add "frank" to domains\.ext\.test\.buddies/,
      );
      expect(
        await sidecars(["users", "add", "zabbix@ext.test", "--password", "b", "--buddy"], { env }),
      ).toMatchObject({
        code: 0,
        stdout: "added zabbix@ext.test (buddy)\n",
      });
      const row = await db.pool.query(
        "SELECT token FROM web_users WHERE domain = 'keep.test' AND node = 'dan'",
      );
      expect(row.rows).toEqual([{ token: "pw1" }]); // this domain keeps cleartext
    });

    it("rehashes legacy rows once, keeps cleartext only where the domain demands it, resumes and repeats safely", async () => {
      await db.pool.query(`INSERT INTO web_users (node, domain, token) VALUES
        ('l1', 'keep.test', 'a'), ('l2', 'keep.test', 'b'), ('l3', 'drop.test', 'c'), ('l4', 'gone.test', 'd')`);
      const first = await sidecars(["users", "rehash", "--batch", "1"], { env });
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(
        /^rehashed 3 row\(s\), dropped needless cleartext from 0; left gone\.test as they are/,
      );
      const rows = await db.pool.query<{
        node: string;
        token: string | null;
        scram: ScramCredentials | null;
      }>("SELECT node, token, scram FROM web_users WHERE node LIKE 'l_' ORDER BY node");
      expect(rows.rows.map((r) => [r.node, r.token, r.scram !== null])).toEqual([
        ["l1", "a", true],
        ["l2", "b", true],
        ["l3", null, true],
        ["l4", "d", false],
      ]);
      expect(await verifyPassword("c", rows.rows[2]?.scram as ScramCredentials)).toBe(true);
      const again = await sidecars(["users", "rehash"], { env });
      expect(again.stdout).toMatch(/^rehashed 0 row\(s\)/);
    });
  });

  it("says the database is unreachable and what to do", async () => {
    const url = `postgres://u:secret-pw@127.0.0.1:${await freePort()}/x`;
    const r = await sidecars(["users", "list"], { env: { DATABASE_URL: url } });
    expect(r.code).toBe(1);
    const line = oneLine(r);
    expect(line).toMatch(
      /database 127\.0\.0\.1:\d+\/x unreachable \(ECONNREFUSED\): start it .* or fix DATABASE_URL/,
    );
    expect(line).not.toContain("secret-pw");
  });

  it("reports a bad configuration before doing anything", async () => {
    const r = await sidecars(["migrate"], { env: { APP_ENV: "staging" } });
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(
      'sidecars: config: APP_ENV: "staging" is not one of development, test, demo, production',
    );
    const db2 = await sidecars(["db", "status"]);
    expect(db2.code).toBe(1);
    expect(oneLine(db2)).toMatch(/DATABASE_URL is set: the services use that database/);
  });

  it("runs from an older Node by re-running itself on the project's Node 24", async () => {
    let systemNode: string;
    try {
      systemNode = execFileSync("bash", ["-c", "command -v -a node | grep -v node_modules | head -1"])
        .toString()
        .trim();
    } catch {
      systemNode = "";
    }
    const major = systemNode
      ? Number(execFileSync(systemNode, ["-p", "process.versions.node.split('.')[0]"]).toString())
      : 24;
    // on a machine whose own Node is already >= 24 this is the plain path, which the other tests cover
    const r = await sidecars(["users", "list", "--domain", "localhost"], {
      node: major < 24 ? systemNode : process.execPath,
    });
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toMatch(/bob@localhost/);
  });
});

describe("sidecars loads only the command it runs", () => {
  it("extauth, which ejabberd starts, loads no S3 SDK, no buddy kinds and no http-utility", () => {
    // a fresh process, whose module graph is only what this script imports; the hook sees every module
    const main = JSON.stringify(path.join(import.meta.dirname, "main.ts"));
    const context = JSON.stringify(path.join(import.meta.dirname, "context.ts"));
    const script = `
      import { registerHooks } from "node:module";
      import { pathToFileURL } from "node:url";
      const urls = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
      const { buildProgram } = await import(pathToFileURL(${main}).href);
      const { createCliContext } = await import(pathToFileURL(${context}).href);
      const loaded = () => ({
        s3: urls.some((u) => u.includes("/@aws-sdk/")),
        buddies: urls.some((u) => u.includes("/services/buddies/")),
        httpUtility: urls.some((u) => u.includes("/services/http-utility/")),
        auth: urls.some((u) => u.includes("/services/auth/")),
      });
      const program = await buildProgram(createCliContext({}), ["extauth", "--timeout-ms", "100"]);
      const extauth = { commands: program.commands.map((c) => c.name()), ...loaded() };
      await buildProgram(createCliContext({}), ["--help"]);
      process.stdout.write(JSON.stringify({ extauth, help: loaded() }));
    `;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      cwd: projectRoot,
    });
    expect(JSON.parse(out)).toEqual({
      extauth: { commands: ["extauth"], s3: false, buddies: false, httpUtility: false, auth: true },
      // help loads every command (the S3 SDK still waits for an s3 storage to be created)
      help: { s3: false, buddies: true, httpUtility: true, auth: true },
    });
  });
});
