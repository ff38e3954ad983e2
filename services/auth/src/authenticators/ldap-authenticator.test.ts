import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { DomainConfig } from "#common/config/schema.ts";
import { StartupProblems } from "#common/errors.ts";
import { addUser } from "#common/users/web-users.ts";
import { type AuthStack, startAuthStack } from "../../../../test/support/auth-stack.ts";
import { makeCertificate } from "../../../../test/support/certificates.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { type RecordingLogger, recordingLogger } from "../../../../test/support/recording-logger.ts";
import {
  GROUPS,
  PEOPLE,
  person,
  READER_DN,
  READER_PASSWORD,
  type Slapd,
  startSlapd,
} from "../../../../test/support/slapd.ts";
import type { Authenticator } from "./authenticator.ts";
import { escapeDnValue, escapeFilterValue } from "./ldap-escape.ts";
import { createAuthenticatorKinds, createAuthenticators } from "./registry.ts";

/**
 * The ldap kind against a real OpenLDAP slapd (test/support/slapd.ts), on loopback: what a user of the
 * directory sees (logged in or not), what an outage does (the auth core answers "could not tell", never a
 * wrong password), and what the directory sees (its connections).
 */

const DOMAIN = "ldap.test";
const PASSWORDS: Record<string, string> = {
  alice: "alice's password",
  bob: "bob's password", // not in the chat group
  carol: "carol's password",
  "a*b": "star's password",
  "c,d": "comma's password",
  "e\\f": "backslash's password",
  twin1: "first twin's password",
  twin2: "second twin's password",
};
const GROUP_MEMBERS = ["alice", "carol", "a*b", "c,d", "e\\f"];
const TEMPLATE = `uid={user},${PEOPLE}`;
const CHAT_GROUP = `cn=chat,${GROUPS}`;

const jid = (node: string) => ({ node, domain: DOMAIN });
const dnOf = (uid: string) => `uid=${uid.replace(/[\\,]/g, (c) => `\\${c}`)},${PEOPLE}`;

let slapd: Slapd;
let db: TestDatabase;
let recorded: RecordingLogger;
let domainConfig: DomainConfig;
let secrets: string;
let readerPasswordFile: string;
const opened: Authenticator[] = [];

beforeAll(async () => {
  [slapd, db] = await Promise.all([startSlapd(), createTestDatabase()]);
  const people = Object.entries(PASSWORDS).map(([uid, pw]) =>
    person(uid, pw, uid.startsWith("twin") ? "cn: twin\n" : ""),
  );
  await slapd.add(
    `${people.join("\n")}\ndn: ${CHAT_GROUP}\nobjectClass: groupOfNames\ncn: chat\n${GROUP_MEMBERS.map((m) => `member: ${dnOf(m)}`).join("\n")}\n`,
  );
  secrets = mkdtempSync(path.join(tmpdir(), "sidecars-ldap-test-"));
  readerPasswordFile = path.join(secrets, "reader-password");
  writeFileSync(readerPasswordFile, `${READER_PASSWORD}\n`);
  recorded = recordingLogger({ level: "debug" });
  domainConfig = loadConfig({
    env: { APP_ENV: "test" },
    overrides: { domains: { [DOMAIN]: { passwordFormat: "plain" } } },
  }).domains[DOMAIN] as DomainConfig;
});

afterAll(async () => {
  await Promise.all(opened.map((a) => a.close?.()));
  await slapd?.close();
  await db?.drop();
  if (secrets) rmSync(secrets, { recursive: true, force: true });
});

/** An ldap authenticator of these options, made by the registry as the auth service makes it. */
async function ldap(options: Record<string, unknown>): Promise<Authenticator> {
  const a = await createAuthenticatorKinds().create(
    `domains.${DOMAIN}.authenticator`,
    { kind: "ldap", options },
    { domain: DOMAIN, domainConfig, pool: db.pool, log: recorded.log },
  );
  opened.push(a);
  return a;
}

