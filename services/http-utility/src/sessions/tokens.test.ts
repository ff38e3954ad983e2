import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { type Listener, startListener } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import { createSession, revokeAllSessions, signingKeys } from "#common/users/app-sessions.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { type AppSessions, createAppSessions } from "./tokens.ts";

/**
 * Access tokens (tokens.ts) against a real database, each AppSessions on a LISTEN connection of its own as a
 * process has: a token verifies without a database round trip once the process listens, and a revocation made
 * anywhere reaches it through NOTIFY; the clock is the test's, for expiry.
 */

const log = pino({ level: "silent" });
const config = loadConfig({
  env: { APP_ENV: "test" },
  overrides: { services: { httpUtility: { sessions: { accessTtl: "1m", refreshTtl: "1h" } } } },
});
let db: TestDatabase;
const opened: { sessions: AppSessions; listener?: Listener }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const o of opened) {
    o.sessions.close();
    await o.listener?.close();
  }
  await db?.drop();
});

/** A pool that counts the queries made through it. */
function counting(pool: Pool): { pool: Pool; queries: () => number } {
  let n = 0;
  const proxy = new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === "query") {
        return (...args: unknown[]) => {
          n++;
          return (target.query as (...a: unknown[]) => unknown)(...args);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { pool: proxy, queries: () => n };
}

function processSessions(o: { listen?: boolean; now?: () => number } = {}) {
  const c = counting(db.pool);
  const listener = o.listen === false ? undefined : startListener({ connectionString: db.url, log });
  const sessions = createAppSessions({
    config,
    pool: c.pool,
    log,
    ...(listener ? { listener } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
  opened.push({ sessions, ...(listener ? { listener } : {}) });
  return { sessions, queries: c.queries };
}

let users = 0;
async function newSession() {
  const jid = { node: `u${++users}`, domain: "localhost" };
  const { session } = await createSession(db.pool, { jid, app: {}, refreshTtlMs: 3_600_000 });
  return { jid, session };
}

describe("access tokens", () => {
  it("live the configured access TTL, and never beyond the session's end", async () => {
    const { sessions } = processSessions({ listen: false });
    const { session } = await newSession();
    expect((await sessions.issue(session)).expiresIn).toBe(60);
    const ending = { ...session, expiresAt: new Date(Date.now() + 10_500) };
    const short = (await sessions.issue(ending)).expiresIn;
    expect(short).toBeGreaterThanOrEqual(10);
    expect(short).toBeLessThanOrEqual(11);
  });

  it("expire by the clock: access_token_expired, as the app is told to refresh", async () => {
    let now = Date.now();
    const { sessions } = processSessions({ listen: false, now: () => now });
    const { session, jid } = await newSession();
    const { token } = await sessions.issue(session);
    expect(await sessions.verify(token)).toEqual({ ok: true, jid, sessionId: session.id });
    now += 61_000;
    expect(await sessions.verify(token)).toEqual({ ok: false, reason: "expired" });
  });

  it("verify without the database once the process listens, and a revocation elsewhere reaches it by NOTIFY", async () => {
    const signer = processSessions();
    const verifier = processSessions();
    const { session, jid } = await newSession();
    const { token } = await signer.sessions.issue(session);
    // until it listens (and has read what was revoked before), each token's session is looked up
    await eventually(
      async () => {
        const before = verifier.queries();
        const v = await verifier.sessions.verify(token);
        return v.ok && verifier.queries() === before;
      },
      10_000,
      "a verification without a query",
    );
    const quiet = verifier.queries();
    for (let i = 0; i < 20; i++) expect((await verifier.sessions.verify(token)).ok).toBe(true);
    expect(verifier.queries()).toBe(quiet);

    // revoked by another process (here: the store itself, as a password change does)
    expect(await revokeAllSessions(db.pool, jid, "password_changed")).toEqual([session.id]);
    await eventually(
      async () => {
        const v = await verifier.sessions.verify(token);
        return !v.ok && v.reason === "revoked";
      },
      5_000,
      "the NOTIFY",
    );
    expect(verifier.queries()).toBe(quiet);
  });

  it("a process that starts after a revocation reads it from the table", async () => {
    const first = processSessions();
    const { session, jid } = await newSession();
    const { token } = await first.sessions.issue(session);
    await revokeAllSessions(db.pool, jid, "logout_all");
    const late = processSessions();
    expect(await late.sessions.verify(token)).toEqual({ ok: false, reason: "revoked" });
    // and still once it listens and trusts its set
    await new Promise((r) => setTimeout(r, 1000));
    expect(await late.sessions.verify(token)).toEqual({ ok: false, reason: "revoked" });
  });

  it("two processes starting at once make one signing key", async () => {
    await db.pool.query("DELETE FROM app_session_keys");
    const a = processSessions({ listen: false });
    const b = processSessions({ listen: false });
    const { session } = await newSession();
    const [ta, tb] = await Promise.all([a.sessions.issue(session), b.sessions.issue(session)]);
    expect(await signingKeys(db.pool)).toHaveLength(1);
    expect((await b.sessions.verify(ta.token)).ok).toBe(true);
    expect((await a.sessions.verify(tb.token)).ok).toBe(true);
  });
});
