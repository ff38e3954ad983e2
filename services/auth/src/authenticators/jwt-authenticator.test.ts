import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type CryptoKey, exportPKCS8, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { StartupProblems } from "#common/errors.ts";
import { addUser } from "#common/users/web-users.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { createAuthCore } from "../core/auth-core.ts";
import type { Authenticator } from "./authenticator.ts";
import { createAuthenticators } from "./registry.ts";

/**
 * The `jwt` kind with keys of its own: a shared secret (HS256), RSA and EC public keys in PEM files. Tokens are
 * signed here with jose, as an identity provider would; the refusals are the attacks of RFC 8725 §2 (alg none,
 * the HS/RS confusion, tokens for another audience or issuer, expired ones).
 */

const ISSUER = "https://id.example.com";
const AUDIENCE = "xmpp-sidecars";
const SECRET = "a shared secret of at least 32 bytes, for HS256!";
const { log, text: logText } = recordingLogger({ level: "debug" });

let db: TestDatabase;
let dir: string;
type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let rsa: KeyPair;
let ec: KeyPair;
let rsaPem: string;
const files = { rsa: "", ec: "", rsaPrivate: "" };
let registry: Map<string, Authenticator>;
let jidConfig: Config["domains"][string];

const now = () => Math.floor(Date.now() / 1000);

function config(domains: Record<string, unknown>): Pick<Config, "domains"> {
  return loadConfig({ env: { APP_ENV: "test" }, overrides: { domains } });
}

const jwtDomain = (options: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  authenticator: { kind: "jwt", options: { issuer: ISSUER, audience: AUDIENCE, ...options } },
  passwordFormat: "plain",
  ...extra,
});

/** A token as a provider signs it: for `sub`, valid for 5 minutes, unless the claims say otherwise. */
function token(
  key: CryptoKey | Uint8Array,
  alg: string,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ sub: "alice", iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg, ...header })
    .sign(key);
}

const hs = (claims?: JWTPayload) => token(new TextEncoder().encode(SECRET), "HS256", claims);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const alice = (domain: string) => ({ node: "alice", domain });
const no = { ok: false, reason: "bad_password" };

function auth(domain: string): Authenticator {
  const a = registry.get(domain);
  if (!a) throw new Error(`no ${domain}`);
  return a;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(tmpdir(), "sidecars-jwt-"));
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  rsaPem = await exportSPKI(rsa.publicKey);
  files.rsa = path.join(dir, "rsa.pem");
  files.ec = path.join(dir, "ec.pem");
  files.rsaPrivate = path.join(dir, "rsa-private.pem");
  writeFileSync(files.rsa, rsaPem);
  writeFileSync(files.ec, await exportSPKI(ec.publicKey));
  writeFileSync(files.rsaPrivate, await exportPKCS8(rsa.privateKey));
  writeFileSync(path.join(dir, "secret"), `${SECRET}\n`);
  const cfg = config({
    "hs.test": jwtDomain({ secret: SECRET, algorithms: ["HS256"] }),
    "file.test": jwtDomain({ secretFile: path.join(dir, "secret"), algorithms: ["HS256"] }),
    "rs.test": jwtDomain({ publicKey: files.rsa, algorithms: ["RS256"] }),
    "es.test": jwtDomain({ publicKey: files.ec, algorithms: ["ES256"] }),
    "jid.test": jwtDomain({
      secret: SECRET,
      algorithms: ["HS256"],
      userClaim: "email",
      userClaimIs: "jid",
      maxTokenBytes: 1024,
      userExists: "web_users",
    }),
  });
  jidConfig = cfg.domains["jid.test"] as Config["domains"][string];
  const built = await createAuthenticators(cfg, { pool: db.pool, log });
  registry = new Map([...built].map(([d, a]) => [d, a.authenticator]));
});

afterAll(async () => {
  await db?.drop();
});

