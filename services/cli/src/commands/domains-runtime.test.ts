import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDomainEntry } from "#common/config/runtime-domains.ts";
import { addUser } from "#common/users/web-users.ts";
import { runSidecars, SIDECARS_BIN } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { freePort } from "../../../../test/support/free-port.ts";
import { runService } from "../../../../test/support/processes.ts";

/**
 * `sidecars domains add|set|remove|list|show`, run as operators run them, against this file's database; and
 * what they change seen by a running auth service (MongooseIM's HTTP contract) and a running `sidecars
 * extauth` (ejabberd's program), both started before the change, within a second.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const sidecars = (args: string[], input?: string) =>
  runSidecars(args, { env: { DATABASE_URL: db.url }, ...(input !== undefined ? { input } : {}) });

const rows = async () =>
  (await db.pool.query("SELECT name, config FROM runtime_domains ORDER BY name")).rows as {
    name: string;
    config: unknown;
  }[];

describe("sidecars domains at runtime", () => {
  it("adds, changes, shows and lists a domain; its users can be added at once", async () => {
    const added = await sidecars([
      "domains",
      "add",
      "new.example",
      "--set",
      "passwordFormat=plain",
      "scramIterations=4096",
      "--set",
      "authenticator.kind=web_users",
    ]);
    expect(added.stderr).toBe("");
    expect(added).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^added new\.example: every process/),
    });
    // stored as given: the schema's defaults apply when the row is read, as for the files
    expect(await rows()).toEqual([
      {
        name: "new.example",
        config: { passwordFormat: "plain", scramIterations: 4096, authenticator: { kind: "web_users" } },
      },
    ]);

    const user = await sidecars(["users", "add", "alice@new.example", "--password", "pw"]);
    expect(user, user.stderr).toMatchObject({ code: 0, stdout: "added alice@new.example\n" });

    expect(
      (await sidecars(["domains", "set", "new.example", "cacheTtlSeconds=0", 'buddies=["zabbix"]'])).code,
    ).toBe(0);
    expect((await sidecars(["domains", "set", "new.example", "--unset", "scramIterations"])).code).toBe(0);
    const shown = await sidecars(["domains", "show", "new.example"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      authenticator: { kind: "web_users", options: {} },
      passwordFormat: "plain",
      scramIterations: 10_000,
      cacheTtlSeconds: 0,
      buddies: ["zabbix"],
      registration: { enabled: false },
    });

    const fromJson = await sidecars(
      ["domains", "add", "other.example", "--from-json", "-"],
      '{"mongooseim": "6.x"}',
    );
    expect(fromJson.code, fromJson.stderr).toBe(0);

    const list = await sidecars(["domains", "list"]);
    expect(list).toMatchObject({
      code: 0,
      stdout: [
        "localhost\tconfig\tplain\tweb_users",
        "new.example\tdatabase\tplain\tweb_users",
        "other.example\tdatabase\tscram\tweb_users",
        "",
      ].join("\n"),
    });
    expect((await sidecars(["domains", "check"])).code).toBe(0);
  });

  it("adds a name once, changes only database domains, and removes them: their users are then refused", async () => {
    const again = await sidecars(["domains", "add", "new.example"]);
    expect(again).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/in the database already: change it with/),
    });
    const fileDomain = await sidecars(["domains", "set", "localhost", "cacheTtlSeconds=1"]);
    expect(fileDomain).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/localhost is defined in the config files, not the database/),
    });
    expect((await sidecars(["domains", "remove", "localhost"])).code).toBe(1);

    expect(await sidecars(["domains", "remove", "new.example"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^removed new\.example/),
    });
    expect(await sidecars(["domains", "remove", "new.example"])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/unknown domain "new\.example"/),
    });
    expect(await sidecars(["domains", "remove", "other.example"])).toMatchObject({ code: 0 });
    const unknown = await sidecars(["users", "add", "bob@new.example", "--password", "pw"]);
    expect(unknown).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/unknown domain "new\.example"/),
    });
    expect(await rows()).toEqual([]);
  });

  it("refuses invalid values with the config schema's message and exit 2, storing nothing", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["--set", "passwordFormat=md5"],
        /domains\.bad\.example\.passwordFormat: Invalid option: expected one of "plain"\|"scram"/,
      ],
      [
        ["--set", "keepCleartext=true"],
        /domains\.bad\.example\.keepCleartext: only a `plain` domain may keep/,
      ],
      [
        ["--set", "scramIterations=12"],
        /domains\.bad\.example\.scramIterations: Too small: expected number to be >=4096/,
      ],
      [
        ["--set", "colour=red"],
        /domains\.bad\.example\.colour: unknown key: remove it, or use one of authenticator/,
      ],
      [["--set", "authenticator.kind=ldap"], /domains\.bad\.example\.authenticator.*ldap/],
      [["--set", "passwordFormat"], /"passwordFormat" is not key=value/],
      [
        ["--from-json", "/nonexistent/domain.json"],
        /--from-json: cannot read \/nonexistent\/domain\.json \(ENOENT\)/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await sidecars(["domains", "add", "bad.example", ...args]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stderr.trim().split("\n"), "one line").toHaveLength(1);
    }
    const badName = await sidecars(["domains", "add", "Bad_Name"]);
    expect(badName).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/"Bad_Name": a domain is lower-case letters, digits, dots, dashes/),
    });
    expect(await rows()).toEqual([]);

    expect((await sidecars(["domains", "add", "ok.example"])).code).toBe(0);
    const badSet = await sidecars([
      "domains",
      "set",
      "ok.example",
      "scramFormat=legacy",
      'scramHashes=["sha256"]',
    ]);
    expect(badSet).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /domains\.ok\.example\.scramHashes: the legacy ==SCRAM== format needs sha1/,
      ),
    });
    expect(await rows()).toEqual([{ name: "ok.example", config: {} }]);
    expect((await sidecars(["domains", "remove", "ok.example"])).code).toBe(0);
  });
});

/** `sidecars extauth` as ejabberd runs it: questions in frames on stdin, answers in order on stdout. */
function startExtauth(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [SIDECARS_BIN, "extauth"], {
    env: { PATH: process.env.PATH ?? "", APP_ENV: "test", LOG_LEVEL: "info", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  let pending = Buffer.alloc(0);
  const waiting: ((yes: boolean) => void)[] = [];
  child.stdout?.on("data", (c: Buffer) => {
    pending = Buffer.concat([pending, c]);
    while (pending.length >= 4) {
      waiting.shift()?.(pending[3] === 1);
      pending = pending.subarray(4);
    }
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes('"msg":"extauth ready"')) resolve();
    });
    child.on("exit", (code) => reject(new Error(`extauth exited (${code}): ${stderr}`)));
  });
  return {
    ready,
    stderr: () => stderr,
    ask(text: string): Promise<boolean> {
      const body = Buffer.from(text);
      const head = Buffer.alloc(2);
      head.writeUInt16BE(body.length);
      return new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin?.write(Buffer.concat([head, body]));
      });
    },
    stop: () =>
      new Promise<number | null>((resolve) => {
        child.once("exit", resolve);
        child.stdin?.end();
      }),
  };
}

