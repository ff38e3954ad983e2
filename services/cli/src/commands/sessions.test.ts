import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { createSession, ensureSigningKeys, signingKeys } from "#common/users/app-sessions.ts";
import { runSidecars } from "../../../../test/support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { type AppSessions, createAppSessions } from "../../../http-utility/src/sessions/tokens.ts";

/**
 * `sidecars sessions list|revoke|rotate-key`, run as the operator runs them (bin/sidecars.js) against this
 * file's database, with http-utility's token code listening as a running process would.
 */

let db: TestDatabase;
let sessions: AppSessions;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadConfig({ env: { APP_ENV: "test" } });
  sessions = createAppSessions({
    config,
    pool: db.pool,
    log: pino({ level: "silent" }),
    listener: db.listener,
  });
});
afterAll(async () => {
  sessions?.close();
  await db?.drop();
});

const sidecars = (args: string[]) => runSidecars(args, { env: { DATABASE_URL: db.url } });

async function loggedIn(node: string, app = {}) {
  const jid = { node, domain: "localhost" };
  const { session, refreshToken } = await createSession(db.pool, {
    jid,
    clientAddress: "203.0.113.7",
    app,
    refreshTtlMs: 3_600_000,
  });
  return { session, refreshToken, token: (await sessions.issue(session)).token };
}

describe("sidecars sessions", () => {
  it("lists a user's live sessions, never a token", async () => {
    const a = await loggedIn("alice", { name: "OyoChat", version: "2.1.0", platform: "ios" });
    const b = await loggedIn("alice");
    await loggedIn("bob");
    const r = await sidecars(["sessions", "list", "Alice@localhost"]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(r.stdout).toContain(a.session.id);
    expect(r.stdout).toContain(b.session.id);
    expect(r.stdout).toMatch(/203\.0\.113\.7\tOyoChat 2\.1\.0 ios/);
    for (const t of [a, b]) {
      expect(r.stdout).not.toContain(t.refreshToken);
      expect(r.stdout).not.toContain(t.token);
    }
    expect((await sidecars(["sessions", "list", "nobody@localhost"])).stdout).toBe(
      "nobody@localhost has no live app session\n",
    );
    const bad = await sidecars(["sessions", "list", "not a jid"]);
    expect(bad.code).toBe(2);
  });

  it("revokes one session or all, and a running process refuses their tokens at once", async () => {
    const a = await loggedIn("carol");
    const b = await loggedIn("carol");
    expect((await sessions.verify(a.token)).ok).toBe(true);

    const one = await sidecars(["sessions", "revoke", "carol@localhost", "--session", a.session.id]);
    expect(one).toMatchObject({ code: 0, stdout: `revoked session ${a.session.id} of carol@localhost\n` });
    await eventually(
      async () => (await sessions.verify(a.token)).ok === false,
      5_000,
      "the revocation reaching the process",
    );
    expect((await sessions.verify(b.token)).ok).toBe(true);

    const again = await sidecars(["sessions", "revoke", "carol@localhost", "--session", a.session.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has no live session/);
    expect((await sidecars(["sessions", "revoke", "carol@localhost", "--session", "x"])).code).toBe(2);

    const all = await sidecars(["sessions", "revoke", "carol@localhost"]);
    expect(all).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^revoked 1 session\(s\) of carol@localhost/),
    });
    await eventually(async () => (await sessions.verify(b.token)).ok === false, 5_000, "all revoked");
  });

  it("rotates the signing key: new tokens carry it, the old ones keep verifying", async () => {
    await ensureSigningKeys(db.pool);
    const before = await loggedIn("dave");
    const r = await sidecars(["sessions", "rotate-key"]);
    expect(r.code, r.stderr).toBe(0);
    const id = /^new signing key (\S+):/.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    expect((await signingKeys(db.pool))[0]?.id).toBe(id);
    const kidOf = (token: string) =>
      (JSON.parse(Buffer.from(token.split(".")[0] as string, "base64url").toString()) as { kid: string }).kid;
    await eventually(
      async () => kidOf((await loggedIn("dave")).token) === id,
      5_000,
      "the process signing with the new key",
    );
    expect((await sessions.verify(before.token)).ok).toBe(true);
  });
});
