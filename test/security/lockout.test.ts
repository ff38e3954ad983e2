import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser } from "#common/users/web-users.ts";
import { type AuthStack, startAuthStack } from "../support/auth-stack.ts";
import { runSidecars } from "../support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

/**
 * The attack: JIDs are phone numbers, so a script can try wrong passwords for any of them, for free. It must
 * never stop the rightful user from logging in, over the app API or through MongooseIM, while its own guesses
 * stay bounded (docs/security.md "Logins: no lockout by strangers"). Clients differ by their real source
 * address, never by a header.
 */

const OWNER = "306912345678@localhost";
const PASSWORD = "the owner's password";
const GUARD = {
  maxFailures: 5,
  maxFailuresPerAddress: 30,
  windowSeconds: 300,
  lockSeconds: 900,
  delayAfterFailures: 5,
  maxDelayMs: 300,
};

let db: TestDatabase;
let stack: AuthStack;

beforeAll(async () => {
  db = await createTestDatabase();
  stack = await startAuthStack(db, { guard: GUARD });
  const domain = stack.config.domains.localhost;
  if (!domain) throw new Error("config/test.json has no localhost domain");
  await addUser(db.pool, { node: "306912345678", domain: "localhost" }, { cleartext: PASSWORD }, domain);
});

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

const appLogin = (password: string, from: string) => stack.appLogin(OWNER, password, from);
const mongooseimCheck = (pass: string) =>
  stack.mongooseim("check_password", { user: "306912345678", server: "localhost", pass });

describe("a stranger guessing the owner's password", () => {
  it("over the app API, from one address: only that address is refused, the owner logs in everywhere", async () => {
    const attacker = "127.0.0.66";
    for (let i = 0; i < 20; i++) await appLogin(`guess ${i}`, attacker);
    expect(await appLogin(PASSWORD, attacker)).toMatchObject({ status: 429, code: "too_many_failures" });

    expect(await appLogin(PASSWORD, "127.0.0.1")).toMatchObject({ status: 200 });
    expect(await mongooseimCheck(PASSWORD)).toBe("200 true");
  });

  it("over the app API, from many addresses: each gets maxFailures guesses, the owner is never refused", async () => {
    for (let a = 1; a <= 10; a++) {
      const attacker = `127.0.1.${a}`;
      const answers = [];
      for (let i = 0; i < GUARD.maxFailures + 2; i++) {
        answers.push((await appLogin(`guess ${a}.${i}`, attacker)).status);
      }
      // maxFailures guesses were checked (401), the rest refused unchecked (429)
      expect(answers).toEqual([...Array(GUARD.maxFailures).fill(401), 429, 429]);
    }
    expect(await appLogin(PASSWORD, "127.0.0.2")).toMatchObject({ status: 200 });
  });

  it("through MongooseIM, which sends no address: wrong answers slow down, the right one still passes", async () => {
    for (let i = 0; i < 12; i++) expect(await mongooseimCheck(`guess ${i}`)).toBe("200 false");
    const started = performance.now();
    expect(await mongooseimCheck("guess 13")).toBe("200 false");
    expect(performance.now() - started).toBeGreaterThanOrEqual(GUARD.maxDelayMs - 10); // held back
    expect(await mongooseimCheck(PASSWORD)).toBe("200 true");
    expect(await appLogin(PASSWORD, "127.0.0.3")).toMatchObject({ status: 200 });
  });

  it("`sidecars users unlock` forgives a user's counted failures at once, for every process", async () => {
    // a second user, on a new phone, typing an old password: the address is refused, even for the right one
    const user = "306955555555@localhost";
    const domain = stack.config.domains.localhost;
    if (!domain) throw new Error("no localhost domain");
    await addUser(db.pool, { node: "306955555555", domain: "localhost" }, { cleartext: "new pw" }, domain);
    const phone = "127.0.0.77";
    for (let i = 0; i < GUARD.maxFailures; i++) await stack.appLogin(user, `old password ${i}`, phone);
    expect(await stack.appLogin(user, "new pw", phone)).toMatchObject({ status: 429 });

    const unlock = await runSidecars(["users", "unlock", user], { env: { DATABASE_URL: db.url } });
    expect(unlock, unlock.stderr).toMatchObject({ code: 0 });
    expect(unlock.stdout).toMatch(/^unlocked 306955555555@localhost: \d+ failure counter\(s\) forgotten\n$/);
    expect(await stack.appLogin(user, "new pw", phone)).toMatchObject({ status: 200 });
    const again = await runSidecars(["users", "unlock", user], { env: { DATABASE_URL: db.url } });
    expect(again.stdout).toBe("306955555555@localhost had no failed logins counted\n");
  });
});