/** Polls `answer` until it is `want`: the milliseconds that took, or throws after `ms`. */
async function msUntil(answer: () => Promise<string | boolean>, want: string | boolean, ms = 5000) {
  const started = performance.now();
  let last: string | boolean | undefined;
  while (performance.now() - started < ms) {
    last = await answer();
    if (last === want) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`still ${JSON.stringify(last)} after ${ms} ms, not ${JSON.stringify(want)}`);
}

describe("a domain changed at runtime, seen by running processes", () => {
  it("is served by the auth service and by sidecars extauth within a second, refused within a second once removed; the files win a conflict", async () => {
    const { domain } = parseDomainEntry("rt.example", {}) as { ok: true; domain: never };
    await addUser(db.pool, { node: "carol", domain: "rt.example" }, { cleartext: "pw" }, domain);
    await addUser(db.pool, { node: "bob", domain: "localhost" }, { cleartext: "pw" }, domain);
    await addUser(db.pool, { node: "dave", domain: "probe.example" }, { cleartext: "pw" }, domain);

    const port = await freePort();
    const basic = `Basic ${Buffer.from("mongooseim:s3cret").toString("base64")}`;
    const mongooseim = async (method: string, query: string) => {
      const r = await fetch(`http://127.0.0.1:${port}/authorize/${method}?${query}`, {
        headers: { authorization: basic },
      });
      return `${r.status} ${await r.text()}`;
    };
    const extauth = startExtauth({ DATABASE_URL: db.url });
    await extauth.ready;

    const timings: Record<string, number> = {};
    let failure: unknown;
    const exited = await runService(
      "auth",
      {
        DATABASE_URL: db.url,
        AUTH_PORT: String(port),
        AUTH_BASIC_AUTH: "mongooseim:s3cret",
        LOG_LEVEL: "warn",
      },
      async (child) => {
        try {
          expect(await mongooseim("check_password", "user=carol&server=rt.example&pass=pw")).toBe(
            "200 false",
          );
          expect(await extauth.ask("auth:carol:rt.example:pw")).toBe(false);

          const added = await sidecars(["domains", "add", "rt.example"]);
          expect(added.code, added.stderr).toBe(0);
          const [auth, ext] = await Promise.all([
            msUntil(() => mongooseim("check_password", "user=carol&server=rt.example&pass=pw"), "200 true"),
            msUntil(() => extauth.ask("auth:carol:rt.example:pw"), true),
          ]);
          timings.addedAuth = auth;
          timings.addedExtauth = ext;
          expect(await mongooseim("user_exists", "user=carol&server=rt.example")).toBe("200 true");
          expect(await mongooseim("check_password", "user=carol&server=rt.example&pass=no")).toBe(
            "200 false",
          );
          expect(await extauth.ask("isuser:carol:rt.example")).toBe(true);

          const removed = await sidecars(["domains", "remove", "rt.example"]);
          expect(removed.code, removed.stderr).toBe(0);
          const [authGone, extGone] = await Promise.all([
            msUntil(() => mongooseim("user_exists", "user=carol&server=rt.example"), "200 false"),
            msUntil(() => extauth.ask("isuser:carol:rt.example"), false),
          ]);
          timings.removedAuth = authGone;
          timings.removedExtauth = extGone;
          expect(await mongooseim("check_password", "user=carol&server=rt.example&pass=pw")).toBe(
            "200 false",
          );

          // a row for a domain of the files: stored, with a warning, and the files' entry stays in force
          // (localhost is `plain` without cleartext there: get_password has nothing to answer; as `scram` it would)
          const conflict = await sidecars(["domains", "add", "localhost", "--set", "passwordFormat=scram"]);
          expect(conflict.code, conflict.stderr).toBe(0);
          expect(conflict.stderr).toMatch(/^warning: localhost is also in the config files, which win/);
          expect(conflict.stdout).toBe(
            "added localhost to the database, where the config files' entry hides it\n",
          );
          // a domain added after it: once that is served, so is whatever the row of localhost would change
          expect((await sidecars(["domains", "add", "probe.example"])).code).toBe(0);
          await Promise.all([
            msUntil(() => mongooseim("user_exists", "user=dave&server=probe.example"), "200 true"),
            msUntil(() => extauth.ask("isuser:dave:probe.example"), true),
          ]);
          expect(await mongooseim("get_password", "user=bob&server=localhost")).toBe("404 ");
          expect(await mongooseim("check_password", "user=bob&server=localhost&pass=pw")).toBe("200 true");
          expect(await extauth.ask("auth:bob:localhost:pw")).toBe(true);
          const shown = await sidecars(["domains", "show", "localhost"]);
          expect(JSON.parse(shown.stdout).passwordFormat).toBe("plain");
          expect((await sidecars(["domains", "list"])).stdout).toContain(
            "localhost\tconfig (hides a database row)\tplain",
          );
          expect((await sidecars(["domains", "remove", "localhost"])).code).toBe(0);
          expect((await sidecars(["domains", "remove", "probe.example"])).code).toBe(0);
        } catch (err) {
          failure = err;
        } finally {
          child.kill("SIGTERM");
        }
      },
    );
    expect(await extauth.stop()).toBe(0);
    if (failure) throw failure;
    expect(exited.code, exited.stderr).toBe(0);
    for (const [what, ms] of Object.entries(timings)) expect(ms, what).toBeLessThan(1000);
    // the conflict is said once by each process, naming the domain
    const warnings = (text: string) =>
      text
        .split("\n")
        .filter((l) => l.includes("domain localhost is in the config files and in the database"));
    expect(warnings(exited.stdout)).toHaveLength(1);
    expect(warnings(exited.stdout)[0]).toMatch(/"level":40.*"domain":"localhost"/);
    expect(warnings(extauth.stderr())).toHaveLength(1);
    process.stdout.write(`domain change seen after (ms): ${JSON.stringify(timings)}\n`);
  });
});