const templateOptions = () => ({ url: slapd.url, userDn: TEMPLATE });
const searchOptions = (more: Record<string, unknown> = {}) => ({
  url: slapd.url,
  search: { baseDn: PEOPLE },
  bindDn: READER_DN,
  bindPasswordFile: readerPasswordFile,
  ...more,
});

/** The error a call threw, with how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const start = performance.now();
  try {
    await call();
  } catch (error) {
    return { error: error as Error, ms: performance.now() - start };
  }
  throw new Error("it answered instead of failing");
}

/** slapd's open connections once the count stays the same for 200 ms (earlier tests' unbinds arrive late). */
async function settledOpenConnections(): Promise<number> {
  let last = await slapd.connectionsOpen();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await slapd.connectionsOpen();
    if (now === last) return now;
    last = now;
  }
}

describe("escaping (RFC 4514, RFC 4515)", () => {
  it("turns the metacharacters of DNs and filters into plain characters", () => {
    expect(escapeDnValue('a,b+c"d\\e<f>g;h=i')).toBe('a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i');
    expect(escapeDnValue(" #x ")).toBe("\\ #x\\ ");
    expect(escapeDnValue("#x")).toBe("\\#x");
    expect(escapeDnValue("nul\0")).toBe("nul\\00");
    expect(escapeFilterValue("*)(uid=*")).toBe("\\2a\\29\\28uid=\\2a");
    expect(escapeFilterValue("a\\b\0")).toBe("a\\5cb\\00");
    expect(escapeFilterValue("zoë")).toBe("zoë");
  });
});

