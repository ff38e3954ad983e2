import { generateKeyPairSync } from "node:crypto";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { type AuthStack, startAuthStack } from "../../../../test/support/auth-stack.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { type OidcProvider, startOidcProvider } from "../../../../test/support/oidc-provider.ts";
import { createAuthenticators } from "./registry.ts";

/**
 * A `jwt` domain whose keys are an OpenID Provider's JWKS: the real oidc-provider on loopback signs the tokens
 * (test/support/oidc-provider.ts says how without a browser), the domain fetches its jwks_uri (or discovers it
 * from the issuer), takes a rotated key after fetching the set again, refuses keys it never published, and
 * answers "could not tell" (the contract's 400 internal_error, never a "no") while the provider is down.
 */

const AUDIENCE = "xmpp-sidecars";

let op: OidcProvider;
let db: TestDatabase;
let stack: AuthStack;

const options = (source: Record<string, unknown>) => ({
  ...source,
  algorithms: ["RS256"],
  audience: AUDIENCE,
  userClaim: "preferred_username",
  // the provider is on loopback: listed, as an operator lists a provider on a private address
  allowTargets: ["127.0.0.1"],
  // an unknown kid fetches the set again at once (30 s by default)
  jwksCooldownSeconds: 0,
});

const check = (user: string, domain: string, pass: string) =>
  stack.mongooseim("check_password", { user, server: domain, pass });

/** A token as the provider's would be, signed by a key it never published. */
function rogueToken(user: string, kid: string): Promise<string> {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return new SignJWT({ preferred_username: user, scope: "xmpp" })
    .setProtectedHeader({ alg: "RS256", kid, typ: "at+jwt" })
    .setIssuer(op.issuer)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(privateKey);
}

beforeAll(async () => {
  op = await startOidcProvider({ audience: AUDIENCE, users: ["alice", "bob", "carol", "dave"] });
  db = await createTestDatabase();
  stack = await startAuthStack(db, {
    domains: {
      "sso.test": {
        authenticator: { kind: "jwt", options: options({ jwksUrl: op.jwksUri, issuer: op.issuer }) },
        passwordFormat: "plain",
      },
      "discovered.test": {
        authenticator: { kind: "jwt", options: options({ issuerUrl: op.issuer }) },
        passwordFormat: "plain",
      },
    },
  });
});

afterAll(async () => {
  await stack?.close();
  await op?.close();
  await db?.drop();
});

describe("jwt domain with an OpenID Provider's keys", () => {
  it("accepts the provider's token for its user, through MongooseIM's contract and the app API", async () => {
    const token = await op.token("alice");
    expect(JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString())).toMatchObject({
      alg: "RS256",
      kid: op.kid(),
    });
    expect(await check("alice", "sso.test", token)).toBe("200 true");
    expect(await check("bob", "sso.test", token)).toBe("200 false");
    expect(await stack.appLogin("alice@sso.test", token)).toMatchObject({ status: 200 });
    expect(await stack.appLogin("bob@sso.test", token)).toMatchObject({ status: 401 });
    // the jwks_uri found through /.well-known/openid-configuration
    expect(await check("alice", "discovered.test", token)).toBe("200 true");
    expect(await stack.mongooseim("user_exists", { user: "anyone", server: "sso.test", pass: "" })).toBe(
      "200 true",
    );
    expect(await stack.mongooseim("get_password", { user: "alice", server: "sso.test", pass: "" })).toBe(
      "404 ",
    );
  });

  it("takes a rotated key after fetching the set again; a key no longer published is refused", async () => {
    const before = await op.token("bob"); // signed with the key about to go
    const oldKid = op.kid();
    op.rotate();
    expect(op.kid()).not.toBe(oldKid);
    const after = await op.token("carol");
    expect(await check("carol", "sso.test", after)).toBe("200 true");
    expect(await check("carol", "discovered.test", after)).toBe("200 true");
    expect(await check("bob", "sso.test", before)).toBe("200 false");
  });

  it("refuses a token signed by a key the provider never published, whatever kid it names", async () => {
    expect(await check("alice", "sso.test", await rogueToken("alice", "never-published"))).toBe("200 false");
    expect(await check("alice", "sso.test", await rogueToken("alice", op.kid()))).toBe("200 false");
  });

  it("while the provider is down: keys already fetched still verify, an unknown kid is 'could not tell'", async () => {
    const token = await op.token("dave");
    op.stop();
    expect(await check("dave", "sso.test", token)).toBe("200 true");
    const t0 = Date.now();
    expect(await check("dave", "sso.test", await rogueToken("dave", "rotated-while-down"))).toBe(
      "400 internal_error",
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("refuses at start a provider on loopback that allowTargets does not list", async () => {
    const config = loadConfig({
      env: { APP_ENV: "test" },
      overrides: {
        domains: {
          "unlisted.test": {
            authenticator: {
              kind: "jwt",
              options: { ...options({ jwksUrl: op.jwksUri, issuer: op.issuer }), allowTargets: [] },
            },
            passwordFormat: "plain",
          },
        },
      },
    });
    await expect(
      createAuthenticators(config, { pool: db.pool, log: pino({ level: "silent" }) }),
    ).rejects.toThrow(
      /domains\.unlisted\.test\.authenticator\.options\.jwksUrl: 127\.0\.0\.1 is a loopback address: .* list it in domains\.unlisted\.test\.authenticator\.options\.allowTargets/,
    );
  });
});
