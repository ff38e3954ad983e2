import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthApi, type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { finishApp } from "#common/http/app-base.ts";
import { defineRoute, routesRouter } from "#common/http/route.ts";
import { addUser } from "#common/users/web-users.ts";
import { sha256 } from "../../../test/support/bytes.ts";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.ts";
import { deadPort } from "../../../test/support/free-port.ts";
import { type CallerPolicy, caller, createCallers, resolveInternalCaller } from "./callers.ts";

/**
 * Who is calling (docs/api.md "Who is calling"), through a small Express app with the real callers, the
 * real auth core (per-domain authenticators, success cache, failures per address) and a real database. Every
 * refusal is checked for its status, its exact body and its exact WWW-Authenticate challenge.
 */

const GUARD = { maxFailures: 3, maxFailuresPerAddress: 20, windowSeconds: 60, lockSeconds: 60 };
const newKey = () => `sk_${randomBytes(32).toString("base64url")}`;
const PUSHER = newKey(); // scope push
const READER = newKey(); // scope locations:read

const BASIC_CHALLENGE = 'Basic realm="xmpp-sidecars", charset="UTF-8"';
const INVALID_CREDENTIALS = {
  error: {
    code: "invalid_credentials",
    message: "Send HTTP Basic credentials: your JID (node@domain) and XMPP password.",
  },
};
const INVALID_API_KEY = {
  error: { code: "invalid_api_key", message: "Send a valid API key as `Authorization: Bearer <key>`." },
};

let db: TestDatabase;
let core: AuthCore;
let config: Config;
let base: string;
let close: () => Promise<void>;
let dead: Awaited<ReturnType<typeof deadPort>>;
/** the passwords the auth core was asked about: a malformed header must not reach it (nor count failures) */
const asked: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dead = await deadPort(); // every connection cut: a backend that is down
  config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      services: {
        auth: { guard: GUARD },
        httpUtility: {
          apiKeys: {
            pusher: { sha256: sha256(PUSHER), scopes: ["push"] },
            reader: { sha256: sha256(READER), scopes: ["locations:read"] },
          },
        },
      },
      domains: {
        "down.test": {
          authenticator: {
            kind: "http",
            options: {
              url: `http://127.0.0.1:${dead.port}/check`,
              timeoutMs: 500,
              allowTargets: ["127.0.0.1"],
            },
          },
        },
      },
    },
  });
  const log = pino({ level: "silent" });
  core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const domain = config.domains.localhost;
  if (!domain) throw new Error("config/test.json has no localhost domain");
  for (const [node, password] of [
    ["alice", "alice pw"],
    ["carol", "pa:ss wörd"],
    ["dave", "dave pw"],
    ["erin", "erin pw"],
    ["locked", "right"],
  ] as const) {
    await addUser(db.pool, { node, domain: "localhost" }, { cleartext: password }, domain);
  }

  const counted: AuthApi = {
    ...core,
    checkAppLogin(jid, password, client) {
      asked.push(`${jid.node}@${jid.domain}`);
      return core.checkAppLogin(jid, password, client);
    },
  };
  const callers = createCallers({ core: counted, apiKeys: config.services.httpUtility.apiKeys });
  const app = express();
  // as the app mounts its route definitions: the policy resolved before the handler, which gets the caller
  const whoIs = (path: string, policy: CallerPolicy) =>
    defineRoute({
      method: "get",
      path,
      summary: path,
      caller: policy,
      responses: { 200: { description: "who is calling" } },
      handler: ({ caller: c, res }) => {
        res.json(
          c === undefined
            ? { caller: null }
            : c.kind === "app"
              ? c
              : { kind: c.kind, key: c.key, scopes: [...c.scopes] },
        );
      },
    });
  app.use(
    routesRouter(
      [
        whoIs("/app", caller.app),
        whoIs("/server", caller.server("push")),
        whoIs("/either", caller.appOrServer("locations:read")),
        // a public policy: no caller, whatever the request says
        whoIs("/anyone", caller.public),
      ],
      { resolveCaller: callers.resolve },
    ),
  );
  finishApp(app, log);
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close?.();
  await dead?.close();
  await core?.close();
  await db?.drop();
});

