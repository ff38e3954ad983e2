import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, findUser } from "#common/users/web-users.ts";
import { type AuthStack, startAuthStack } from "../support/auth-stack.ts";
import { runSidecars } from "../support/cli.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";

/**
 * The attack: `+306912345678` and `306912345678` would be two accounts of one phone number. Whoever creates
 * the `+` spelling could receive what the owner's apps or servers address with it, or confuse whoever reads
 * by one spelling and writes by the other. The `+` is refused wherever a user part names an account
 * (docs/security.md "One spelling per user"); no code falls back from one spelling to the other.
 */

const NUMBER = "306912345678";

let db: TestDatabase;
let stack: AuthStack;

beforeAll(async () => {
  db = await createTestDatabase();
  stack = await startAuthStack(db);
  const domain = stack.config.domains.localhost;
  if (!domain) throw new Error("config/test.json has no localhost domain");
  await addUser(db.pool, { node: NUMBER, domain: "localhost" }, { cleartext: "owner pw" }, domain);
});

afterAll(async () => {
  await stack?.close();
  await db?.drop();
});

describe("a user part with a leading +", () => {
  it("cannot be registered through MongooseIM's contract", async () => {
    const answer = await stack.mongooseim("register", {
      user: `+${NUMBER}`,
      server: "localhost",
      pass: "mine now",
    });
    expect(answer).not.toMatch(/^201 /);
    expect(await findUser(db.pool, { node: `+${NUMBER}`, domain: "localhost" })).toBeUndefined();
  });

  it("cannot be created with the CLI, which says how to write the number", async () => {
    const r = await runSidecars(["users", "add", `+${NUMBER}@localhost`, "--password-stdin"], {
      input: "pw\n",
      env: { DATABASE_URL: db.url },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/may not start with \+: write a phone number without it/);
    expect(await findUser(db.pool, { node: `+${NUMBER}`, domain: "localhost" })).toBeUndefined();
  });

  it("logs in nowhere, not even with the owner's password", async () => {
    expect(await stack.appLogin(`+${NUMBER}@localhost`, "owner pw")).toMatchObject({ status: 401 });
    expect(
      await stack.mongooseim("check_password", { user: `+${NUMBER}`, server: "localhost", pass: "owner pw" }),
    ).toBe("200 false");
    // the one spelling works
    expect(await stack.appLogin(`${NUMBER}@localhost`, "owner pw")).toMatchObject({ status: 200 });
  });
});
