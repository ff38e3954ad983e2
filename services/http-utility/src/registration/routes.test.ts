import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AuthCore } from "#auth";
import type { TestDatabase } from "../../../../test/support/database.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { clearEndedRetries } from "./challenges.ts";

/**
 * Registration through the real app, database and SMS senders: the `log` sender (the code read from the log,
 * as a developer does) and the `http` sender against a gateway on 127.0.0.1. Time is moved by shifting the
 * session's timestamps back in the database. Every test calls from its own client address
 * (X-Forwarded-For, trusted from loopback) so that the per-IP limits of one test do not touch another.
 */

const RATE_LIMITS = {
  registerPerIp: { points: 20, seconds: 3600 },
  registerPerNumber: { points: 4, seconds: 86_400 },
  authorizePerIp: { points: 12, seconds: 3600 },
  authorizePerNumber: { points: 12, seconds: 3600 },
};

const APPS = {
  OyoChat: { minimumVersion: { android: "1.10.2", ios: "2.0.0", default: "1.0" } },
  // no `default`: a platform without an entry gets the lowest listed
  Legacy: { minimumVersion: { android: "3", ios: "5" } },
};

let app: HttpUtilityTestApp;
let db: TestDatabase;
let core: AuthCore;
let base: string;
const { log, lines: logLines } = recordingLogger({ level: "info" });

// the http sender's gateway: records what it receives, answers `gateway.status`
const gateway = {
  status: 200,
  received: [] as { method: string; url: string; headers: IncomingHttpHeaders; body: string }[],
  server: undefined as Server | undefined,
};

beforeAll(async () => {
  gateway.server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      gateway.received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(gateway.status, { "content-type": "application/json" }).end('{"accepted":true}');
    });
  });
  await new Promise<void>((r) => gateway.server?.listen(0, "127.0.0.1", r));
  const gatewayPort = (gateway.server.address() as AddressInfo).port;

  app = await startHttpUtilityApp({
    log,
    overrides: {
      // every request names its client in X-Forwarded-For, trusted from loopback as from a local proxy
      services: { httpUtility: { rateLimits: RATE_LIMITS, trustProxy: ["loopback"] } },
      apps: APPS,
      domains: {
        "oyo.test": {
          registration: {
            enabled: true,
            countries: ["GR", "CY"],
            sms: { kind: "log", options: {} },
            resendAfterSeconds: [60, 120],
            maxSends: 3,
            maxChecks: 3,
            maxChecksPerNumber: 9,
          },
        },
        "gw.test": {
          registration: {
            enabled: true,
            message: "{code} is your {app} code",
            sms: {
              kind: "http",
              options: {
                url: `http://127.0.0.1:${gatewayPort}/v1/messages`,
                allowTargets: ["127.0.0.1"],
                headers: { "X-Api-Key": "gw-key" },
                json: { to: "{to}", text: "{text}", otp: "{code}" },
              },
            },
          },
        },
        "closed.test": {},
      },
    },
  });
  ({ db, core, base } = app);
});

afterAll(async () => {
  await app?.close();
  await new Promise((r) => gateway.server?.close(r));
});

let clients = 0;
let ip = "";
beforeEach(() => {
  ip = `198.51.100.${++clients}`;
  gateway.status = 200;
});

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
  body: any;
}