describe("jwt authenticator with local keys", () => {
  it("accepts a good token of each key kind, valid until its exp", async () => {
    const exp = now() + 120;
    expect(await auth("hs.test").checkPassword(alice("hs.test"), await hs({ exp }))).toEqual({
      ok: true,
      validUntilMs: exp * 1000,
    });
    expect(await auth("file.test").checkPassword(alice("file.test"), await hs())).toMatchObject({ ok: true });
    const rs = await token(rsa.privateKey, "RS256");
    expect(await auth("rs.test").checkPassword(alice("rs.test"), rs)).toMatchObject({ ok: true });
    const es = await token(ec.privateKey, "ES256");
    expect(await auth("es.test").checkPassword(alice("es.test"), es)).toMatchObject({ ok: true });
    // the user part as a JID normalises it (MongooseIM sends it lower-cased)
    const upper = await hs({ sub: "Alice" });
    expect(await auth("hs.test").checkPassword(alice("hs.test"), upper)).toMatchObject({ ok: true });
  });

  it("refuses expired, not yet valid, other audiences and issuers (beyond the clock tolerance)", async () => {
    const a = auth("hs.test");
    const jid = alice("hs.test");
    expect(await a.checkPassword(jid, await hs({ exp: now() - 60 }))).toEqual(no);
    expect(await a.checkPassword(jid, await hs({ nbf: now() + 120 }))).toEqual(no);
    expect(await a.checkPassword(jid, await hs({ aud: "another-service" }))).toEqual(no);
    expect(await a.checkPassword(jid, await hs({ iss: "https://evil.example.com" }))).toEqual(no);
    expect(await a.checkPassword(jid, await hs({ exp: undefined }))).toEqual(no); // requireExpiry
    // within the default 30 s of tolerance: a clock a little behind the provider's
    expect(await a.checkPassword(jid, await hs({ exp: now() - 10 }))).toMatchObject({ ok: true });
    expect(await a.checkPassword(jid, await hs({ nbf: now() + 10 }))).toMatchObject({ ok: true });
    expect(await a.checkPassword(jid, "not a token")).toEqual(no);
    const tampered = (await hs()).replace(
      /\.([^.]+)\./,
      `.${b64({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now() + 999 })}.`,
    );
    expect(await a.checkPassword(jid, tampered)).toEqual(no);
  });

  it("refuses alg none, on every key kind", async () => {
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}.`;
    for (const d of ["hs.test", "rs.test", "es.test"]) {
      expect(await auth(d).checkPassword(alice(d), unsigned)).toEqual(no);
    }
  });

  it("refuses the HS/RS confusion: a token signed with the public key's PEM as an HMAC secret", async () => {
    const forged = await token(new TextEncoder().encode(rsaPem), "HS256");
    expect(await auth("rs.test").checkPassword(alice("rs.test"), forged)).toEqual(no);
    // and an ES256 key does not verify a token that says RS256, nor the other way round
    expect(
      await auth("es.test").checkPassword(alice("es.test"), await token(rsa.privateKey, "RS256")),
    ).toEqual(no);
    expect(
      await auth("rs.test").checkPassword(alice("rs.test"), await token(ec.privateKey, "ES256")),
    ).toEqual(no);
  });

  it("refuses a token of another user, and a claim that is not a string", async () => {
    const bobs = await hs({ sub: "bob" });
    expect(await auth("hs.test").checkPassword(alice("hs.test"), bobs)).toEqual(no);
    expect(await auth("hs.test").checkPassword({ node: "bob", domain: "hs.test" }, bobs)).toMatchObject({
      ok: true,
    });
    expect(
      await auth("hs.test").checkPassword(
        alice("hs.test"),
        await hs({ sub: ["alice"] as unknown as string }),
      ),
    ).toEqual(no);
    // userClaimIs jid: the whole JID, of this domain only
    const a = auth("jid.test");
    expect(await a.checkPassword(alice("jid.test"), await hs({ email: "Alice@JID.test" }))).toMatchObject({
      ok: true,
    });
    expect(await a.checkPassword(alice("jid.test"), await hs({ email: "alice@hs.test" }))).toEqual(no);
    expect(await a.checkPassword(alice("jid.test"), await hs({ email: "alice" }))).toEqual(no);
    expect(await a.checkPassword(alice("jid.test"), await hs({ email: 42 }))).toEqual(no);
  });

  it("refuses a token over maxTokenBytes unread", async () => {
    const big = await hs({ email: "alice@jid.test", padding: "x".repeat(1200) });
    expect(Buffer.byteLength(big)).toBeGreaterThan(1024);
    expect(await auth("jid.test").checkPassword(alice("jid.test"), big)).toEqual(no);
    expect(auth("jid.test").maxPasswordBytes).toBe(1024);
  });

  it("answers user_exists for any user, or from web_users as configured", async () => {
    expect(await auth("hs.test").userExists({ node: "anyone", domain: "hs.test" })).toBe(true);
    const jid = auth("jid.test");
    expect(await jid.userExists({ node: "carol", domain: "jid.test" })).toBe(false);
    await addUser(db.pool, { node: "carol", domain: "jid.test" }, { cleartext: "unused" }, jidConfig);
    expect(await jid.userExists({ node: "carol", domain: "jid.test" })).toBe(true);
    // no credentials held: get_password, set_password, register, remove_user are refused by the core
    expect(jid.getSecret ?? jid.setPassword ?? jid.register ?? jid.removeUser).toBeUndefined();
  });

  it("refuses bad configurations at start, naming the option and the fix", async () => {
    const err = await createAuthenticators(
      config({
        "confused.test": jwtDomain({ publicKey: files.rsa, algorithms: ["RS256", "HS256"] }),
        "short.test": jwtDomain({ secret: "too short", algorithms: ["HS256"] }),
        "short512.test": jwtDomain({ secret: SECRET, algorithms: ["HS512"] }),
        "nokey.test": jwtDomain({ algorithms: ["HS256"] }),
        "twokeys.test": jwtDomain({ secret: SECRET, publicKey: files.rsa, algorithms: ["HS256"] }),
        "mixed.test": jwtDomain({ secret: SECRET, algorithms: ["HS256", "RS256"] }),
        "noaud.test": {
          authenticator: { kind: "jwt", options: { secret: SECRET, algorithms: ["HS256"], issuer: ISSUER } },
          passwordFormat: "plain",
        },
        "none.test": jwtDomain({ secret: SECRET, algorithms: ["none"] }),
        "private.test": jwtDomain({ publicKey: files.rsaPrivate, algorithms: ["RS256"] }),
        "curve.test": jwtDomain({ publicKey: files.rsa, algorithms: ["ES256"] }),
        "missing.test": jwtDomain({ publicKey: path.join(dir, "nothing.pem"), algorithms: ["RS256"] }),
        "scram.test": jwtDomain({ secret: SECRET, algorithms: ["HS256"] }, { passwordFormat: "scram" }),
      }),
      { pool: db.pool, log },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupProblems);
    const at = (d: string) => `domains.${d}.authenticator.options`;
    expect((err as StartupProblems).problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${at("confused.test")}\\.algorithms: HS256 with a public key would let anyone holding that key sign tokens`,
        ),
      ),
      expect.stringMatching(
        new RegExp(`^${at("short.test")}\\.secret: the secret has 9 bytes; HS256 needs at least 32 `),
      ),
      expect.stringMatching(
        new RegExp(`^${at("short512.test")}\\.secret: the secret has \\d+ bytes; HS512 needs at least 64 `),
      ),
      `${at("nokey.test")}: no key source: set one of secret, secretFile (HS*), publicKey, jwksUrl or issuerUrl`,
      `${at("twokeys.test")}.publicKey: secret and publicKey are both key sources: keep one`,
      expect.stringMatching(new RegExp(`^${at("mixed.test")}\\.algorithms: RS256 needs a public key`)),
      expect.stringMatching(new RegExp(`^${at("noaud.test")}\\.audience: required: accepted \`aud\` value`)),
      expect.stringMatching(new RegExp(`^${at("none.test")}\\.algorithms\\.0: `)),
      expect.stringMatching(
        new RegExp(`^${at("private.test")}\\.publicKey: .* holds a private key: give only the public key`),
      ),
      expect.stringMatching(
        new RegExp(`^${at("curve.test")}\\.algorithms: ES256 needs an EC key on prime256v1`),
      ),
      expect.stringMatching(
        new RegExp(`^${at("missing.test")}\\.publicKey: cannot read .*nothing\\.pem \\(ENOENT\\)`),
      ),
      expect.stringMatching(
        /^domains\.scram\.test\.passwordFormat: a jwt domain has no password to hand out/,
      ),
    ]);
    // a secret is never in a message
    expect((err as Error).message).not.toContain(SECRET);
  });

  it("logs why a token was refused (at debug), never the token", () => {
    expect(logText()).toMatch(/"why":"ERR_JWT_EXPIRED".*"msg":"token refused"/);
    expect(logText()).toMatch(/"why":"sub names another user"/);
    expect(logText()).not.toMatch(/eyJ[\w-]+\.eyJ/);
  });
});

