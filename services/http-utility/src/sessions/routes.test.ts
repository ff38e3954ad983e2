import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startListener } from "#common/db/listener.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { rotateSigningKey, signingKeys, sweepSessions } from "#common/users/app-sessions.ts";
import type { Jid } from "#common/users/jid.ts";
import { setDisabled } from "#common/users/lifecycle.ts";
import { removeUserData } from "#common/users/lifecycle-removal.ts";
import { addUser } from "#common/users/web-users.ts";
import { sha256 } from "../../../../test/support/bytes.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import { createHttpUtilityHandler } from "../app.ts";
import type { TokensAnswer } from "./schema.ts";
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_TYPE, createAppSessions } from "./tokens.ts";

/**
 * App sessions end to end (docs/api.md "Sessions"): the real app, auth core and database; a second app
 * instance on the same database with its own LISTEN connection stands for another process or machine.
 */

const DOMAIN = "oyo.test";
const NO_BASIC = "nobasic.test";
const SERVER_KEY = `sk_${randomBytes(32).toString("base64url")}`;
/** A `jwt` domain: its users log in with a token of this (shared-secret) identity provider. */
const SSO = "sso.test";
const SSO_SECRET = randomBytes(32).toString("base64url");
const SSO_ISSUER = "https://idp.sso.test";
let app: HttpUtilityTestApp;
/** The second instance: another process of the cluster, with its own LISTEN connection. */
let other: { server: RunningServer; base: string; close(): Promise<void> };
let users = 0;

beforeAll(async () => {
  app = await startHttpUtilityApp({
    overrides: {
      services: {
        httpUtility: { apiKeys: { reader: { sha256: sha256(SERVER_KEY), scopes: ["locations:read"] } } },
      },
      apps: { OyoChat: { minimumVersion: { default: "2.0" } } },
      domains: {
        [DOMAIN]: { passwordFormat: "plain", scramIterations: 4096 },
        [NO_BASIC]: { passwordFormat: "plain", scramIterations: 4096, appBasicAuth: false },
        [SSO]: {
          passwordFormat: "plain",
          authenticator: {
            kind: "jwt",
            options: { secret: SSO_SECRET, algorithms: ["HS256"], issuer: SSO_ISSUER, audience: "xmpp" },
          },
        },
      },
    },
  });
  const log = pino({ level: "silent" });
  const listener = startListener({ connectionString: app.db.url, log });
  const sessions = createAppSessions({ config: app.config, pool: app.db.pool, log, listener });
  const { metrics: _shared, ...deps } = app.deps; // its metrics are the first instance's
  const server = await startServer(createHttpUtilityHandler({ ...deps, sessions }), {
    name: "http-utility-2",
    host: "127.0.0.1",
    port: 0,
    log,
  });
  other = {
    server,
    base: `http://127.0.0.1:${server.port}`,
    async close() {
      await server.close(100);
      sessions.close();
      await listener.close();
    },
  };
}, 60_000);
afterAll(async () => {
  await other?.close();
  await app?.close();
});

/** A new user of `domain` with a password, in web_users. */
async function newUser(domain = DOMAIN): Promise<Jid & { password: string; text: string }> {
  const jid = { node: `3069${String(++users).padStart(8, "0")}`, domain };
  const password = randomBytes(12).toString("base64url");
  const d = app.config.domains[domain];
  if (!d) throw new Error(`no domain ${domain}`);
  await addUser(app.db.pool, jid, { cleartext: password }, d);
  return { ...jid, password, text: `${jid.node}@${jid.domain}` };
}

const basic = (u: { text: string; password: string }) =>
  `Basic ${Buffer.from(`${u.text}:${u.password}`).toString("base64")}`;
const bearer = (t: string) => `Bearer ${t}`;

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string } };
  text: string;
  headers: Headers;
}