interface Answer {
  status: number;
  body: unknown;
  challenge: string | undefined;
  retryAfter: string | undefined;
}

/**
 * A GET with the Authorization header exactly as given (bytes as latin1), through node:http, from a loopback
 * address of the caller's choosing (all of 127.0.0.0/8 reaches the server): clients on different addresses.
 */
function call(path: string, authorization?: string, from = "127.0.0.1"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, {
      headers: authorization === undefined ? {} : { authorization },
      localAddress: from,
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({
          status: res.statusCode ?? 0,
          body: text && res.headers["content-type"]?.startsWith("application/json") ? JSON.parse(text) : text,
          challenge: res.headers["www-authenticate"],
          retryAfter: res.headers["retry-after"],
        });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

const basic = (credentials: string | Buffer) =>
  `Basic ${(typeof credentials === "string" ? Buffer.from(credentials, "utf8") : credentials).toString("base64")}`;

const refusedCredentials = {
  status: 401,
  body: INVALID_CREDENTIALS,
  challenge: BASIC_CHALLENGE,
  retryAfter: undefined,
};

describe("app callers (HTTP Basic: JID and XMPP password)", () => {
  it("accepts the right password, and names the caller by their normalised JID", async () => {
    expect(await call("/app", basic("alice@localhost:alice pw"))).toMatchObject({
      status: 200,
      body: { kind: "app", jid: { node: "alice", domain: "localhost" } },
    });
    expect(await call("/app", basic("Alice@LocalHost:alice pw"))).toMatchObject({
      status: 200,
      body: { kind: "app", jid: { node: "alice", domain: "localhost" } },
    });
    // the password is everything after the first colon, in UTF-8
    expect(await call("/app", basic("carol@localhost:pa:ss wörd"))).toMatchObject({ status: 200 });
    expect(await call("/app", `basic  ${basic("alice@localhost:alice pw").slice(6)} `)).toMatchObject({
      status: 200,
    });
  });

  it("refuses a wrong password, an unknown user, an unknown domain and an empty password", async () => {
    for (const credentials of [
      "dave@localhost:wrong",
      "dave@localhost:Dave pw",
      "nobody@localhost:alice pw",
      "alice@nowhere.test:alice pw",
      "alice@localhost:",
    ]) {
      expect(await call("/app", basic(credentials)), credentials).toEqual(refusedCredentials);
    }
  });

  it("refuses malformed headers without asking the auth core", async () => {
    const malformed: [string, string | undefined][] = [
      ["no header", undefined],
      ["empty header", ""],
      ["scheme only", "Basic"],
      ["scheme and blank", "Basic    "],
      ["another scheme", `Digest ${basic("alice@localhost:alice pw").slice(6)}`],
      ["no colon", basic("alice@localhost alice pw")],
      ["empty user", basic(":alice pw")],
      ["empty credentials", basic(":")],
      ["not a JID", basic("alice:alice pw")],
      ["a JID with a space", basic("al ice@localhost:alice pw")],
      ["not base64", "Basic !!!alice@localhost:alice pw!!!"],
      ["base64 then garbage", `${basic("alice@localhost:alice pw")} extra`],
      ["not UTF-8", basic(Buffer.concat([Buffer.from("alice@localhost:alice "), Buffer.from([0xff, 0xfe])]))],
      [
        "not UTF-8 in the JID",
        basic(Buffer.concat([Buffer.from([0xe9]), Buffer.from("@localhost:alice pw")])),
      ],
      ["Latin-1 bytes in the header", "Basic \u00e9\u00e9\u00e9\u00e9"],
    ];
    const before = asked.length;
    for (const [what, header] of malformed) {
      expect(await call("/app", header), what).toEqual(refusedCredentials);
    }
    expect(asked.slice(before)).toEqual([]);
  });

  it("refuses a huge password (the core bounds it) and a header past Node's limit (431)", async () => {
    expect(await call("/app", basic(`alice@localhost:${"x".repeat(9000)}`))).toEqual(refusedCredentials);
    expect((await call("/app", basic(`alice@localhost:${"x".repeat(20_000)}`))).status).toBe(431);
    expect(await call("/app", basic("alice@localhost:alice pw"))).toMatchObject({ status: 200 });
  });

  it("refuses an address that guessed one JID's password maxFailures times, and only that address", async () => {
    const guesser = "127.0.0.7";
    for (let i = 0; i < GUARD.maxFailures; i++) {
      expect(await call("/app", basic(`locked@localhost:wrong ${i}`), guesser)).toEqual(refusedCredentials);
    }
    const refused = await call("/app", basic("locked@localhost:right"), guesser);
    expect(refused).toMatchObject({
      status: 429,
      body: { error: { code: "too_many_failures" } },
      challenge: undefined,
    });
    expect(Number(refused.retryAfter)).toBeGreaterThan(GUARD.lockSeconds - 10);
    // the guesser may still log in as someone else; the owner, elsewhere, is not affected anywhere
    expect(await call("/app", basic("alice@localhost:alice pw"), guesser)).toMatchObject({ status: 200 });
    expect(await call("/app", basic("locked@localhost:right"), "127.0.0.8")).toMatchObject({ status: 200 });
    expect(await core.checkPassword({ node: "locked", domain: "localhost" }, "right")).toBe(true);
  });

  it("refuses an address that sprays guesses over many JIDs, before any password is checked", async () => {
    const sprayer = "127.0.0.9";
    for (let i = 0; i < GUARD.maxFailuresPerAddress; i++) {
      expect(await call("/app", basic(`user${i}@localhost:123456`), sprayer)).toEqual(refusedCredentials);
    }
    // a right password is refused too: the address is refused before its passwords are looked at (but for
    // one that this process saw succeed, which is no guess: alice's, below)
    expect(await call("/app", basic("dave@localhost:dave pw"), sprayer)).toMatchObject({
      status: 429,
      body: { error: { code: "too_many_failures" } },
    });
    expect(await call("/app", basic("alice@localhost:alice pw"), sprayer)).toMatchObject({ status: 200 });
    expect(await call("/app", basic("dave@localhost:dave pw"))).toMatchObject({ status: 200 });
  });

  it("answers 503 auth_unavailable with Retry-After when the domain's backend cannot answer", async () => {
    expect(await call("/app", basic("bob@down.test:pw"))).toEqual({
      status: 503,
      body: {
        error: {
          code: "auth_unavailable",
          message: "Credentials cannot be checked right now; retry in a few seconds.",
        },
      },
      challenge: undefined,
      retryAfter: "5",
    });
  });

  it("refuses a Bearer API key on an app route", async () => {
    expect(await call("/app", `Bearer ${PUSHER}`)).toEqual(refusedCredentials);
  });
});

describe("server callers (Bearer API keys with scopes)", () => {
  it("accepts a configured key that has the scope", async () => {
    expect(await call("/server", `Bearer ${PUSHER}`)).toMatchObject({
      status: 200,
      body: { kind: "server", key: "pusher", scopes: ["push"] },
    });
    expect(await call("/server", `bearer ${PUSHER}`)).toMatchObject({ status: 200 });
  });

  it("refuses an unknown key with invalid_token, and no key without an error code (RFC 6750 §3)", async () => {
    for (const key of [newKey(), PUSHER.slice(0, -1), `${PUSHER}x`, sha256(PUSHER)]) {
      expect(await call("/server", `Bearer ${key}`)).toEqual({
        status: 401,
        body: INVALID_API_KEY,
        challenge: 'Bearer realm="xmpp-sidecars", error="invalid_token"',
        retryAfter: undefined,
      });
    }
    for (const header of [undefined, "Bearer", "Bearer ", `Bearer ${PUSHER} ${PUSHER}`]) {
      expect(await call("/server", header), String(header)).toEqual({
        status: 401,
        body: INVALID_API_KEY,
        challenge: 'Bearer realm="xmpp-sidecars"',
        retryAfter: undefined,
      });
    }
  });

  it("refuses a key without the scope: 403 insufficient_scope", async () => {
    expect(await call("/server", `Bearer ${READER}`)).toEqual({
      status: 403,
      body: {
        error: {
          code: "insufficient_scope",
          message: 'This API key lacks the scope "push"; ask for a key that has it.',
        },
      },
      challenge: 'Bearer realm="xmpp-sidecars", error="insufficient_scope", scope="push"',
      retryAfter: undefined,
    });
  });

  it("refuses HTTP Basic on a server route without asking the auth core", async () => {
    const before = asked.length;
    expect(await call("/server", basic("alice@localhost:alice pw"))).toEqual({
      status: 401,
      body: INVALID_API_KEY,
      challenge: 'Bearer realm="xmpp-sidecars"',
      retryAfter: undefined,
    });
    expect(asked.length).toBe(before);
  });
});

describe("app-or-server callers", () => {
  it("accepts an app user and a key with the scope", async () => {
    expect(await call("/either", basic("alice@localhost:alice pw"))).toMatchObject({
      status: 200,
      body: { kind: "app", jid: { node: "alice", domain: "localhost" } },
    });
    expect(await call("/either", `Bearer ${READER}`)).toMatchObject({
      status: 200,
      body: { kind: "server", key: "reader", scopes: ["locations:read"] },
    });
  });

  it("refuses what either kind would refuse, each with its own challenge", async () => {
    expect(await call("/either")).toEqual(refusedCredentials);
    expect(await call("/either", basic("erin@localhost:wrong"))).toEqual(refusedCredentials);
    expect(await call("/either", `Bearer ${newKey()}`)).toMatchObject({
      status: 401,
      body: INVALID_API_KEY,
      challenge: 'Bearer realm="xmpp-sidecars", error="invalid_token"',
    });
    expect(await call("/either", `Bearer ${PUSHER}`)).toMatchObject({
      status: 403,
      body: { error: { code: "insufficient_scope" } },
      challenge: 'Bearer realm="xmpp-sidecars", error="insufficient_scope", scope="locations:read"',
    });
  });
});

describe("public routes", () => {
  it("resolve to no caller without looking at the credentials", async () => {
    const before = asked.length;
    for (const header of [undefined, basic("alice@localhost:wrong"), "Bearer nonsense", "Basic !!!"]) {
      expect(await call("/anyone", header), String(header)).toMatchObject({
        status: 200,
        body: { caller: null },
      });
    }
    expect(asked.length).toBe(before);
  });
});

describe("internal callers (no credentials: the connection's own address)", () => {
  // a connection from 203.0.113.9 cannot be opened on this machine: the policy is resolved as routesRouter
  // resolves it, with the request Express would give
  const policy = caller.internal(["10.1.0.0/16"]);
  const from = (remoteAddress: string, headers: Record<string, string> = {}) =>
    ({ socket: { remoteAddress }, headers, ip: "127.0.0.1" }) as unknown as express.Request;
  const refusal = (req: express.Request) => {
    try {
      return resolveInternalCaller(policy, req);
    } catch (err) {
      return err;
    }
  };
  const forbidden = {
    status: 403,
    code: "forbidden_address",
    message:
      "203.0.113.9 may not call MongooseIM's endpoints: add it to push.hooks.allow (loopback always may).",
  };

  it("lets loopback and the allowed addresses through, as no caller", () => {
    for (const address of ["127.0.0.1", "127.0.0.5", "::1", "10.1.2.3", "::ffff:10.1.200.9"]) {
      expect(refusal(from(address)), address).toBeUndefined();
    }
  });

  it("refuses any other connection with 403 forbidden_address, a forged X-Forwarded-For included", async () => {
    expect(refusal(from("203.0.113.9", { "x-forwarded-for": "127.0.0.1" }))).toMatchObject(forbidden);
    expect(refusal(from("10.2.0.1"))).toMatchObject({ status: 403, code: "forbidden_address" });
    // the same through the callers of the public app, which never read credentials for it
    const callers = createCallers({ core: {} as AuthApi, apiKeys: {} });
    await expect(callers.resolve(policy, from("203.0.113.9"))).rejects.toMatchObject(forbidden);
    expect(await callers.resolve(policy, from("10.1.2.3"))).toBeUndefined();
  });

  it("is documented as needing no credentials, with its 403", () => {
    expect(policy.security).toEqual([]);
    expect(policy.errors.map((e) => `${e.status} ${e.code}`)).toEqual(["403 forbidden_address"]);
  });
});