describe("jwt domains in the auth core", () => {
  it("remembers a success no longer than the token's exp, and takes tokens longer than a password", async () => {
    const metrics = new Registry();
    const cfg = loadConfig({
      env: { APP_ENV: "test" },
      overrides: {
        domains: {
          // 60 s of success cache, and no clock tolerance: only the cap at exp can refuse the token in time
          "exp.test": jwtDomain(
            { secret: SECRET, algorithms: ["HS256"], clockToleranceSeconds: 0 },
            { cacheTtlSeconds: 60, buddies: ["bot"] },
          ),
        },
      },
    });
    const core = await createAuthCore({
      config: cfg,
      pool: db.pool,
      listener: db.listener,
      log: pino({ level: "silent" }),
      metrics,
    });
    try {
      const jid = alice("exp.test");
      // the decisions counted by the core's histogram, as /metrics shows them
      const outcomes = async (): Promise<Record<string, number>> =>
        Object.fromEntries(
          [...(await metrics.metrics()).matchAll(/^auth_checks_duration_seconds_count\{([^}]*)\} (\d+)$/gm)]
            .filter(([, l]) => l?.includes('domain="exp.test"') && l.includes('method="check_password"'))
            .map(([, l, n]) => [/outcome="(\w+)"/.exec(l ?? "")?.[1], Number(n)]),
        );
      // the cache is used once the core's notification stream is up (a change it would miss could keep a
      // removed password alive): a warm-up token checked until its second check is answered from the cache
      const warm = await hs({ sub: "warm" });
      await eventually(
        async () => {
          await core.checkPassword({ node: "warm", domain: "exp.test" }, warm);
          return (await outcomes()).cached;
        },
        10_000,
        "the success cache in use",
      );
      const before = await outcomes();
      const since = async () => {
        const after = await outcomes();
        return Object.fromEntries(
          Object.entries(after)
            .map(([k, v]) => [k, v - (before[k] ?? 0)])
            .filter(([, v]) => v !== 0),
        );
      };
      const short = await hs({ exp: now() + 2 });
      expect(await core.checkPassword(jid, short)).toBe(true);
      expect(await core.checkPassword(jid, short)).toBe(true);
      expect(await since()).toEqual({ ok: 1, cached: 1 }); // the second answer came from the cache
      await new Promise((r) => setTimeout(r, 3100));
      expect(await core.checkPassword(jid, short)).toBe(false); // not from the cache: it expired with the token
      expect(await since()).toEqual({ ok: 1, cached: 1, no: 1 });

      // a token of 6000 bytes, over the 4096 a password may have, within maxTokenBytes (8192)
      const long = await hs({ padding: "x".repeat(4500) });
      expect(Buffer.byteLength(long)).toBeGreaterThan(6000);
      expect(await core.checkPassword(jid, long)).toBe(true);
      expect(await core.checkAppLogin(jid, long, "127.0.0.1")).toEqual({ ok: true });
      // no credentials to hand out or change
      expect(await core.getPassword(jid)).toBeUndefined();
      expect(await core.setPassword(jid, "new")).toBe("refused");
      expect(await core.register({ node: "dave", domain: "exp.test" }, "pw")).toBe("refused");
      expect(await core.removeUser(jid)).toBe("refused");
      expect(await core.userExists({ node: "anyone", domain: "exp.test" })).toBe(true);
      // a buddy of the domain logs in with its web_users password, never with a token
      const domainConfig = cfg.domains["exp.test"] as Config["domains"][string];
      await addUser(db.pool, { node: "bot", domain: "exp.test" }, { cleartext: "beep boop" }, domainConfig);
      expect(await core.checkPassword({ node: "bot", domain: "exp.test" }, "beep boop")).toBe(true);
      expect(await core.checkPassword({ node: "bot", domain: "exp.test" }, await hs({ sub: "bot" }))).toBe(
        false,
      );
    } finally {
      await core.close();
    }
  });
});