async function post(
  path: string,
  fields: Record<string, unknown>,
  o: { form?: boolean } = {},
): Promise<Answer> {
  const res = await fetch(`${base}/api/v1/users${path}`, {
    method: "POST",
    headers: {
      "x-forwarded-for": ip,
      "content-type": o.form ? "application/x-www-form-urlencoded" : "application/json",
    },
    body: o.form
      ? new URLSearchParams(
          Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]),
        ).toString()
      : JSON.stringify(fields),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

let numbers = 0;
/** A valid Greek mobile number not used by another test: `+30694…`. */
const newNumber = () => `+30694${String(++numbers).padStart(7, "0")}`;

const register = (node: string, more: Record<string, unknown> = {}) =>
  post("", {
    appName: "OyoChat",
    appVersionCode: "1.10.2",
    platform: "android",
    domain: "oyo.test",
    node,
    ...more,
  });
const authorize = (
  node: string,
  challengecode: string,
  domain = "oyo.test",
  more: Record<string, unknown> = {},
) => post("/authorize", { node, challengecode, domain, ...more });

/** The code of the last SMS the log sender "sent" to `e164`. */
function loggedCode(e164: string): string {
  const line = logLines.filter((l) => l.to === e164 && typeof l.code === "string").at(-1);
  if (!line) throw new Error(`no SMS to ${e164} in the log`);
  return line.code as string;
}

/** Moves a session `seconds` into the past, as if that much time had gone by. */
async function elapse(node: string, seconds: number, domain = "oyo.test"): Promise<void> {
  await db.pool.query(
    `UPDATE registration_challenges SET last_sent_at = last_sent_at - make_interval(secs => $3),
            code_expires_at = code_expires_at - make_interval(secs => $3),
            created_at = created_at - make_interval(secs => $3)
      WHERE domain = $1 AND node = $2`,
    [domain, node.replace("+", ""), seconds],
  );
}

const otherCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");
const retryAfter = (a: Answer) => Number(a.headers.get("retry-after"));

describe("POST /api/v1/users and /authorize", () => {
  it("sends a code (log sender), and the code gives the account a password that logs in", async () => {
    const node = newNumber();
    const sent = await register(node);
    expect(sent).toMatchObject({ status: 201 });
    expect(sent.body).toEqual({ node: node.slice(1), domain: "oyo.test", expiresIn: 600, resendAfter: 60 });
    const code = loggedCode(node);
    expect(code).toMatch(/^\d{6}$/);
    expect(logLines.find((l) => l.code === code)?.msg).toBe(`SMS to ${node}: Your OyoChat code is ${code}`);

    // the table holds a salted hash, never the code
    const row = (
      await db.pool.query("SELECT * FROM registration_challenges WHERE node = $1", [node.slice(1)])
    ).rows[0];
    expect(row).toMatchObject({
      domain: "oyo.test",
      sends: 1,
      checks: 0,
      app_name: "OyoChat",
      app_version: "1.10.2",
    });
    expect(row.code_hash).toHaveLength(32);
    expect(JSON.stringify(row)).not.toContain(code);

    const ok = await authorize(node.slice(1), code);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({
      jid: `${node.slice(1)}@oyo.test`,
      node: node.slice(1),
      domain: "oyo.test",
      token: expect.stringMatching(/^[\w-]{32}$/),
    });
    const jid = { node: node.slice(1), domain: "oyo.test" };
    expect(await core.checkPassword(jid, ok.body.token)).toBe(true);
    expect(await core.checkPassword(jid, code)).toBe(false);
    // stored as SCRAM data; the cleartext is not kept (the domain is `scram`)
    const user = (
      await db.pool.query("SELECT token, scram FROM web_users WHERE domain = $1 AND node = $2", [
        jid.domain,
        jid.node,
      ])
    ).rows[0];
    expect(user.token).toBeNull();
    expect(Object.keys(user.scram)).toEqual(expect.arrayContaining(["iterations", "sha1", "sha256"]));
  });

  it("takes form bodies, 00 and bare msisdns (legacy apps), and codes sent as JSON numbers", async () => {
    const node = newNumber();
    const legacy = node.slice(1); // 30694…, no +
    const sent = await post(
      "",
      { appName: "OyoChat", appVersionCode: "1.10.2", domain: "oyo.test", node: legacy },
      { form: true },
    );
    expect(sent).toMatchObject({ status: 201, body: { node: legacy } });
    const code = loggedCode(node);
    // the same session, whatever the spelling
    expect(await register(`00${legacy}`)).toMatchObject({
      status: 429,
      body: { error: { code: "resend_too_soon" } },
    });
    const ok = await post("/authorize", {
      node: Number(legacy),
      challengecode: Number(code),
      domain: "oyo.test",
    });
    expect(ok).toMatchObject({ status: 200, body: { jid: `${legacy}@oyo.test` } });
    // a code works once: the form answer takes the session's next code
    await elapse(node, 60);
    expect((await register(node)).status).toBe(200);
    const form = await post(
      "/authorize",
      { node: `+${legacy}`, challengecode: loggedCode(node), domain: "oyo.test" },
      { form: true },
    );
    expect(form).toMatchObject({ status: 200, body: { node: legacy } });
  });

  it.each([
    ["letters", "+30694abc4567", /no letters/],
    ["too short", "+3069412", /too short/],
    ["a national number (leading 0)", "06941234567", /national number/],
    ["no country code", "6941234567", /country code/],
    ["an unknown country code", "+999123456789", /country code/],
  ])("refuses %s: 400 invalid_number asking for the international format", async (_what, node, why) => {
    const a = await register(node);
    expect(a.status).toBe(400);
    expect(a.body.error.code).toBe("invalid_number");
    expect(a.body.error.message).toMatch(why);
    expect(a.body.error.message).toMatch(/international format: \+ \(or 00\), the country code/);
  });

  it("refuses a number of a country the domain does not accept, and accepts any country elsewhere", async () => {
    const german = "+4915100000001";
    expect(await register(german)).toMatchObject({
      status: 400,
      body: { error: { code: "country_not_allowed", message: expect.stringMatching(/DE .*GR, CY/) } },
    });
    expect(await register("+35799000001")).toMatchObject({ status: 201 }); // CY is listed
    expect(await register(german, { domain: "gw.test" })).toMatchObject({ status: 201 }); // no list: any
  });

  it("refuses an unknown app, an unknown or closed domain, and malformed fields", async () => {
    const node = newNumber();
    expect(await register(node, { appName: "NotOurs" })).toMatchObject({
      status: 400,
      body: { error: { code: "unknown_app", message: expect.stringContaining('"NotOurs"') } },
    });
    expect(await register(node, { domain: "nowhere.test" })).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_domain" } },
    });
    expect(await register(node, { domain: "closed.test" })).toMatchObject({
      status: 400,
      body: { error: { code: "registration_disabled" } },
    });
    expect(await register(node, { appVersionCode: "latest" })).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request", message: expect.stringMatching(/^appVersionCode: /) } },
    });
    expect(await post("", { appName: "OyoChat", domain: "oyo.test", node })).toMatchObject({
      status: 400,
      body: {
        error: { code: "invalid_request", message: expect.stringMatching(/^appVersionCode: required/) },
      },
    });
    expect(await authorize(node, "12ab56")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request", message: expect.stringMatching(/^challengecode: /) } },
    });
    // nothing was sent for any of them
    expect(logLines.some((l) => l.to === node)).toBe(false);
  });

  it.each([
    ["android", "1.9.9", "1.10.2"],
    ["ios", "1.10.2", "2.0.0"],
    ["web", "0.9", "1.0"], // no entry: default
    [undefined, "0.1", "1.0"],
    ["ios", "2.0.0-beta", "2.0.0"],
  ])(
    "answers 426 with the minimum for an old app (%s %s → %s) and sends nothing",
    async (platform, version, minimum) => {
      const node = newNumber();
      const a = await register(node, { appVersionCode: version, platform });
      expect(a.status).toBe(426);
      expect(a.body).toEqual({
        error: {
          code: "app_version_too_old",
          message: expect.stringContaining(minimum),
          minimumVersion: minimum,
        },
      });
      expect(logLines.some((l) => l.to === node)).toBe(false);
    },
  );

  it("takes the lowest configured minimum for a platform without entry when there is no default", async () => {
    const old = await register(newNumber(), { appName: "Legacy", appVersionCode: "2", platform: "web" });
    expect(old).toMatchObject({ status: 426, body: { error: { minimumVersion: "3" } } });
    expect(
      await register(newNumber(), { appName: "Legacy", appVersionCode: "4", platform: "web" }),
    ).toMatchObject({
      status: 201,
    });
    expect(
      await register(newNumber(), { appName: "Legacy", appVersionCode: "4", platform: "ios" }),
    ).toMatchObject({ status: 426, body: { error: { minimumVersion: "5" } } });
  });

  it("resends only after the growing wait (429 resend_too_soon + Retry-After), the new code replacing the old", async () => {
    const node = newNumber();
    expect(await register(node)).toMatchObject({ status: 201, body: { resendAfter: 60 } });
    const first = loggedCode(node);
    const early = await register(node);
    expect(early).toMatchObject({ status: 429, body: { error: { code: "resend_too_soon" } } });
    expect(retryAfter(early)).toBeGreaterThanOrEqual(58);
    expect(retryAfter(early)).toBeLessThanOrEqual(60);

    await elapse(node, 45);
    const stillEarly = await register(node);
    expect(stillEarly.status).toBe(429);
    expect(retryAfter(stillEarly)).toBeLessThanOrEqual(15);

    await elapse(node, 16);
    expect(await register(node)).toMatchObject({ status: 200, body: { resendAfter: 120 } });
    const second = loggedCode(node);
    await elapse(node, 61); // the second wait is longer
    const third = await register(node);
    expect(third).toMatchObject({ status: 429, body: { error: { code: "resend_too_soon" } } });
    expect(retryAfter(third)).toBeGreaterThanOrEqual(58);

    if (first !== second) {
      expect(await authorize(node, first)).toMatchObject({
        status: 400,
        body: { error: { code: "wrong_code" } },
      });
    }
    expect(await authorize(node, second)).toMatchObject({ status: 200 });
  });

  it("sends at most maxSends codes per session (429 too_many_codes until it ends), then a new session", async () => {
    const node = newNumber();
    expect((await register(node)).status).toBe(201);
    await elapse(node, 60);
    expect((await register(node)).status).toBe(200);
    await elapse(node, 120);
    expect(await register(node)).toMatchObject({ status: 200, body: { resendAfter: 600 } });
    const last = loggedCode(node);
    await elapse(node, 300);
    const refused = await register(node);
    expect(refused).toMatchObject({ status: 429, body: { error: { code: "too_many_codes" } } });
    // until the last code expires: 600 s after it was sent
    expect(retryAfter(refused)).toBeGreaterThanOrEqual(298);
    expect(retryAfter(refused)).toBeLessThanOrEqual(300);
    expect(logLines.filter((l) => l.to === node && l.code)).toHaveLength(3);
    expect(await authorize(node, last)).toMatchObject({ status: 200 }); // the last code still works

    await elapse(node, 301);
    expect(await register(node)).toMatchObject({ status: 201, body: { resendAfter: 60 } });
  });

  it("counts wrong codes: after maxChecks the code is void (429 too_many_attempts), until a new code", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    const wrong = otherCode(code);
    expect(await authorize(node, wrong)).toMatchObject({
      status: 400,
      body: { error: { code: "wrong_code", message: expect.stringContaining("2 attempts left") } },
    });
    expect(await authorize(node, wrong)).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining("1 attempt left") } },
    });
    const last = await authorize(node, wrong);
    expect(last).toMatchObject({
      status: 429,
      body: { error: { code: "too_many_attempts", message: expect.stringMatching(/Request a new code/) } },
    });
    expect(retryAfter(last)).toBeGreaterThan(0);
    expect(retryAfter(last)).toBeLessThanOrEqual(60);
    // even the right code no longer works
    expect(await authorize(node, code)).toMatchObject({
      status: 429,
      body: { error: { code: "too_many_attempts" } },
    });

    await elapse(node, 60);
    expect((await register(node)).status).toBe(200);
    expect(await authorize(node, loggedCode(node))).toMatchObject({ status: 200 });
  });

  it("counts answers sent at once exactly: never more than maxChecks compared", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    const answers = await Promise.all(Array.from({ length: 10 }, () => authorize(node, otherCode(code))));
    const count = (code: string) => answers.filter((a) => a.body.error.code === code).length;
    // the 1st and 2nd counted were wrong, the 3rd voided the code, the rest came too late
    expect({ wrong: count("wrong_code"), void: count("too_many_attempts") }).toEqual({ wrong: 2, void: 8 });
    const row = await db.pool.query("SELECT checks FROM registration_challenges WHERE node = $1", [
      node.slice(1),
    ]);
    expect(row.rows[0].checks).toBe(3);
  });

  it("sends one code for requests sent at once", async () => {
    const node = newNumber();
    const answers = await Promise.all(Array.from({ length: 8 }, () => register(node)));
    expect(answers.map((a) => a.status).sort()).toEqual([201, ...Array(7).fill(429)]);
    expect(logLines.filter((l) => l.to === node && l.code)).toHaveLength(1);
  });

  it("answers 410 challenge_expired for an expired code, 404 no_challenge without one", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    await elapse(node, 601);
    const expired = await authorize(node, code);
    expect(expired.status).toBe(410);
    expect(expired.body.error).toEqual({
      code: "challenge_expired",
      message: "The code has expired: ask for a new one (POST /api/v1/users).",
    });
    expect(await authorize(newNumber(), "123456")).toMatchObject({
      status: 404,
      body: { error: { code: "no_challenge" } },
    });
  });

  it("takes a code once: the same code again answers 410 code_used and the first token stays", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    const one = await authorize(node, code);
    const two = await authorize(node, code);
    expect(one.status).toBe(200);
    expect(two).toMatchObject({
      status: 410,
      body: { error: { code: "code_used", message: expect.stringMatching(/ask for a new code/) } },
    });
    const jid = { node: node.slice(1), domain: "oyo.test" };
    expect(await core.checkPassword(jid, one.body.token)).toBe(true);
    // right answers do not use up the attempts; no nonce, nothing kept for a retry
    const row = (
      await db.pool.query(
        "SELECT checks, used_at, retry_box, retry_until FROM registration_challenges WHERE node = $1",
        [jid.node],
      )
    ).rows[0];
    expect(row).toMatchObject({ checks: 0, retry_box: null, retry_until: null });
    expect(row.used_at).toBeInstanceOf(Date);

    // the next code of the session works
    await elapse(node, 60);
    expect((await register(node)).status).toBe(200);
    expect(await authorize(node, loggedCode(node))).toMatchObject({ status: 200 });
  });

  it("refuses a disabled account even with the right code, without spending the code", async () => {
    const node = newNumber();
    await register(node);
    expect((await authorize(node, loggedCode(node))).status).toBe(200);
    await db.pool.query("UPDATE web_users SET disabled_at = now() WHERE node = $1", [node.slice(1)]);
    await elapse(node, 60);
    expect((await register(node)).status).toBe(200);
    const code = loggedCode(node);
    expect(await authorize(node, code)).toMatchObject({
      status: 403,
      body: { error: { code: "account_disabled" } },
    });
    // re-enabled, the same code works: the refusal rolled its consumption back
    await db.pool.query("UPDATE web_users SET disabled_at = NULL WHERE node = $1", [node.slice(1)]);
    expect(await authorize(node, code)).toMatchObject({ status: 200 });
  });

  it("gives the same token to a retry with the session nonce within the window, and clears it after", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    const nonce = "n0nce-0f-this-app-session";
    const one = await authorize(node, code, "oyo.test", { nonce });
    expect(one.status).toBe(200);
    // the nonce and the token are in no column in clear, nor in the log
    const row = (
      await db.pool.query("SELECT * FROM registration_challenges WHERE node = $1", [node.slice(1)])
    ).rows[0];
    expect(row.retry_box).toBeInstanceOf(Buffer);
    const stored = JSON.stringify(row) + Buffer.concat([row.retry_box, row.retry_salt]).toString("latin1");
    expect(stored).not.toContain(one.body.token);
    expect(stored).not.toContain(nonce);
    expect(logLines.filter((l) => JSON.stringify(l).includes(nonce))).toEqual([]);
    expect(logLines.filter((l) => JSON.stringify(l).includes(one.body.token))).toEqual([]);

    ip = "198.51.100.251"; // another network: the phone moved from Wi-Fi to mobile data
    const again = await authorize(node, code, "oyo.test", { nonce });
    expect(again).toMatchObject({ status: 200, body: { token: one.body.token } });

    // window over: refused, and the sealed token is cleared by the next requests
    await db.pool.query(
      "UPDATE registration_challenges SET retry_until = now() - interval '1 second' WHERE node = $1",
      [node.slice(1)],
    );
    expect(await authorize(node, code, "oyo.test", { nonce })).toMatchObject({
      status: 410,
      body: { error: { code: "code_used" } },
    });
    await clearEndedRetries(db.pool);
    const cleared = (
      await db.pool.query(
        "SELECT retry_box, retry_salt, retry_nonce_hash, retry_until FROM registration_challenges WHERE node = $1",
        [node.slice(1)],
      )
    ).rows[0];
    expect(cleared).toEqual({ retry_box: null, retry_salt: null, retry_nonce_hash: null, retry_until: null });
  });

  it("refuses a malformed nonce", async () => {
    const a = await authorize(newNumber(), "123456", "oyo.test", { nonce: "short" });
    expect(a).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request", message: /^nonce: / } },
    });
  });

  it("counts wrong codes per address: another address keeps its attempts, the number's cap voids the code", async () => {
    const node = newNumber();
    await register(node);
    const code = loggedCode(node);
    const wrong = otherCode(code);
    // two strangers use up their 3 attempts each: the code still works for others (maxChecksPerNumber: 9)
    for (const stranger of ["203.0.113.71", "203.0.113.72"]) {
      ip = stranger;
      for (let i = 0; i < 3; i++) await authorize(node, wrong);
      expect(await authorize(node, code)).toMatchObject({
        status: 429,
        body: { error: { code: "too_many_attempts" } },
      });
    }
    ip = "203.0.113.73";
    expect(await authorize(node, wrong)).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining("2 attempts left") } },
    });
    expect(await authorize(node, wrong)).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringContaining("1 attempt left") } },
    });
    expect((await authorize(node, wrong)).status).toBe(429);
    // 9 wrong answers for the number: the code is void for everyone, its owner included
    ip = "198.51.100.252";
    expect(await authorize(node, code)).toMatchObject({
      status: 429,
      body: { error: { code: "too_many_attempts" } },
    });
  });

  it("asks for the domain when several domains accept registration", async () => {
    const a = await post("/authorize", { node: newNumber(), challengecode: "123456" });
    expect(a).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_request", message: /^domain: required/ } },
    });
  });

  it("limits registrations per address: 429 rate_limited with Retry-After", async () => {
    for (let i = 0; i < RATE_LIMITS.registerPerIp.points; i++) {
      // invalid requests count too
      expect((await register("+3069", { appName: "NotOurs" })).status).toBe(400);
    }
    const limited = await register(newNumber());
    expect(limited).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    expect(limited.body.error.message).toMatch(/registrations from your address/);
    expect(retryAfter(limited)).toBeGreaterThan(3500);
    ip = "198.51.100.250"; // another client is not affected
    expect((await register(newNumber())).status).toBe(201);
  });

  it("limits check attempts per address", async () => {
    for (let i = 0; i < RATE_LIMITS.authorizePerIp.points; i++) {
      expect((await authorize(newNumber(), "123456")).status).toBe(404);
    }
    const limited = await authorize(newNumber(), "123456");
    expect(limited).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    expect(retryAfter(limited)).toBeGreaterThan(3500);
  });

  it("limits the codes sent to one number, whatever the session: 429 rate_limited with Retry-After", async () => {
    const node = newNumber();
    for (let i = 0; i < RATE_LIMITS.registerPerNumber.points; i++) {
      expect((await register(node)).status).toBe(201);
      await elapse(node, 601); // a new session each time
    }
    const limited = await register(node);
    expect(limited).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    expect(limited.body.error.message).toMatch(/codes sent to this number/);
    expect(retryAfter(limited)).toBeGreaterThan(86_000);
    // refused before anything was sent or claimed: the session is untouched
    expect(logLines.filter((l) => l.to === node && l.code)).toHaveLength(
      RATE_LIMITS.registerPerNumber.points,
    );
  });

  it("limits check attempts per number, from any address", async () => {
    const node = newNumber();
    for (let i = 0; i < RATE_LIMITS.authorizePerNumber.points; i++) {
      ip = `203.0.113.${i + 1}`;
      expect((await authorize(node, "123456")).status).toBe(404);
    }
    ip = "203.0.113.200";
    expect(await authorize(node, "123456")).toMatchObject({
      status: 429,
      body: { error: { code: "rate_limited" } },
    });
  });

  it("sends through the http gateway: method, headers and body as configured, the code in it", async () => {
    gateway.received.length = 0;
    const node = "+35799000002";
    expect(await register(node, { domain: "gw.test" })).toMatchObject({ status: 201 });
    expect(gateway.received).toHaveLength(1);
    const [req] = gateway.received as [(typeof gateway.received)[number]];
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/v1/messages");
    expect(req.headers["x-api-key"]).toBe("gw-key");
    expect(req.headers["content-type"]).toBe("application/json");
    const sms = JSON.parse(req.body) as { to: string; text: string; otp: string };
    expect(sms).toEqual({
      to: node,
      text: `${sms.otp} is your OyoChat code`,
      otp: expect.stringMatching(/^\d{6}$/),
    });
    expect(await authorize(node, sms.otp, "gw.test")).toMatchObject({
      status: 200,
      body: { jid: "35799000002@gw.test" },
    });
    // the code is in no log line: only the log sender writes codes
    expect(logLines.filter((l) => JSON.stringify(l).includes(sms.otp))).toEqual([]);
  });

  it("answers 502 sms_failed when the gateway refuses, and counts nothing", async () => {
    const node = "+35799000003";
    gateway.status = 500;
    const failed = await register(node, { domain: "gw.test" });
    expect(failed).toMatchObject({ status: 502, body: { error: { code: "sms_failed" } } });
    expect(
      logLines.some(
        (l) =>
          l.msg === "registration SMS not sent" && l.err === 'SMS gateway answered 500: {"accepted":true}',
      ),
    ).toBe(true);
    gateway.status = 200;
    // no code counted: the next request sends at once, as the first of a session
    expect(await register(node, { domain: "gw.test" })).toMatchObject({ status: 201 });
    const row = await db.pool.query(
      "SELECT sends FROM registration_challenges WHERE domain = 'gw.test' AND node = $1",
      [node.slice(1)],
    );
    expect(row.rows[0].sends).toBe(1);
  });
});
