import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import yauzl from "yauzl";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { projectRoot } from "#common/paths.ts";
import type { Jid } from "#common/users/jid.ts";
import { rowsOf, type SeededUser, seedUser } from "#common/users/lifecycle-test-fixtures.ts";
import { type AuthStack, startAuthStack } from "../../../../test/support/auth-stack.ts";
import { type CliResult, runSidecars } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";

/**
 * `sidecars users remove|export|disable|enable|show`, run as the operator runs them (bin/sidecars.js) against
 * this file's database and an fs storage in a temporary directory, and what MongooseIM, ejabberd's extauth and
 * the app API answer a disabled user (the auth core and the app endpoint of test/support/auth-stack.ts).
 */

const DOMAINS = {
  "oyo.test": { passwordFormat: "scram", scramIterations: 4096, buddies: ["zabbix"], cacheTtlSeconds: 300 },
};

let db: TestDatabase;
let dir: string;
let configDir: string;
let storage: Storage;
let auth: AuthStack;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-users-"));
  configDir = path.join(dir, "config");
  await cp(path.join(projectRoot, "config"), configDir, { recursive: true });
  const testConfig = JSON.parse(await readFile(path.join(configDir, "test.json"), "utf8"));
  testConfig.media = {
    ...testConfig.media,
    storage: { kind: "fs", options: { root: path.join(dir, "media") } },
  };
  testConfig.domains = DOMAINS;
  await writeFile(path.join(configDir, "test.json"), JSON.stringify(testConfig));
  storage = await createStorage({ kind: "fs", options: { root: path.join(dir, "media") } });
  auth = await startAuthStack(db, { domains: DOMAINS });
});
afterAll(async () => {
  await auth.close();
  await storage.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const sidecars = (args: string[], input?: string) =>
  runSidecars(args, {
    env: { DATABASE_URL: db.url, CONFIG_DIR: configDir },
    ...(input !== undefined ? { input } : {}),
  });

/** A failure is exactly one line on stderr. */
function oneLine(r: CliResult): string {
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0] as string;
}

let n = 0;
const nextJid = (): Jid => ({ node: `3069${String(++n).padStart(8, "0")}`, domain: "oyo.test" });
const text = (jid: Jid) => `${jid.node}@${jid.domain}`;

async function stored(): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of storage.list()) keys.push(o.key);
  return keys;
}

const nothingLeft = (rows: Record<string, number>) =>
  Object.fromEntries(Object.keys(rows).map((t) => [t, t === "user_removals" ? 1 : 0]));

