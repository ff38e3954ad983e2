import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { TestDatabase } from "../support/database.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../support/http-utility-app.ts";
import { ROOT } from "../support/processes.ts";
import { recordingLogger } from "../support/recording-logger.ts";

/**
 * Registration by phone number, attacked (docs/security.md, "Registration codes"): each test is the request
 * an attacker sends and the refusal that answers it, against the real app, PostgreSQL and `log` SMS sender
 * (the code read from the log, as the phone's owner reads the SMS). Client addresses come from
 * X-Forwarded-For, trusted from loopback. Time is moved by shifting a session's timestamps back.
 */

// small budgets, so that an attack reaches them in a few requests
const RATE_LIMITS = {
  registerPerNumberIp: { points: 2, seconds: 86_400 },
  registerPerNumber: { points: 6, seconds: 3600 },
  smsPerPrefixPerDay: { points: 12, seconds: 86_400 },
};

let app: HttpUtilityTestApp;
let db: TestDatabase;
let core: AuthCore;
let base: string;
const { log, lines: logLines } = recordingLogger({ level: "info" });

beforeAll(async () => {
  app = await startHttpUtilityApp({
    log,
    overrides: {
      // the client addresses of the tests come in X-Forwarded-For, trusted from loopback as from a local proxy
      services: { httpUtility: { rateLimits: RATE_LIMITS, trustProxy: ["loopback"] } },
      apps: { OyoChat: { minimumVersion: { default: "1.0" } } },
      domains: {
        "oyo.test": {
          registration: {
            enabled: true,
            countries: ["GR", "CY", "DE"],
            sms: { kind: "log", options: {} },
            maxChecks: 5,
            maxChecksPerNumber: 15,
          },
        },
      },
    },
  });
  ({ db, core, base } = app);
});

afterAll(async () => {
  await app?.close();
});

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are asserted field by field
  body: any;
}