describe("ldap authenticator against slapd", () => {
  it("binds with a DN template: the directory password yes, a wrong or unknown one no", async () => {
    const a = await ldap(templateOptions());
    expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
    expect(await a.checkPassword(jid("alice"), "not alice's")).toEqual({ ok: false, reason: "bad_password" });
    // slapd answers a bind to a DN it does not have as a wrong password (49), telling no one who exists
    expect(await a.checkPassword(jid("nobody"), "anything")).toEqual({ ok: false, reason: "bad_password" });
    expect(await a.userExists(jid("alice"))).toBe(true);
    expect(await a.userExists(jid("nobody"))).toBe(false);
  });

  it("never sends an empty password: the directory would take it as an anonymous bind and say yes", async () => {
    // this slapd allows unauthenticated binds (`allow bind_anon_dn`), as Active Directory does
    const client = new Client({ url: slapd.url, timeout: 5000 });
    await expect(client.bind(dnOf("alice"), "")).resolves.toBeUndefined();
    await client.unbind();
    for (const a of [await ldap(templateOptions()), await ldap(searchOptions())]) {
      expect(await a.checkPassword(jid("alice"), "")).toEqual({ ok: false, reason: "bad_password" });
    }
  });

  it("search-then-bind with the service account: one entry is the user; none or several is no one", async () => {
    const a = await ldap(searchOptions());
    expect(await a.checkPassword(jid("carol"), PASSWORDS.carol as string)).toEqual({ ok: true });
    expect(await a.checkPassword(jid("carol"), "not carol's")).toEqual({ ok: false, reason: "bad_password" });
    expect(await a.checkPassword(jid("nobody"), "anything")).toEqual({ ok: false, reason: "unknown_user" });
    expect(await a.userExists(jid("carol"))).toBe(true);
    expect(await a.userExists(jid("nobody"))).toBe(false);
    // a name nobody has costs a bind as a wrong password does: the answer's time does not tell them apart
    const bindsOf = async (user: string) => {
      const before = await slapd.bindsCompleted();
      await a.checkPassword(jid(user), "a wrong password");
      return (await slapd.bindsCompleted()) - before;
    };
    expect(await bindsOf("nobody")).toBe(await bindsOf("carol"));

    // two entries answer (cn=twin): refused whatever the password, and the operator is told
    const twins = await ldap(searchOptions({ search: { baseDn: PEOPLE, filter: "(cn={user})" } }));
    recorded.clear();
    expect(await twins.checkPassword(jid("twin"), PASSWORDS.twin1 as string)).toEqual({
      ok: false,
      reason: "unknown_user",
    });
    expect(await twins.userExists(jid("twin"))).toBe(false);
    expect(recorded.lines.some((l) => /several entries/.test(l.msg ?? "") && l.user === "twin")).toBe(true);
    expect(await twins.checkPassword(jid("twin1"), PASSWORDS.twin1 as string)).toEqual({ ok: true });
  });

  it("a user part with filter or DN metacharacters matches that very user, never anyone else", async () => {
    for (const a of [await ldap(templateOptions()), await ldap(searchOptions())]) {
      for (const name of ["a*b", "c,d", "e\\f"]) {
        expect(await a.checkPassword(jid(name), PASSWORDS[name] as string)).toEqual({ ok: true });
        expect(await a.userExists(jid(name))).toBe(true);
      }
      // a wildcard, an injected filter or an RDN of someone else's reach no one: a "no", not an error
      const attempts: [string, string][] = [
        ["*", PASSWORDS.alice as string],
        ["a*", PASSWORDS["a*b"] as string],
        ["alice)(uid=*", PASSWORDS.alice as string],
        ["*)(|(uid=*", PASSWORDS.alice as string],
        ["alice,ou=people", PASSWORDS.alice as string],
        ["c", PASSWORDS["c,d"] as string],
        ["e\\", PASSWORDS["e\\f"] as string],
        ["alice\\", PASSWORDS.alice as string],
      ];
      for (const [name, password] of attempts) {
        const answer = await a.checkPassword(jid(name), password);
        expect(answer.ok, name).toBe(false);
        expect(await a.userExists(jid(name)), name).toBe(false);
      }
    }
  });

  it("who may log in: the group, as memberOf on the user's entry or as a group search", async () => {
    const byEntry = await ldap({ ...templateOptions(), groupFilter: `(memberOf=${CHAT_GROUP})` });
    const byGroup = await ldap(
      searchOptions({
        groupSearch: { baseDn: GROUPS, filter: "(&(objectClass=groupOfNames)(cn=chat)(member={dn}))" },
      }),
    );
    for (const a of [byEntry, byGroup]) {
      expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
      // the right password learns the account may not chat; a wrong one learns nothing more
      expect(await a.checkPassword(jid("bob"), PASSWORDS.bob as string)).toEqual({
        ok: false,
        reason: "disabled",
      });
      expect(await a.checkPassword(jid("bob"), "not bob's")).toEqual({ ok: false, reason: "bad_password" });
      expect(await a.userExists(jid("alice"))).toBe(true);
      expect(await a.userExists(jid("bob"))).toBe(false);
      expect(await a.checkPassword(jid("e\\f"), PASSWORDS["e\\f"] as string)).toEqual({ ok: true });
    }
  });

  it("StartTLS and ldaps:// with the directory's CA; an untrusted certificate could not tell", async () => {
    const other = await makeCertificate("localhost");
    const otherCa = path.join(secrets, "other-ca.pem");
    writeFileSync(otherCa, other.cert);
    const trusted = [
      await ldap({ ...templateOptions(), startTls: true, tls: { ca: slapd.caFile } }),
      await ldap({ url: slapd.ldapsUrl, userDn: TEMPLATE, tls: { ca: slapd.caFile } }),
      await ldap({
        ...searchOptions({ url: slapd.ldapsUrl }),
        tls: { ca: slapd.caFile, servername: "localhost" },
      }),
    ];
    for (const a of trusted) {
      expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
      expect(await a.checkPassword(jid("alice"), "not alice's")).toEqual({
        ok: false,
        reason: "bad_password",
      });
    }
    const refused = [
      await ldap({ ...templateOptions(), startTls: true, tls: { ca: otherCa } }),
      await ldap({ url: slapd.ldapsUrl, userDn: TEMPLATE, tls: { ca: otherCa } }),
      await ldap({ url: slapd.ldapsUrl, userDn: TEMPLATE }), // the system's CAs do not know it
      await ldap({
        ...searchOptions({ url: slapd.ldapsUrl }),
        tls: { ca: slapd.caFile, servername: "ldap.example.org" },
      }),
    ];
    for (const a of refused) {
      const { error } = await failure(() => a.checkPassword(jid("alice"), PASSWORDS.alice as string));
      expect(error.name).toBe("BackendError");
      expect(error.message).toMatch(/certificate|self.signed|altnames|Hostname\/IP/i);
    }
  });

  it("a directory that is down could not tell, then answers again once it is back", async () => {
    const a = await ldap(searchOptions({ groupFilter: `(memberOf=${CHAT_GROUP})` }));
    const b = await ldap(templateOptions());
    expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
    await slapd.stop();
    try {
      for (const call of [
        () => a.checkPassword(jid("alice"), PASSWORDS.alice as string),
        () => a.checkPassword(jid("alice"), "a wrong password"),
        () => a.userExists(jid("alice")),
        () => b.checkPassword(jid("alice"), PASSWORDS.alice as string),
        () => b.userExists(jid("alice")),
      ]) {
        const { error } = await failure(call);
        expect(error.name).toBe("BackendError");
        expect(error.message).toMatch(/^directory unreachable/);
      }
    } finally {
      await slapd.start();
    }
    // the pool's connections died with it: new ones, at the first login after
    expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
    expect(await b.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
  });

  it("a directory that does not answer (stopped with SIGSTOP) could not tell within the timeouts", async () => {
    const search = await ldap(searchOptions({ timeoutMs: 400, connectTimeoutMs: 400 }));
    const template = await ldap({ ...templateOptions(), timeoutMs: 400 });
    const startTls = await ldap({
      ...templateOptions(),
      startTls: true,
      tls: { ca: slapd.caFile },
      timeoutMs: 400,
    });
    const ldaps = await ldap({
      url: slapd.ldapsUrl,
      userDn: TEMPLATE,
      tls: { ca: slapd.caFile },
      connectTimeoutMs: 400,
    });
    expect(await search.userExists(jid("alice"))).toBe(true); // its pool is open when slapd stops
    slapd.pause();
    try {
      for (const [a, expected] of [
        [search, /did not answer within 400 ms/],
        [template, /did not answer within 400 ms/],
        [startTls, /did not answer within 400 ms|StartTLS/],
        [ldaps, /did not accept a connection within 400 ms/],
      ] as const) {
        const { error, ms } = await failure(() => a.checkPassword(jid("alice"), PASSWORDS.alice as string));
        expect(error.name).toBe("BackendError");
        expect(error.message).toMatch(expected);
        expect(ms).toBeGreaterThanOrEqual(350);
        expect(ms).toBeLessThan(5000);
      }
    } finally {
      slapd.resume();
    }
    for (const a of [search, template, startTls, ldaps]) {
      expect(await a.checkPassword(jid("alice"), PASSWORDS.alice as string)).toEqual({ ok: true });
    }
  });

  it("a service account the directory refuses could not tell (it is not a wrong user password)", async () => {
    const wrongFile = path.join(secrets, "wrong-reader-password");
    writeFileSync(wrongFile, "not the reader's password");
    const a = await ldap(searchOptions({ bindPasswordFile: wrongFile }));
    const { error } = await failure(() => a.checkPassword(jid("alice"), PASSWORDS.alice as string));
    expect(error.name).toBe("BackendError");
    expect(error.message).toBe(
      `the directory refused the service account ${READER_DN}: check bindDn and its password`,
    );
  });

  it("searches share poolSize connections, binds keep up to poolSize of theirs; close() ends them all", async () => {
    const a = await ldap(searchOptions({ poolSize: 2 }));
    const idle = await settledOpenConnections();
    const before = await slapd.connectionsOpened();
    const exists = await Promise.all(
      Array.from({ length: 20 }, (_, i) => a.userExists(jid(i % 2 ? "alice" : "carol"))),
    );
    expect(exists.every(Boolean)).toBe(true);
    const afterSearches = await slapd.connectionsOpened();
    expect(afterSearches - before).toBe(2 + 1); // the search pool, and the count's own connection
    // one after the other, the checks bind on one connection (a wrong password leaves it usable too)
    for (let i = 0; i < 6; i++) {
      const answer = await a.checkPassword(jid("alice"), i === 2 ? "wrong" : (PASSWORDS.alice as string));
      expect(answer.ok).toBe(i !== 2);
    }
    const afterChecks = await slapd.connectionsOpened();
    expect(afterChecks - afterSearches).toBe(1 + 1);
    // at once, they take more; poolSize of them stay open for the next binds, the others are closed
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => a.checkPassword(jid("carol"), PASSWORDS.carol as string)),
    );
    expect(answers.every((x) => x.ok)).toBe(true);
    expect((await slapd.connectionsOpened()) - afterChecks).toBeLessThanOrEqual(7 + 1);
    await eventually(
      async () => (await slapd.connectionsOpen()) === idle + 2 + 2,
      5000,
      "2 search and 2 bind connections open, the others closed",
    );
    await a.close?.();
    await eventually(async () => (await slapd.connectionsOpen()) === idle, 5000, "every connection closed");
  });

  it("refuses options that cannot work at start, naming the key and the fix", async () => {
    const err = await createAuthenticators(
      loadConfig({
        env: { APP_ENV: "test" },
        overrides: {
          domains: {
            "a.test": {
              authenticator: {
                kind: "ldap",
                options: { url: "ldaps://x", startTls: true, userDn: "uid={user}" },
              },
            },
            "b.test": { authenticator: { kind: "ldap", options: { url: "ldap://x" } } },
            "c.test": {
              authenticator: {
                kind: "ldap",
                options: {
                  url: "ldap://x",
                  userDn: "uid=x",
                  search: { baseDn: PEOPLE, filter: "uid={user}" },
                },
              },
            },
            "d.test": {
              authenticator: {
                kind: "ldap",
                options: {
                  url: "ldap://x",
                  search: { baseDn: PEOPLE },
                  bindDn: READER_DN,
                  groupSearch: { baseDn: GROUPS, filter: "(cn=chat)" },
                },
              },
            },
            "e.test": { authenticator: { kind: "ldap", options: { url: "http://x", userDn: TEMPLATE } } },
            "f.test": {
              authenticator: {
                kind: "ldap",
                options: { url: "ldaps://x", userDn: TEMPLATE, tls: { ca: "/nonexistent/ca.pem" } },
              },
              passwordFormat: "plain",
            },
            // MongooseIM would ask get_password, which a directory cannot answer
            "g.test": { authenticator: { kind: "ldap", options: { url: "ldaps://x", userDn: TEMPLATE } } },
          },
        },
      }),
      { pool: db.pool, log: recorded.log },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupProblems);
    expect((err as StartupProblems).problems).toEqual([
      "domains.a.test.authenticator.options.startTls: ldaps:// is TLS from the start: remove startTls, or use ldap:// with it",
      "domains.b.test.authenticator.options: how users are found is missing: set userDn (a DN template) or search (search-then-bind)",
      "domains.c.test.authenticator.options.search: userDn and search both say how users are found: keep one",
      "domains.c.test.authenticator.options.userDn: must contain {user}: uid={user},ou=people,dc=example,dc=org",
      "domains.c.test.authenticator.options.search.filter: must be in parentheses: (uid={user})",
      "domains.d.test.authenticator.options.groupSearch.filter: must contain {dn} or {user}, or every user would be in or out: (member={dn})",
      "domains.d.test.authenticator.options.bindDn: needs bindPasswordFile (or bindPassword): an empty password binds anonymously",
      expect.stringMatching(/^domains\.e\.test\.authenticator\.options\.url: /),
      "domains.f.test.authenticator.options.tls.ca: cannot read /nonexistent/ca.pem (ENOENT): fix the path or the file's permissions",
      'domains.g.test.passwordFormat: an ldap domain has no password to hand out (get_password): set "plain", so that MongooseIM asks check_password (and allows only SASL PLAIN, docs/auth.md)',
    ]);
  });

  it("logs no password, whatever happened above", () => {
    const text = recorded.text();
    expect(text.length).toBeGreaterThan(0); // the warnings (several entries, …) were written
    for (const secret of [...Object.values(PASSWORDS), READER_PASSWORD, "not the reader's password"]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe("an ldap domain in the auth service", () => {
  let stack: AuthStack;
  const BOT_PASSWORD = "beep boop";

  beforeAll(async () => {
    stack = await startAuthStack(db, {
      domains: {
        [DOMAIN]: {
          authenticator: {
            kind: "ldap",
            options: searchOptions({
              groupFilter: `(memberOf=${CHAT_GROUP})`,
              timeoutMs: 500,
              connectTimeoutMs: 500,
            }),
          },
          passwordFormat: "plain",
          buddies: ["bot"],
        },
      },
    });
    await addUser(
      db.pool,
      jid("bot"),
      { cleartext: BOT_PASSWORD },
      stack.config.domains[DOMAIN] as DomainConfig,
    );
  });

  afterAll(async () => {
    await stack?.close();
  });

  const check = (user: string, pass: string) =>
    stack.mongooseim("check_password", { user, server: DOMAIN, pass });

  it("a directory user logs in through MongooseIM's contract and the app API; a buddy with its web_users password", async () => {
    expect(await check("alice", PASSWORDS.alice as string)).toBe("200 true");
    expect(await check("alice", "not alice's")).toBe("200 false");
    expect(await check("bob", PASSWORDS.bob as string)).toBe("200 false"); // outside the chat group
    expect(await stack.appLogin(`alice@${DOMAIN}`, PASSWORDS.alice as string)).toMatchObject({ status: 200 });
    expect(await stack.appLogin(`bob@${DOMAIN}`, PASSWORDS.bob as string)).toMatchObject({ status: 403 });
    // the buddy is no one in the directory: web_users answers for it (issue 20 item 4)
    expect(await check("bot", BOT_PASSWORD)).toBe("200 true");
    expect(await check("bot", "beep")).toBe("200 false");
    expect(await stack.appLogin(`bot@${DOMAIN}`, BOT_PASSWORD)).toMatchObject({ status: 200 });
    expect(await stack.mongooseim("user_exists", { user: "alice", server: DOMAIN, pass: "" })).toBe(
      "200 true",
    );
    expect(await stack.mongooseim("user_exists", { user: "nobody", server: DOMAIN, pass: "" })).toBe(
      "200 false",
    );
    // a directory holds its own passwords: nothing to serve, nothing to change here
    expect(await stack.mongooseim("get_password", { user: "alice", server: DOMAIN, pass: "" })).toBe("404 ");
    expect(await stack.mongooseim("set_password", { user: "alice", server: DOMAIN, pass: "new" })).toBe(
      "403 refused",
    );
  });

  it("a directory that is down: MongooseIM gets the backend-failure answer, the app 503; the buddy still logs in", async () => {
    await slapd.stop();
    try {
      expect(await check("carol", PASSWORDS.carol as string)).toBe("400 internal_error");
      expect(await stack.appLogin(`carol@${DOMAIN}`, PASSWORDS.carol as string)).toMatchObject({
        status: 503,
        code: "auth_unavailable",
      });
      expect(await check("bot", BOT_PASSWORD)).toBe("200 true");
    } finally {
      await slapd.start();
    }
    expect(await check("carol", PASSWORDS.carol as string)).toBe("200 true");
  });
});