describe("sidecars users remove", () => {
  it("removes everything of the user in every table and storage, login failures included", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { locations: 20, pictures: 2 });
    // a wrong app login: counted for this user and address (rate_limits), forgotten with the user
    expect((await auth.appLogin(text(user.jid), "wrong")).status).toBe(401);
    const failures = () =>
      db.pool
        .query("SELECT count(*)::int AS n FROM rate_limits WHERE key LIKE 'loginFailures:%'")
        .then((r) => r.rows[0].n as number);
    expect(await failures()).toBe(1);

    const r = await sidecars(["users", "remove", text(user.jid), "--yes"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^removed ${text(user.jid)}: .*locations 20.*login_failures 1.*, ${user.keys.length} stored file\\(s\\) deleted\\n$`,
      ),
    );
    const rows = await rowsOf(db.pool, user);
    expect(rows).toEqual(nothingLeft(rows));
    expect(await failures()).toBe(0);
    const left = await stored();
    for (const k of user.keys) expect(left).not.toContain(k);

    const again = await sidecars(["users", "remove", text(user.jid), "--yes"]);
    expect(again.code).toBe(1);
    expect(oneLine(again)).toBe(`sidecars: no user ${text(user.jid)}`);
  });

  it("keeps their pictures and videos, owned by no one, with --keep-attachments (or --attachments anonymise)", async () => {
    for (const flags of [["--keep-attachments"], ["--attachments", "anonymise"]]) {
      const user = await seedUser(db.pool, storage, nextJid(), { pictures: 1 });
      const r = await sidecars(["users", "remove", text(user.jid), ...flags]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /: attachments 2, attachments_anonymised 4, .*, 2 stored file\(s\) deleted\n$/,
      );
      const kept = await db.pool.query(
        "SELECT count(*)::int AS n FROM attachments WHERE name = ANY($1) AND node = ''",
        [user.keys],
      );
      expect(kept.rows[0].n).toBe(4);
    }
    const both = await sidecars([
      "users",
      "remove",
      text(nextJid()),
      "--keep-attachments",
      "--attachments",
      "delete",
    ]);
    expect(both.code).toBe(2);
    expect(oneLine(both)).toMatch(/--keep-attachments and --attachments delete say opposite things/);
    const bad = await sidecars(["users", "remove", text(nextJid()), "--attachments", "shred"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Allowed choices are delete, anonymise/);
  });

  it("refuses a buddy's account, saying how to remove the buddy", async () => {
    const r = await sidecars(["users", "remove", "zabbix@oyo.test", "--yes"]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(
      "sidecars: zabbix@oyo.test is a buddy of the config file: remove it from domains.oyo.test.buddies and reload first",
    );
  });

  it("finishes, when run again, a removal the storage stopped half-way", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { pictures: 2 });
    const stuck = user.keys[1] as string;
    const where = path.join(dir, "media", stuck.slice(0, 2), stuck);
    await rm(where);
    await mkdir(where);
    await writeFile(path.join(where, "in-the-way"), "x");

    const first = await sidecars(["users", "remove", text(user.jid), "--yes"]);
    expect(first.code).toBe(1);
    expect(oneLine(first)).toMatch(
      /^sidecars: 3069\d+@oyo\.test: every row is removed, but 1 stored file\(s\) could not be deleted \(.*\); run the removal again to finish it$/,
    );
    const shown = await sidecars(["users", "show", text(user.jid)]);
    expect(shown.stdout).toContain(`${text(user.jid)}\tno account\n`);
    expect(shown.stdout).toMatch(
      /removal\tfiles, started .*, 1 file\(s\) left: run `sidecars users remove 3069\d+@oyo\.test` again/,
    );

    await rm(where, { recursive: true });
    await storage.put(stuck, Readable.from([Buffer.from("x")]), { contentType: "image/jpeg" });
    const second = await sidecars(["users", "remove", text(user.jid), "--yes"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^finished removing 3069\d+@oyo\.test: /);
    expect(await stored()).not.toContain(stuck);
  });
});

describe("sidecars users export", () => {
  it("writes their data as JSON to stdout or a file only its owner reads, or as a zip with their files", async () => {
    const user = await seedUser(db.pool, storage, nextJid(), { locations: 30 });
    const out = await sidecars(["users", "export", text(user.jid)]);
    expect(out.code, out.stderr).toBe(0);
    const doc = JSON.parse(out.stdout);
    expect(doc.jid).toBe(text(user.jid));
    expect(doc.locations).toHaveLength(30);
    expect(doc.pushTokens).toHaveLength(2);

    const file = path.join(dir, "export.json");
    const r = await sidecars(["users", "export", text(user.jid), "--out", file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^exported ${text(user.jid)} to ${file} \\(\\d+ bytes\\) in [\\d.]+ s\\n$`),
    );
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const fromFile = JSON.parse(await readFile(file, "utf8"));
    expect({ ...fromFile, exportedAt: doc.exportedAt }).toEqual(doc);

    const zip = path.join(dir, "export.zip");
    const z = await sidecars(["users", "export", text(user.jid), "--out", zip, "--with-files"]);
    expect(z.code, z.stderr).toBe(0);
    expect(z.stdout).toMatch(/\(\d+ bytes, 4 file\(s\) of [\d.]+ MiB\) in [\d.]+ s\n$/);
    const names = await zipNames(zip);
    expect(names).toEqual(["data.json", ...[...user.originals.keys()].map((k) => `files/${k}`).sort()]);

    const noZip = await sidecars(["users", "export", text(user.jid), "--with-files"]);
    expect(noZip.code).toBe(2);
    expect(oneLine(noZip)).toBe("sidecars: --with-files writes a zip: give --out <file>.zip");
    const nobody = await sidecars(["users", "export", text(nextJid())]);
    expect(nobody.code).toBe(1);
    expect(oneLine(nobody)).toMatch(/^sidecars: no user 3069\d+@oyo\.test$/);
  });
});

