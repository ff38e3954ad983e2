import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { addUser } from "#common/users/web-users.ts";
import { type AuthCore, createAuthCore } from "../../services/auth/src/core/auth-core.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

/**
 * The attack: time wrong-password answers to learn which phone numbers have accounts. A wrong password for an
 * existing user costs a PBKDF2 derivation; for a user who does not exist (or is disabled) the same derivation
 * is spent on nothing, with the domain's parameters (docs/security.md "Equal timing"). Measured on the real
 * core and database, interleaved so that a loaded machine slows both sides alike; the bound is on the ratio
 * of medians, 0.7 to 1.43 (without the dummy derivation it is 0.33 here; 0.63 over HTTP, 5.7 ms against 9.1).
 */

const SAMPLES = 60;
// the production default (MongooseIM 6.x's): the derivation must dominate a check, as it does in production
const ITERATIONS = 10_000;

let db: TestDatabase;
let core: AuthCore;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      database: { url: db.url },
      domains: { localhost: { scramIterations: ITERATIONS } },
      // many wrong answers per user here: none may be held back or refused, so that only the check is timed
      services: {
        auth: { guard: { maxFailures: 1000, maxFailuresPerAddress: 100_000, delayAfterFailures: 100_000 } },
      },
    },
  });
  const domain = config.domains.localhost;
  if (!domain) throw new Error("config/test.json has no localhost domain");
  await addUser(db.pool, { node: "306900000001", domain: "localhost" }, { cleartext: "right one" }, domain);
  // a user of its own for every sample: each check of either side counts its first failure of a JID (an
  // INSERT), not the n-th of one JID (an UPDATE of a hot row), so the two sides do the same database work
  for (let i = 0; i < 2 * (SAMPLES + 1); i++) {
    await addUser(db.pool, existingUser(i), { cleartext: `right ${i}` }, domain);
  }
  await db.pool.query(
    "INSERT INTO web_users (node, domain, token) VALUES ('306900000002', 'localhost', 'legacy cleartext')",
  );
  core = await createAuthCore({
    config,
    pool: db.pool,
    listener: db.listener,
    log: pino({ level: "silent" }),
  });
});

afterAll(async () => {
  await core?.close();
  await db?.drop();
});

const existingUser = (i: number) => ({ node: `30691000${String(i).padStart(4, "0")}`, domain: "localhost" });
const unknownUser = (i: number) => ({ node: `30692000${String(i).padStart(4, "0")}`, domain: "localhost" });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

async function timed(check: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await check();
  return performance.now() - started;
}

/** Medians of interleaved samples of two checks that must both answer no. */
async function race(a: () => Promise<boolean>, b: () => Promise<boolean>): Promise<[number, number]> {
  await a();
  await b(); // warm both paths (prepared statements, the thread pool)
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    ta.push(await timed(async () => expect(await a()).toBe(false)));
    tb.push(await timed(async () => expect(await b()).toBe(false)));
  }
  return [median(ta), median(tb)];
}

describe("how long a wrong password takes", () => {
  const legacy = { node: "306900000002", domain: "localhost" };

  it("is the same for an unknown user as for an existing one (MongooseIM's check_password)", async () => {
    let i = 0;
    let j = 0;
    const [known, stranger] = await race(
      () => core.checkPassword(existingUser(i++), "wrong"),
      () => core.checkPassword(unknownUser(j++), "wrong"),
    );
    console.info(
      `check_password, wrong password: existing ${known.toFixed(2)} ms, unknown ${stranger.toFixed(2)} ms`,
    );
    expect(stranger / known).toBeGreaterThan(0.7);
    expect(stranger / known).toBeLessThan(1.43);
  });

  it("is the same for an unknown user as for an existing one (an app's login)", async () => {
    let i = SAMPLES + 1;
    let j = SAMPLES + 1;
    const login = async (jid: { node: string; domain: string }) =>
      (await core.checkAppLogin(jid, "wrong", "127.0.0.1")).ok;
    const [known, stranger] = await race(
      () => login(existingUser(i++)),
      () => login(unknownUser(j++)),
    );
    console.info(
      `app login, wrong password: existing ${known.toFixed(2)} ms, unknown ${stranger.toFixed(2)} ms`,
    );
    expect(stranger / known).toBeGreaterThan(0.7);
    expect(stranger / known).toBeLessThan(1.43);
  });

  it("is the same for a legacy cleartext row as for a hashed one", async () => {
    // one JID on each side: both count the failures of one row
    const hashed = { node: "306900000001", domain: "localhost" };
    const [known, cleartext] = await race(
      () => core.checkPassword(hashed, "wrong"),
      () => core.checkPassword(legacy, "wrong"),
    );
    expect(cleartext / known).toBeGreaterThan(0.7);
    expect(cleartext / known).toBeLessThan(1.43);
  });
});