async function call(
  path: string,
  o: { method?: string; auth?: string; body?: unknown; base?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${o.base ?? app.base}${path}`, {
    method: o.method ?? "GET",
    headers: {
      ...(o.auth ? { authorization: o.auth } : {}),
      ...(o.body !== undefined ? { "content-type": "application/json" } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : {},
    text,
    headers: res.headers,
  };
}

async function login(
  u: { text: string; password: string },
  headers?: Record<string, string>,
): Promise<TokensAnswer> {
  const r = await call("/api/v1/sessions", {
    method: "POST",
    body: { jid: u.text, password: u.password },
    ...(headers ? { headers } : {}),
  });
  expect(r.status, r.text).toBe(201);
  return r.body as unknown as TokensAnswer;
}

const refresh = (refreshToken: string) =>
  call("/api/v1/sessions/refresh", { method: "POST", body: { refreshToken } });

/** An app operation reading the caller's own data: their videos (an empty page for these users). */
const videos = (auth: string, base?: string) =>
  call("/api/v1/attachments/videos", { auth, ...(base ? { base } : {}) });

const code = (r: Answer) => r.body.error?.code;

describe("logging in", () => {
  it("exchanges the password for an access token and a refresh token, stored only hashed", async () => {
    const u = await newUser();
    const t = await login(u);
    expect(t).toEqual({
      accessToken: expect.stringMatching(/^[\w-]+\.[\w-]+\.[\w-]+$/),
      tokenType: "Bearer",
      expiresIn: 900,
      refreshToken: expect.stringMatching(/^rt_[\w-]{43}$/),
      refreshExpiresIn: expect.any(Number),
      sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(t.refreshExpiresIn).toBeGreaterThan(30 * 86_400 - 60);
    expect(t.refreshExpiresIn).toBeLessThanOrEqual(30 * 86_400);

    // the tables hold no token, nor any part of one that would let it be rebuilt
    const dump = await app.db.pool.query<{ t: string }>(
      `SELECT row_to_json(s)::text AS t FROM app_sessions s
       UNION ALL SELECT row_to_json(r)::text FROM app_refresh_tokens r
       UNION ALL SELECT row_to_json(k)::text FROM app_session_keys k`,
    );
    const stored = dump.rows.map((r) => r.t).join("\n");
    const [, payload, signature] = t.accessToken.split(".") as [string, string, string];
    for (const secret of [t.refreshToken, t.refreshToken.slice(3), t.accessToken, payload, signature]) {
      expect(stored).not.toContain(secret);
    }
    // in hex (bytea's text form) neither
    expect(stored).not.toContain(Buffer.from(t.refreshToken).toString("hex"));
    expect(stored).toContain(sha256(t.refreshToken)); // what is kept: its SHA-256
  });

  it("answers for the access token on every kind of app operation, and a server key still works", async () => {
    const u = await newUser();
    const t = await login(u);
    expect(await videos(bearer(t.accessToken))).toMatchObject({ status: 200, body: { videos: [] } });
    const report = { msisdn: u.node, latitude: 37.98, longitude: 23.72, date: "2025-03-01T08:15:00Z" };
    const stored = await call("/api/v1/locations", {
      method: "POST",
      auth: bearer(t.accessToken),
      body: { ...report, app_type: "android", app_version: "1.0" },
    });
    expect(stored.status, stored.text).toBe(201);
    // an operation open to apps and servers: the JWT is the app's, the key is the server's
    const own = await call(`/api/v1/locations/${u.node}/latest`, { auth: bearer(t.accessToken) });
    expect(own.status, own.text).toBe(200);
    const byServer = await call(`/api/v1/locations/${u.node}/latest`, { auth: bearer(SERVER_KEY) });
    expect(byServer.status, byServer.text).toBe(200);
  });

  it("tells an app below its minimum version to update (426) before looking at the password", async () => {
    const u = await newUser();
    const old = { "x-app-name": "OyoChat", "x-app-version": "1.9" };
    const r = await call("/api/v1/sessions", {
      method: "POST",
      body: { jid: u.text, password: u.password },
      headers: old,
    });
    expect(r).toMatchObject({
      status: 426,
      body: { error: { code: "app_version_too_old", minimumVersion: "2.0" } },
    });
    // and a token of an app that is too old now gets the same answer
    const t = await login(u);
    const call426 = await call("/api/v1/attachments/videos", { auth: bearer(t.accessToken), headers: old });
    expect(call426.status).toBe(426);
    expect(code(await call("/api/v1/sessions/refresh", { method: "POST", body: t, headers: old }))).toBe(
      "app_version_too_old",
    );
  });

  it("refuses a wrong password as HTTP Basic does, without a session", async () => {
    const u = await newUser();
    const r = await call("/api/v1/sessions", { method: "POST", body: { jid: u.text, password: "wrong" } });
    expect(r).toMatchObject({ status: 401, body: { error: { code: "invalid_credentials" } } });
    const bad = await call("/api/v1/sessions", { method: "POST", body: { jid: "no jid", password: "x" } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: "invalid_request" } } });
    const n = await app.db.pool.query("SELECT 1 FROM app_sessions WHERE domain = $1 AND node = $2", [
      u.domain,
      u.node,
    ]);
    expect(n.rowCount).toBe(0);
  });
});

describe("refreshing", () => {
  it("rotates: each refresh token works once and gives the next pair", async () => {
    const u = await newUser();
    const first = await login(u);
    const r = await refresh(first.refreshToken);
    expect(r.status, r.text).toBe(200);
    const second = r.body as unknown as TokensAnswer;
    expect(second.sessionId).toBe(first.sessionId);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect((await videos(bearer(second.accessToken))).status).toBe(200);
    const third = await refresh(second.refreshToken);
    expect(third.status, third.text).toBe(200);
  });

  it("takes an old refresh token used again for a stolen copy: the session ends here and in every process", async () => {
    const u = await newUser();
    const first = await login(u);
    const next = (await refresh(first.refreshToken)).body as unknown as TokensAnswer;
    const access = bearer(next.accessToken);
    expect((await videos(access)).status).toBe(200);
    // the other instance accepts it too, once it is listening (then it asks the database nothing)
    await eventually(
      async () => (await videos(access, other.base)).status === 200,
      10_000,
      "second instance",
    );

    const reused = await refresh(first.refreshToken);
    expect(reused).toMatchObject({ status: 401, body: { error: { code: "refresh_token_reused" } } });
    expect(await videos(access)).toMatchObject({ status: 401, body: { error: { code: "session_revoked" } } });
    await eventually(
      async () => code(await videos(access, other.base)) === "session_revoked",
      5_000,
      "the revocation reaching the second instance",
    );
    // the thief's and the owner's refresh tokens are both dead now
    expect(code(await refresh(next.refreshToken))).toBe("invalid_refresh_token");
    const row = await app.db.pool.query("SELECT revoked_reason FROM app_sessions WHERE id = $1", [
      first.sessionId,
    ]);
    expect(row.rows).toEqual([{ revoked_reason: "refresh_token_reused" }]);
  });

  it("refuses an unknown or malformed refresh token", async () => {
    expect(code(await refresh(`rt_${randomBytes(32).toString("base64url")}`))).toBe("invalid_refresh_token");
    expect(code(await refresh("not a token"))).toBe("invalid_refresh_token");
    expect(code(await call("/api/v1/sessions/refresh", { method: "POST", body: {} }))).toBe(
      "invalid_request",
    );
  });
});

describe("access tokens that are not good", () => {
  async function key() {
    const [newest] = await signingKeys(app.db.pool);
    if (!newest) throw new Error("no signing key");
    return newest;
  }
  const sign = (claims: Record<string, unknown>, kid: string, secret: Uint8Array, typ = ACCESS_TOKEN_TYPE) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid, typ }).sign(secret);

  it("an expired one: access_token_expired, so the app knows to refresh", async () => {
    const u = await newUser();
    const t = await login(u);
    const k = await key();
    const now = Math.floor(Date.now() / 1000);
    const expired = await sign(
      { sub: u.text, sid: t.sessionId, aud: ACCESS_TOKEN_AUDIENCE, iat: now - 1000, exp: now - 100 },
      k.id,
      k.secret,
    );
    const r = await videos(bearer(expired));
    expect(r).toMatchObject({ status: 401, body: { error: { code: "access_token_expired" } } });
    expect(r.headers.get("www-authenticate")).toMatch(/^Bearer realm="xmpp-sidecars", error="invalid_token"/);
  });

  it("a tampered, foreign or unsigned one: invalid_access_token, never a 500", async () => {
    const u = await newUser();
    const victim = await newUser();
    const t = await login(u);
    const [h, p, s] = t.accessToken.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const k = await key();
    const forged = [
      // the payload made another user's, the signature kept
      `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: victim.text })).toString("base64url")}.${s}`,
      `${h}.${p}.${s.slice(0, -2)}AA`,
      // alg none
      `${Buffer.from(JSON.stringify({ alg: "none", typ: ACCESS_TOKEN_TYPE, kid: k.id })).toString("base64url")}.${p}.`,
      // a key of its own under our key's id
      await sign({ ...claims, sub: victim.text }, k.id, randomBytes(32)),
      // our key, another audience or type (a token of another kind)
      await sign({ ...claims, aud: "someone-else" }, k.id, k.secret),
      await sign({ ...claims, iat: now, exp: now + 60 }, k.id, k.secret, "JWT"),
      // our key, another algorithm, or a header that asks for more than we sign with
      await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS512", kid: k.id, typ: ACCESS_TOKEN_TYPE })
        .sign(k.secret),
      await new SignJWT(claims)
        .setProtectedHeader({
          alg: "HS256",
          kid: k.id,
          typ: ACCESS_TOKEN_TYPE,
          jku: "https://attacker.example/keys",
        })
        .sign(k.secret),
      // our key, a session id that is no id
      await sign({ ...claims, sid: "x'; DROP TABLE app_sessions; --" }, k.id, k.secret),
      "a.b.c",
    ];
    for (const token of forged) {
      const r = await videos(bearer(token));
      expect(r, token).toMatchObject({ status: 401, body: { error: { code: "invalid_access_token" } } });
    }
  });

  it("one of a key rotated away: it verifies until its tokens have expired, then the key is gone", async () => {
    const u = await newUser();
    const before = await login(u);
    const rotated = await rotateSigningKey(app.db.pool, 15 * 60_000);
    expect(rotated.deleted).toBe(0);
    // the old key still verifies; the next tokens are signed with the new one (once the NOTIFY is in)
    expect((await videos(bearer(before.accessToken))).status).toBe(200);
    const kidOf = (token: string) =>
      (JSON.parse(Buffer.from(token.split(".")[0] as string, "base64url").toString()) as { kid: string }).kid;
    const after = await eventually(
      async () => {
        const t = await login(u);
        return kidOf(t.accessToken) === rotated.id && t;
      },
      5_000,
      "tokens signed with the new key",
    );
    // an access TTL later the old key is swept, and with it every process forgets it
    await app.db.pool.query("UPDATE app_session_keys SET created_at = created_at - interval '16 minutes'");
    const swept = await sweepSessions(app.db.pool, {
      accessTtlMs: 15 * 60_000,
      refreshTtlMs: 30 * 86_400_000,
    });
    expect(swept.keys).toBeGreaterThanOrEqual(1);
    await eventually(
      async () => code(await videos(bearer(before.accessToken))) === "invalid_access_token",
      5_000,
      "the old key forgotten",
    );
    await eventually(
      async () => code(await videos(bearer(before.accessToken), other.base)) === "invalid_access_token",
      5_000,
      "the old key forgotten by the second instance",
    );
    expect((await videos(bearer(after.accessToken))).status).toBe(200);
  });
});

describe("a user's sessions", () => {
  it("lists only one's own live sessions, marks the current one, and shows no token or hash", async () => {
    const u = await newUser();
    const stranger = await newUser();
    const a = await login(u, {
      "x-app-name": "OyoChat",
      "x-app-version": "2.1.0",
      "x-app-platform": "Android",
    });
    const b = await login(u);
    await login(stranger);
    const r = await call("/api/v1/sessions", { auth: bearer(a.accessToken) });
    expect(r.status, r.text).toBe(200);
    const listed = (r.body as { sessions: Record<string, unknown>[] }).sessions;
    expect(listed.map((s) => s.id).sort()).toEqual([a.sessionId, b.sessionId].sort());
    expect(listed.find((s) => s.id === a.sessionId)).toEqual({
      id: a.sessionId,
      createdAt: expect.any(String),
      lastUsedAt: expect.any(String),
      expiresAt: expect.any(String),
      address: expect.stringMatching(/127\.0\.0\.1/),
      app: { name: "OyoChat", version: "2.1.0", platform: "android" },
      current: true,
    });
    expect(listed.find((s) => s.id === b.sessionId)?.current).toBe(false);
    for (const t of [a, b]) {
      expect(r.text).not.toContain(t.refreshToken);
      expect(r.text).not.toContain(sha256(t.refreshToken));
      expect(r.text).not.toContain(t.accessToken);
    }
    // with HTTP Basic: the same list, none current
    const viaBasic = await call("/api/v1/sessions", { auth: basic(u) });
    expect((viaBasic.body as { sessions: { current: boolean }[] }).sessions.map((s) => s.current)).toEqual([
      false,
      false,
    ]);
  });

  it("a token of another user cannot touch the first user's sessions or data", async () => {
    const alice = await newUser();
    const bob = await newUser();
    const a = await login(alice);
    const b = await login(bob);
    const asBob = bearer(b.accessToken);
    expect(await call(`/api/v1/sessions/${a.sessionId}`, { method: "DELETE", auth: asBob })).toMatchObject({
      status: 404,
      body: { error: { code: "not_found" } },
    });
    expect((await videos(bearer(a.accessToken))).status).toBe(200);
    expect(await call(`/api/v1/locations/${alice.node}/latest`, { auth: asBob })).toMatchObject({
      status: 403,
      body: { error: { code: "forbidden" } },
    });
    expect(code(await call("/api/v1/sessions/not-an-id", { method: "DELETE", auth: asBob }))).toBe(
      "not_found",
    );
  });

  it("logs out one session, then every session", async () => {
    const u = await newUser();
    const a = await login(u);
    const b = await login(u);
    const c = await login(u);
    const out = await call(`/api/v1/sessions/${a.sessionId}`, {
      method: "DELETE",
      auth: bearer(b.accessToken),
    });
    expect(out.status, out.text).toBe(204);
    expect(code(await videos(bearer(a.accessToken)))).toBe("session_revoked");
    expect(code(await refresh(a.refreshToken))).toBe("invalid_refresh_token");
    expect((await videos(bearer(b.accessToken))).status).toBe(200);

    const all = await call("/api/v1/sessions", { method: "DELETE", auth: bearer(c.accessToken) });
    expect(all).toMatchObject({ status: 200, body: { revoked: 2 } });
    for (const t of [b, c]) expect(code(await videos(bearer(t.accessToken)))).toBe("session_revoked");
    await eventually(
      async () => code(await videos(bearer(c.accessToken), other.base)) === "session_revoked",
      5_000,
      "the second instance",
    );
  });
});

describe("sessions end with the account's password, state or existence", () => {
  async function loggedIn() {
    const u = await newUser();
    const t = await login(u);
    // both instances have accepted the token (the second one listening by now)
    await eventually(
      async () => (await videos(bearer(t.accessToken), other.base)).status === 200,
      10_000,
      "up",
    );
    return { u, t };
  }
  const ended = async (t: TokensAnswer) => {
    for (const base of [app.base, other.base]) {
      await eventually(
        async () => code(await videos(bearer(t.accessToken), base)) === "session_revoked",
        5_000,
        `revoked at ${base}`,
      );
    }
    expect(code(await refresh(t.refreshToken))).toBe("invalid_refresh_token");
  };

  it("a password change (MongooseIM's set_password through the auth core) revokes every session", async () => {
    const { u, t } = await loggedIn();
    expect(await app.core.setPassword(u, "a new password")).toBe("ok");
    await ended(t);
    expect((await login({ text: u.text, password: "a new password" })).accessToken).toBeTruthy();
  });

  it("disabling the account revokes them", async () => {
    const { u, t } = await loggedIn();
    expect(await setDisabled(app.db.pool, u, true)).toBe("disabled");
    await ended(t);
    const again = await call("/api/v1/sessions", {
      method: "POST",
      body: { jid: u.text, password: u.password },
    });
    expect(code(again)).toBe("account_disabled");
  });

  it("removing the user deletes them, and their tokens stop", async () => {
    const { u, t } = await loggedIn();
    const result = await removeUserData(app.db.pool, app.deps.attachments.storage, u, {
      attachments: "delete",
    });
    expect(result).toMatchObject({ status: "removed", summary: { rows: { app_sessions: 1 } } });
    await ended(t);
    const left = await app.db.pool.query("SELECT 1 FROM app_sessions WHERE domain = $1 AND node = $2", [
      u.domain,
      u.node,
    ]);
    expect(left.rowCount).toBe(0);
  });
});

describe("a domain with HTTP Basic switched off (appBasicAuth: false)", () => {
  it("refuses Basic with basic_auth_disabled, still logs in with the password in the body, and takes the token", async () => {
    const u = await newUser(NO_BASIC);
    const refused = await videos(basic(u));
    expect(refused).toMatchObject({
      status: 401,
      body: {
        error: {
          code: "basic_auth_disabled",
          message: expect.stringContaining("POST /api/v1/sessions"),
        },
      },
    });
    const t = await login(u);
    expect((await videos(bearer(t.accessToken))).status).toBe(200);
    // the other domain is not affected
    const v = await newUser();
    expect((await videos(basic(v))).status).toBe(200);
  });
});

describe("a session opened with an SSO token", () => {
  it("ends when the token does: neither the refresh token nor a refresh outlives its exp", async () => {
    const inSeconds = 120;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setIssuer(SSO_ISSUER)
      .setAudience("xmpp")
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + inSeconds)
      .sign(new TextEncoder().encode(SSO_SECRET));
    const first = await login({ text: `alice@${SSO}`, password: token });
    // the default refresh TTL is 30 days: here the SSO token's two minutes bound both tokens
    expect(first.refreshExpiresIn).toBeLessThanOrEqual(inSeconds);
    expect(first.refreshExpiresIn).toBeGreaterThan(inSeconds - 30);
    expect(first.expiresIn).toBeLessThanOrEqual(inSeconds);
    expect((await videos(bearer(first.accessToken))).status).toBe(200);
    const next = await refresh(first.refreshToken);
    expect(next.status, next.text).toBe(200);
    expect((next.body as unknown as TokensAnswer).refreshExpiresIn).toBeLessThanOrEqual(inSeconds);
    // a password login on a web_users domain keeps the configured refresh TTL
    const plain = await login(await newUser());
    expect(plain.refreshExpiresIn).toBeGreaterThan(29 * 24 * 3600);
  });
});