async function post(path: string, from: string, fields: Record<string, unknown>): Promise<Answer> {
  const res = await fetch(`${base}/api/v1/users${path}`, {
    method: "POST",
    headers: { "x-forwarded-for": from, "content-type": "application/json" },
    body: JSON.stringify(fields),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const register = (node: string, from: string) =>
  post("", from, { appName: "OyoChat", appVersionCode: "1.2", domain: "oyo.test", node });
const authorize = (node: string, code: string, from: string, nonce?: string) =>
  post("/authorize", from, { node, challengecode: code, domain: "oyo.test", ...(nonce ? { nonce } : {}) });

/** The code of the last SMS to `e164`: what its owner reads on the phone. */
function smsTo(e164: string): string {
  const line = logLines.filter((l) => l.to === e164 && typeof l.code === "string").at(-1);
  if (!line) throw new Error(`no SMS to ${e164} in the log`);
  return line.code as string;
}

/** Moves a session `seconds` into the past. */
async function elapse(node: string, seconds: number): Promise<void> {
  await db.pool.query(
    `UPDATE registration_challenges SET last_sent_at = last_sent_at - make_interval(secs => $2),
            code_expires_at = code_expires_at - make_interval(secs => $2)
      WHERE domain = 'oyo.test' AND node = $1`,
    [node.replace("+", ""), seconds],
  );
}

const jidOf = (node: string) => ({ node: node.slice(1), domain: "oyo.test" });
const otherCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");
const retryAfter = (a: Answer) => Number(a.headers.get("retry-after"));

const OWNER = "198.51.100.10";
const ATTACKER = "203.0.113.66";
const NONCE = "Qm9vdHN0cmFwTm9uY2UtMTIz";

describe("registration under attack", () => {
  it("a code seen after its use (lock-screen preview, shared phone) no longer authorizes, from any address", async () => {
    const node = "+306940000001";
    await register(node, OWNER);
    const code = smsTo(node);
    const owner = await authorize(node, code, OWNER, NONCE);
    expect(owner.status).toBe(200);

    const replayed = await authorize(node, code, ATTACKER);
    expect(replayed).toMatchObject({ status: 410, body: { error: { code: "code_used" } } });
    expect(replayed.body.error.message).toMatch(/ask for a new code/);
    expect(replayed.body).not.toHaveProperty("token");
    // nothing changed: the owner's password still logs in
    expect(await core.checkPassword(jidOf(node), owner.body.token)).toBe(true);
  });

  it("two right answers sent at once: one token, one refusal", async () => {
    const node = "+306940000002";
    await register(node, OWNER);
    const code = smsTo(node);
    const [a, b] = await Promise.all([authorize(node, code, OWNER), authorize(node, code, ATTACKER)]);
    expect([a.status, b.status].sort()).toEqual([200, 410]);
    const winner = a.status === 200 ? a : b;
    expect(await core.checkPassword(jidOf(node), winner.body.token)).toBe(true);
  });

  it("the app's retry of a lost answer, with its nonce, gets the same token back", async () => {
    const node = "+306940000003";
    await register(node, OWNER);
    const code = smsTo(node);
    const lost = await authorize(node, code, OWNER, NONCE); // the answer never reached the app
    const retry = await authorize(node, code, "198.51.100.11", NONCE); // on mobile data now
    expect(retry).toMatchObject({
      status: 200,
      body: { jid: `${node.slice(1)}@oyo.test`, token: lost.body.token },
    });
    expect(await core.checkPassword(jidOf(node), retry.body.token)).toBe(true);
  });

  it("a reuse without the nonce, or with another one, is refused within the window too", async () => {
    const node = "+306940000004";
    await register(node, OWNER);
    const code = smsTo(node);
    const owner = await authorize(node, code, OWNER, NONCE);
    expect(owner.status).toBe(200);
    for (const nonce of [undefined, `${NONCE}-guess`, "AAAAAAAAAAAAAAAAAAAAAA"]) {
      expect(await authorize(node, code, ATTACKER, nonce)).toMatchObject({
        status: 410,
        body: { error: { code: "code_used" } },
      });
    }
    // the right nonce with a wrong code is not the same request either
    expect((await authorize(node, otherCode(code), OWNER, NONCE)).status).toBe(410);
    expect(await core.checkPassword(jidOf(node), owner.body.token)).toBe(true);
  });

  it("a stranger's wrong answers from another address never void the owner's code", async () => {
    const node = "+306940000005";
    await register(node, OWNER);
    const code = smsTo(node);
    let last: Answer | undefined;
    for (let i = 0; i < 6; i++) last = await authorize(node, otherCode(code), ATTACKER);
    expect(last).toMatchObject({ status: 429, body: { error: { code: "too_many_attempts" } } });
    // the stranger's address is out of attempts, even with the right code
    expect((await authorize(node, code, ATTACKER)).status).toBe(429);

    expect(await authorize(node, code, OWNER)).toMatchObject({ status: 200 });
  });

  it("a stranger cannot spend the number's codes and lock its owner out for a day", async () => {
    const node = "+35799000005";
    // one address: its own per-(number, address) budget, then refused
    for (let i = 0; i < RATE_LIMITS.registerPerNumberIp.points; i++) {
      expect((await register(node, ATTACKER)).status).toBeLessThan(300);
      await elapse(node, 601); // a new session each time
    }
    const refused = await register(node, ATTACKER);
    expect(refused).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    expect(refused.body.error.message).toMatch(/from your address/);

    // the owner still gets a code, and registers with it
    expect((await register(node, OWNER)).status).toBeLessThan(300);
    expect(await authorize(node, smsTo(node), OWNER)).toMatchObject({ status: 200 });

    // many addresses reach the number's backstop: the owner waits at most its window (an hour), not a day
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < RATE_LIMITS.registerPerNumberIp.points; j++) {
        await elapse(node, 601);
        await register(node, `203.0.113.${100 + i}`);
      }
    }
    await elapse(node, 601);
    const backstop = await register(node, "198.51.100.12");
    expect(backstop).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    expect(retryAfter(backstop)).toBeLessThanOrEqual(RATE_LIMITS.registerPerNumber.seconds);
  });

  it("production refuses to start with registration open to every country", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "sidecars-config-"));
    try {
      copyFileSync(path.join(ROOT, "config/default.json"), path.join(dir, "default.json"));
      const domains = {
        oyo: {
          registration: {
            enabled: true,
            sms: {
              kind: "http",
              options: { url: "https://sms.example.net/send", json: { to: "{to}", text: "{text}" } },
            },
          },
        },
      };
      writeFileSync(path.join(dir, "production.json"), JSON.stringify({ domains }));
      const env = {
        PATH: process.env.PATH ?? "",
        APP_ENV: "production",
        CONFIG_DIR: dir,
        DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
        AUTH_BASIC_AUTH: "mongooseim:a-long-shared-secret",
        HTTP_UTILITY_PORT: "0",
      };
      const child = spawn(process.execPath, [path.join(ROOT, "services/http-utility/src/main.ts")], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      const status = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      expect(status).toBe(1);
      expect(stderr).toContain(
        'domains.oyo.registration.countries: required in production when registration is enabled: list the countries whose numbers may register, e.g. ["GR"]',
      );

      // the fix named in the line is enough
      const fixed = { oyo: { registration: { ...domains.oyo.registration, countries: ["GR"] } } };
      writeFileSync(path.join(dir, "production.json"), JSON.stringify({ domains: fixed }));
      expect(() => loadConfig({ env })).not.toThrow(/registration\.countries/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("SMS pumping stops at the daily per-prefix budget: 503 with Retry-After, counted, one warning", async () => {
    const sent: Answer[] = [];
    for (let i = 0; i < RATE_LIMITS.smsPerPrefixPerDay.points; i++) {
      // a different number and address each time: per-number and per-address limits do not see it
      sent.push(await register(`+491511234${String(5600 + i)}`, `192.0.2.${i + 1}`));
    }
    expect(sent.map((a) => a.status)).toEqual(Array(RATE_LIMITS.smsPerPrefixPerDay.points).fill(201));
    const refused = await register("+4915112349999", "192.0.2.200");
    expect(refused).toMatchObject({ status: 503, body: { error: { code: "sms_budget_exhausted" } } });
    expect(refused.body.error.message).toMatch(/\+49/);
    expect(retryAfter(refused)).toBeGreaterThan(0);
    expect(retryAfter(refused)).toBeLessThanOrEqual(86_400);
    expect(logLines.some((l) => l.to === "+4915112349999")).toBe(false); // no SMS went out
    await register("+4915112349998", "192.0.2.201");

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const counted = metrics
      .split("\n")
      .find((l) => /^registration_sms_budget_refusals_total\{.*scope="\+49"/.test(l));
    expect(counted).toMatch(/ 2$/);
    expect(
      logLines.filter((l) => l.msg?.toString().startsWith("registration SMS budget reached")),
    ).toHaveLength(1);
    // other countries still register
    expect((await register("+306940000099", "192.0.2.202")).status).toBe(201);
  });
});