function zipNames(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, (err, z) => {
      if (err || !z) return reject(err);
      const names: string[] = [];
      z.on("entry", (e: yauzl.Entry) => names.push(e.fileName));
      z.on("end", () => resolve(names));
      z.on("error", reject);
    });
  });
}

/** ejabberd's extauth framing: a 2-byte length, then `op:user:server[:password]`. */
function extauthFrames(...requests: string[]): string {
  return requests
    .map((r) => {
      const head = Buffer.alloc(2);
      head.writeUInt16BE(Buffer.byteLength(r));
      return Buffer.concat([head, Buffer.from(r)]).toString("latin1");
    })
    .join("");
}

describe("sidecars users disable and enable", () => {
  it("refuses every login at once in every process, with each contract's answer, and enables again", async () => {
    const user = await seedUser(db.pool, storage, nextJid());
    const jid = text(user.jid);
    const params = { user: user.jid.node, server: user.jid.domain, pass: user.password };
    // the right password, remembered by the auth core's success cache
    expect((await auth.appLogin(jid, user.password)).status).toBe(200);
    expect(await auth.mongooseim("check_password", params)).toBe("200 true");
    expect(await auth.mongooseim("get_password", { ...params, pass: "" })).toMatch(/^200 ==MULTI_SCRAM==/);

    const r = await sidecars(["users", "disable", jid]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `disabled ${jid}: every new login is refused now; XMPP sessions already open stay until they end\n`,
    );
    // the cache forgot the user through NOTIFY: no TTL to wait out
    await vi.waitFor(async () => expect(await auth.mongooseim("check_password", params)).toBe("200 false"), {
      timeout: 5000,
    });
    expect(await auth.mongooseim("get_password", { ...params, pass: "" })).toBe("404 ");
    // MongooseIM keeps the account's roster and offline messages: it still exists
    expect(await auth.mongooseim("user_exists", { ...params, pass: "" })).toBe("200 true");
    expect(await auth.appLogin(jid, user.password)).toMatchObject({ status: 403, code: "account_disabled" });
    // a wrong password learns nothing of the account
    expect(await auth.appLogin(jid, "not the password")).toMatchObject({
      status: 401,
      code: "invalid_credentials",
    });
    const ext = await sidecars(
      ["extauth"],
      extauthFrames(
        `auth:${user.jid.node}:${user.jid.domain}:${user.password}`,
        `isuser:${user.jid.node}:${user.jid.domain}`,
      ),
    );
    expect(Buffer.from(ext.stdout, "latin1").toString("hex")).toBe("00020000" + "00020001");

    expect((await sidecars(["users", "disable", jid])).stdout).toBe(`${jid} was disabled already\n`);
    expect((await sidecars(["users", "show", jid])).stdout).toMatch(
      new RegExp(`^${jid}\\tcreated \\S+\\tdisabled \\S+\\tscram\\n`),
    );

    expect((await sidecars(["users", "enable", jid])).stdout).toBe(`enabled ${jid}\n`);
    await vi.waitFor(async () => expect(await auth.mongooseim("check_password", params)).toBe("200 true"), {
      timeout: 5000,
    });
    expect((await auth.appLogin(jid, user.password)).status).toBe(200);

    const nobody = await sidecars(["users", "disable", text(nextJid())]);
    expect(nobody.code).toBe(1);
    expect(oneLine(nobody)).toMatch(/^sidecars: no user 3069\d+@oyo\.test$/);
  });
});

describe("sidecars users show", () => {
  it("lists what is stored of the user, table by table", async () => {
    const user: SeededUser = await seedUser(db.pool, storage, nextJid(), { locations: 4 });
    const r = await sidecars(["users", "show", text(user.jid)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\tenabled\tscram\n/);
    expect(r.stdout).toContain("locations\t4\n");
    expect(r.stdout).toContain("push_tokens\t2\n");
    expect(r.stdout).toMatch(/attachment bytes\t\d+\n/);
  });
});
