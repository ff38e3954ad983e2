import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import { runService } from "../support/processes.ts";

/**
 * The attack: on a demo or staging machine, any local process (a compromised web app, a user's shell) asks
 * the auth contract for every user's SCRAM data, sets passwords, registers accounts. Without MongooseIM's
 * basic_auth nothing tells it from MongooseIM, so the auth service refuses to start without one everywhere but
 * in development and tests (docs/security.md "The auth contract's basic_auth").
 */

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

describe("the auth service outside development", () => {
  it("refuses to start without basic_auth, saying how to give it", async () => {
    const r = await runService("auth", { APP_ENV: "demo", DATABASE_URL: db.url, AUTH_PORT: "0" });
    expect(r.code).toBe(1);
    expect(r.ready).toBe(false);
    expect(r.stderr).toMatch(
      /services\.auth\.basicAuth: required in demo: set AUTH_BASIC_AUTH or AUTH_BASIC_AUTH_FILE to MongooseIM's basic_auth/,
    );
  });
});
