import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import net, { type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { deadPort } from "../../../../test/support/free-port.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { createAuthApp } from "../app.ts";
import { type AuthCore, createAuthCore } from "../core/auth-core.ts";

/**
 * MongooseIM's HTTP auth contract (docs/auth.md "The contract") against the real app, database and
 * server, with requests written byte by byte over a raw socket as MongooseIM 2.1.0 (lhttpc, http_uri:encode)
 * and 6.x (uri_string:compose_query) write them, and as Prosody's mod_auth_http does. Every answer is
 * checked for its status, its exact body bytes and its Content-Length.
 */

const BASIC_AUTH = "mongooseim:s3cret";
const BASIC = `Basic ${Buffer.from(BASIC_AUTH).toString("base64")}`;
const PREFIX = "/authorize/";
const GUARD = { maxFailures: 3, windowSeconds: 60, lockSeconds: 60, delayAfterFailures: 3, maxDelayMs: 400 };
const BACKEND_TIMEOUT_MS = 500;

// ---------------------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: every byte sent is ours, every byte received is kept.

interface RawResponse {
  status: number;
  /** lower-cased names */
  headers: Record<string, string>;
  body: Buffer;
}

class RawConnection {
  private readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private closed = false;
  private notify: () => void = () => {};

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
    socket.on("error", () => {}); // a reset after the answer is not what is tested; a missing answer is
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(new RawConnection(s)));
      s.once("error", reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  private async until(done: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One response, framed by its Content-Length; without one, whatever comes within a second or until close. */
  async read(): Promise<RawResponse> {
    const headEnd = () => this.buffer.indexOf("\r\n\r\n");
    await this.until(() => headEnd() >= 0, 5000);
    const end = headEnd();
    if (end < 0) throw new Error(`no answer; received ${JSON.stringify(this.buffer.toString("latin1"))}`);
    const [statusLine = "", ...lines] = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const start = end + 4;
    const declared = headers["content-length"];
    let stop: number;
    if (declared !== undefined) {
      stop = start + Number(declared);
      await this.until(() => this.buffer.length >= stop, 5000);
    } else {
      await this.until(() => false, 1000);
      stop = this.buffer.length;
    }
    const body = Buffer.from(this.buffer.subarray(start, stop));
    this.buffer = this.buffer.subarray(stop);
    return { status: Number(statusLine.split(" ")[1]), headers, body };
  }

  close(): void {
    this.socket.destroy();
  }
}

interface RawRequest {
  method: string;
  /** path and query as raw bytes */
  target: Buffer | string;
  headers: [string, string][];
  body?: Buffer;
}

function requestBytes(r: RawRequest): Buffer {
  const target = typeof r.target === "string" ? Buffer.from(r.target, "latin1") : r.target;
  const head = r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return Buffer.concat([
    Buffer.from(`${r.method} `),
    target,
    Buffer.from(` HTTP/1.1\r\n${head}\r\n`),
    r.body ?? Buffer.alloc(0),
  ]);
}

async function send(r: RawRequest): Promise<RawResponse> {
  const c = await RawConnection.open(port);
  try {
    c.write(requestBytes(r));
    return await c.read();
  } finally {
    c.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// How each caller encodes user, server, pass.

type Params = (readonly [string, string])[];

interface Encoding {
  name: string;
  encode(params: Params): Buffer;
}

const join = (parts: Buffer[][]) =>
  Buffer.concat(parts.flatMap((p, i) => (i === 0 ? p : [Buffer.from("&"), ...p])));

/** Percent-encodes the bytes of `value` that `pick` picks, `%XX` (hex case as given), others as they are. */
function percentEncode(value: string, pick: (b: number) => boolean, hex: (b: number) => string): Buffer {
  const out: Buffer[] = [];
  for (const b of Buffer.from(value, "utf8")) {
    out.push(pick(b) ? Buffer.from(`%${hex(b)}`) : Buffer.from([b]));
  }
  return Buffer.concat(out);
}

const upperHex = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");

// MongooseIM 2.1.0: http_uri:encode(binary_to_list(Value)) escapes its reserved ASCII set (space as %20,
// + as %2B, @ as %40) and leaves every other byte alone, so UTF-8 goes out raw.
const HTTP_URI_RESERVED = new Set(Buffer.from(";:@&=+$,/?#[]<>\"{}|\\'^% "));
const mongooseim2: Encoding = {
  name: "2.1.0",
  encode: (params) =>
    join(
      params.map(([k, v]) => [
        Buffer.from(`${k}=`),
        percentEncode(v, (b) => HTTP_URI_RESERVED.has(b), upperHex),
      ]),
    ),
};

// MongooseIM 6.x: uri_string:compose_query, i.e. application/x-www-form-urlencoded (space as +, UTF-8 %XX).
const mongooseim6: Encoding = {
  name: "6.x",
  encode: (params) =>
    Buffer.from(new URLSearchParams(params.map(([k, v]): [string, string] => [k, v])).toString(), "ascii"),
};

// Prosody's net.http formencode: every non-alphanumeric byte as lower-case %xx, space as +.
const prosody: Encoding = {
  name: "Prosody",
  encode: (params) =>
    join(
      params.map(([k, v]) => [
        Buffer.from(`${k}=`),
        Buffer.from(
          percentEncode(
            v,
            (b) => !/[A-Za-z0-9]/.test(String.fromCharCode(b)),
            (b) => b.toString(16).padStart(2, "0"),
          )
            .toString("latin1")
            .replaceAll("%20", "+"),
          "latin1",
        ),
      ]),
    ),
};

interface Variant {
  name: string;
  encoding: Encoding;
  method: "GET" | "POST";
  /** suffix of this variant's users, so that failures counted by the guard stay apart */
  tag: string;
}

const VARIANTS: Variant[] = [
  { name: "MongooseIM 2.1.0 encoding, GET", encoding: mongooseim2, method: "GET", tag: "g2" },
  { name: "MongooseIM 2.1.0 encoding, POST", encoding: mongooseim2, method: "POST", tag: "p2" },
  { name: "MongooseIM 6.x encoding, GET", encoding: mongooseim6, method: "GET", tag: "g6" },
  { name: "MongooseIM 6.x encoding, POST", encoding: mongooseim6, method: "POST", tag: "p6" },
];

/** A contract call: GET with the query in the URL, or POST with the same string as body and no Content-Type. */
function call(
  v: Pick<Variant, "encoding" | "method">,
  method: string,
  params: Params,
  o: { authorization?: string | null; contentType?: string } = {},
): Promise<RawResponse> {
  const query = v.encoding.encode(params);
  const headers: [string, string][] = [["Host", `127.0.0.1:${port}`]];
  if (o.authorization !== null) headers.push(["Authorization", o.authorization ?? BASIC]);
  if (v.method === "GET") {
    return send({
      method: "GET",
      target: Buffer.concat([Buffer.from(`${PREFIX}${method}?`), query]),
      headers,
    });
  }
  if (o.contentType) headers.push(["Content-Type", o.contentType]);
  headers.push(["Content-Length", String(query.length)]);
  return send({ method: "POST", target: `${PREFIX}${method}`, headers, body: query });
}

/** MongooseIM's three fields, in its order; `pass` is always there, empty for methods without a password. */
const ups = (user: string, server: string, pass = ""): Params => [
  ["user", user],
  ["server", server],
  ["pass", pass],
];

/** Status, exact body bytes, and a Content-Length that frames exactly that body. */
function expectAnswer(res: RawResponse, status: number, body: string): void {
  const want = Buffer.from(body, "utf8");
  expect({
    status: res.status,
    body: res.body.toString("utf8"),
    contentLength: res.headers["content-length"],
    transferEncoding: res.headers["transfer-encoding"],
  }).toEqual({ status, body, contentLength: String(want.length), transferEncoding: undefined });
  expect(res.body.equals(want)).toBe(true);
}

/** For answers whose body is checked apart (SCRAM serializations): status and framing; the body as text. */
function expectFramed(res: RawResponse, status: number): string {
  expect(res.status).toBe(status);
  expect(res.headers["content-length"]).toBe(String(res.body.length));
  return res.body.toString("utf8");
}

// ---------------------------------------------------------------------------------------------------------
// RFC 5802, computed here with node:crypto only (not the project's scram.ts), as a SCRAM client would.

const KEY_BYTES = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 } as const;
type Hash = keyof typeof KEY_BYTES;
const HASHES = Object.keys(KEY_BYTES) as Hash[];
const MULTI_TAG: Record<Hash, string> = {
  sha1: "===SHA1===",
  sha224: "==SHA224==",
  sha256: "==SHA256==",
  sha384: "==SHA384==",
  sha512: "==SHA512==",
};

interface Entry {
  salt: string;
  storedKey: string;
  serverKey: string;
}

function rfc5802(password: string, salt: Buffer, iterations: number, hash: Hash): Entry {
  const salted = pbkdf2Sync(password, salt, iterations, KEY_BYTES[hash], hash);
  const clientKey = createHmac(hash, salted).update("Client Key").digest();
  return {
    salt: salt.toString("base64"),
    storedKey: createHash(hash).update(clientKey).digest("base64"),
    serverKey: createHmac(hash, salted).update("Server Key").digest("base64"),
  };
}

/** 6.x form, a fresh salt per hash. */
function multiSerialization(password: string, iterations: number, hashes: Hash[]): string {
  const parts = hashes.map((h) => {
    const e = rfc5802(password, randomBytes(16), iterations, h);
    return `${MULTI_TAG[h]}${e.salt}|${e.storedKey}|${e.serverKey}`;
  });
  return `==MULTI_SCRAM==,${iterations},${parts.join(",")}`;
}

function legacySerialization(password: string, iterations: number): string {
  const e = rfc5802(password, randomBytes(16), iterations, "sha1");
  return `==SCRAM==,${e.storedKey},${e.serverKey},${e.salt},${iterations}`;
}

/** Reads the 6.x per-hash-salt form; throws on anything else. Entries in the order written. */
function readMulti(text: string): { iterations: number; entries: [Hash, Entry][] } {
  const [tag, iterations, ...fields] = text.split(",");
  if (tag !== "==MULTI_SCRAM==" || !/^\d+$/.test(iterations ?? "")) throw new Error(`not 6.x: ${text}`);
  const entries = fields.map((field): [Hash, Entry] => {
    const hash = HASHES.find((h) => field.startsWith(MULTI_TAG[h]));
    const values = hash ? field.slice(MULTI_TAG[hash].length).split("|") : [];
    if (!hash || values.length !== 3) throw new Error(`bad entry ${field} in ${text}`);
    const [salt, storedKey, serverKey] = values as [string, string, string];
    return [hash, { salt, storedKey, serverKey }];
  });
  return { iterations: Number(iterations), entries };
}

/** A 6.x serialization with exactly `hashes`, in order, each a valid SCRAM of `password`, each with its own salt. */
function expectMultiOf(text: string, password: string, iterations: number, hashes: Hash[]): void {
  const { iterations: i, entries } = readMulti(text);
  expect(i).toBe(iterations);
  expect(entries.map(([h]) => h)).toEqual(hashes);
  for (const [hash, e] of entries) {
    expect(e, hash).toEqual(rfc5802(password, Buffer.from(e.salt, "base64"), iterations, hash));
  }
  const salts = entries.map(([, e]) => e.salt);
  expect(new Set(salts).size).toBe(salts.length);
}

function expectLegacyOf(text: string, password: string, iterations: number): void {
  const m = /^==SCRAM==,([^,]+),([^,]+),([^,]+),(\d+)$/.exec(text);
  expect(m, text).not.toBeNull();
  const [, storedKey, serverKey, salt, i] = m as RegExpExecArray;
  expect(Number(i)).toBe(iterations);
  expect({ salt, storedKey, serverKey }).toEqual(
    rfc5802(password, Buffer.from(salt as string, "base64"), iterations, "sha1"),
  );
}

// MongooseIM's documented example (password misio, 4096 iterations).
const MISIO = {
  salt: "inKXODlSY5y5SCsLxibi0w==",
  storedKey: "tmi5IE+9pceRV/jkPLFHEaVY33c=",
  serverKey: "MiWNa8T3dniVDwmh77ufJ41fpAQ=",
};
const MISIO_LEGACY = `==SCRAM==,${MISIO.storedKey},${MISIO.serverKey},${MISIO.salt},4096`;

// ---------------------------------------------------------------------------------------------------------
// The service under test.

const SPECIAL = "pä ss+&=%word€";
const LONG = "&=+% ab1".repeat(128); // 1024 bytes
const SQL_OR = "' OR '1'='1";
const SQL_DROP = "x'; DROP TABLE web_users; --";

/** Everything a variant needs, its nodes suffixed with the variant's tag. */
function fixtures(t: string) {
  const users: [domain: string, node: string, password: string][] = [
    ["plain.test", `alice-${t}`, "correct horse battery"],
    ["plain.test", `special-${t}`, SPECIAL],
    ["plain.test", `jörg-${t}`, "umlaut user"],
    ["plain.test", `long-${t}`, LONG],
    ["plain.test", `joe\\40example.com-${t}`, "escaped node"],
    ["plain.test", `sql-${t}`, "s3cret sql"],
    ["plain.test", `changer-${t}`, "old pass"],
    ["plain.test", `goner-${t}`, "gone soon"],
    ["plain.test", `quitter-${t}`, "bye bye"],
    ["plain.test", `locked-${t}`, "open sesame"],
    ["scram6.test", `guessed-${t}`, "guessed pass"],
    ["plain.test", `bystander-${t}`, "not me"],
    ["plain.test", `cached-${t}`, "cache me"],
    ["hashed.test", `bob-${t}`, "bob's pass"],
    ["scram6.test", `carol-${t}`, "carol's pass"],
    ["scram6.test", `dave-${t}`, "dave old"],
    ["scram6.test", `erin-${t}`, "erin pass"],
    ["scram6.test", `ivy-${t}`, "ivy pass"],
    ["scram2.test", `gina-${t}`, "gina pass"],
    ["scram2.test", `hank-${t}`, "hank old"],
    ["broken.test", `bot-${t}`, "beep boop"],
  ];
  // rows as the legacy table holds them: cleartext token, no SCRAM data
  const legacy: [domain: string, node: string, token: string][] = [
    ["plain.test", `legacy-${t}`, "legacy pass&1"],
    ["hashed.test", `legacy-${t}`, "legacy hashed"],
    ["scram6.test", `legacy-${t}`, "legacy6 pass"],
    ["scram2.test", `legacy-${t}`, "legacy2 pass"],
  ];
  return { users, legacy };
}

const { log, text: logText } = recordingLogger({ level: "info" });

let db: TestDatabase;
let config: Config;
let core: AuthCore;
let server: RunningServer;
let port: number;
let hanging: net.Server;
let dead: Awaited<ReturnType<typeof deadPort>>;
const hangingSockets = new Set<Socket>();

function domainConfig(domain: string): DomainConfig {
  const d = config.domains[domain];
  if (!d) throw new Error(`no domain ${domain} in the test config`);
  return d;
}

async function seed(t: string): Promise<void> {
  const { users, legacy } = fixtures(t);
  await Promise.all(
    users.map(([domain, node, password]) =>
      addUser(db.pool, { node, domain }, { cleartext: password }, domainConfig(domain)),
    ),
  );
  for (const [domain, node, token] of legacy) {
    await db.pool.query("INSERT INTO web_users (node, domain, token) VALUES ($1, $2, $3)", [
      node,
      domain,
      token,
    ]);
  }
}

async function row(domain: string, node: string) {
  const r = await db.pool.query<{ token: string | null; has_scram: boolean }>(
    "SELECT token, scram IS NOT NULL AS has_scram FROM web_users WHERE domain = $1 AND node = $2",
    [domain, node],
  );
  return r.rows[0];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until `done` holds or `ms` pass; returns the last value. */
async function eventually<T>(probe: () => Promise<T>, done: (v: T) => boolean, ms = 2000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await sleep(20);
    value = await probe();
  }
  return value;
}

async function metricsText(): Promise<string> {
  const res = await send({ method: "GET", target: "/metrics", headers: [["Host", "127.0.0.1"]] });
  expect(res.status).toBe(200);
  return res.body.toString("utf8");
}

/** The value of one sample, its labels matched in any order. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] as string).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dead = await deadPort(); // every connection cut: a backend that is down
  hanging = net.createServer((s) => {
    hangingSockets.add(s); // accepts, reads, never answers
    s.on("error", () => {});
    s.on("close", () => hangingSockets.delete(s));
  });
  await new Promise<void>((r) => hanging.listen(0, "127.0.0.1", r));
  const hangingPort = (hanging.address() as net.AddressInfo).port;

  config = loadConfig({
    env: { APP_ENV: "test", AUTH_BASIC_AUTH: BASIC_AUTH },
    overrides: {
      domains: {
        "plain.test": { passwordFormat: "plain", keepCleartext: true, scramIterations: 4096 },
        "hashed.test": { passwordFormat: "plain", keepCleartext: false, scramIterations: 4096 },
        "scram6.test": { passwordFormat: "scram", scramFormat: "multi", scramIterations: 4096 },
        "scram2.test": { passwordFormat: "scram", scramFormat: "legacy", scramIterations: 4096 },
        // a REST backend that is down; its buddies are still checked against web_users
        "broken.test": {
          authenticator: {
            kind: "http",
            options: {
              url: `http://127.0.0.1:${dead.port}/check`,
              timeoutMs: 1000,
              allowTargets: ["127.0.0.1"],
            },
          },
          scramIterations: 4096,
          buddies: VARIANTS.map((v) => `Bot-${v.tag}`),
        },
        // a REST backend that never answers: the service's own bound must answer for it
        "slow.test": {
          authenticator: {
            kind: "http",
            options: {
              url: `http://127.0.0.1:${hangingPort}/check`,
              timeoutMs: 10_000,
              allowTargets: ["127.0.0.1"],
            },
          },
        },
      },
      services: { auth: { guard: GUARD, backendTimeoutMs: BACKEND_TIMEOUT_MS } },
    },
  });
  const metrics = createMetrics("auth");
  core = await createAuthCore({
    config,
    pool: db.pool,
    listener: db.listener,
    log,
    metrics: metrics.registry,
  });
  const app = createAuthApp({ config, log, pool: db.pool, core, metrics });
  server = await startServer(app, { name: "auth", host: "127.0.0.1", port: 0, rawRequestBytes: true, log });
  port = server.port;
  await Promise.all(VARIANTS.map((v) => seed(v.tag)));
});

afterAll(async () => {
  await server?.close(100);
  await core?.close();
  await dead?.close();
  for (const s of hangingSockets) s.destroy();
  await new Promise<void>((r) => (hanging ? hanging.close(() => r()) : r()));
  await db?.drop();
});

// ---------------------------------------------------------------------------------------------------------

describe("the test's own SCRAM computation", () => {
  it("reproduces MongooseIM's documented example", () => {
    expect(rfc5802("misio", Buffer.from(MISIO.salt, "base64"), 4096, "sha1")).toEqual(MISIO);
  });
});

describe.each(VARIANTS)("$name", (v) => {
  const t = v.tag;
  const c = (method: string, params: Params, o?: Parameters<typeof call>[3]) => call(v, method, params, o);

  describe("check_password", () => {
    it("right password: 200 true; wrong: 200 false", async () => {
      expectAnswer(
        await c("check_password", ups(`alice-${t}`, "plain.test", "correct horse battery")),
        200,
        "true",
      );
      expectAnswer(await c("check_password", ups(`alice-${t}`, "plain.test", "correct horse")), 200, "false");
    });

    it("a password with & = + % spaces and non-ASCII letters", async () => {
      expectAnswer(await c("check_password", ups(`special-${t}`, "plain.test", SPECIAL)), 200, "true");
      expectAnswer(await c("check_password", ups(`special-${t}`, "plain.test", "pä ss")), 200, "false");
    });

    it("a user part with non-ASCII letters", async () => {
      expectAnswer(await c("check_password", ups(`jörg-${t}`, "plain.test", "umlaut user")), 200, "true");
    });

    it("a 1 KiB password", async () => {
      expectAnswer(await c("check_password", ups(`long-${t}`, "plain.test", LONG)), 200, "true");
    });

    it("empty pass: false", async () => {
      expectAnswer(await c("check_password", ups(`alice-${t}`, "plain.test", "")), 200, "false");
    });

    it("missing pass, user or server: 400", async () => {
      const user: [string, string] = ["user", `alice-${t}`];
      const srv: [string, string] = ["server", "plain.test"];
      const pass: [string, string] = ["pass", "correct horse battery"];
      expectAnswer(await c("check_password", [user, srv]), 400, "bad_request: pass is required");
      expectAnswer(await c("check_password", [srv, pass]), 400, "bad_request: user and server are required");
      expectAnswer(await c("check_password", [user, pass]), 400, "bad_request: user and server are required");
      expectAnswer(await c("check_password", []), 400, "bad_request: user and server are required");
    });

    it("unknown domain, unknown user: false", async () => {
      expectAnswer(
        await c("check_password", ups(`alice-${t}`, "nowhere.test", "correct horse battery")),
        200,
        "false",
      );
      expectAnswer(
        await c("check_password", ups(`nobody-${t}`, "plain.test", "correct horse battery")),
        200,
        "false",
      );
    });

    it("SQL in user or pass is only text: false, and web_users is still there", async () => {
      expectAnswer(await c("check_password", ups(SQL_OR, "plain.test", SQL_OR)), 200, "false");
      expectAnswer(await c("check_password", ups(SQL_DROP, "plain.test", "x")), 200, "false");
      expectAnswer(await c("check_password", ups(`sql-${t}`, "plain.test", SQL_OR)), 200, "false");
      expectAnswer(await c("check_password", ups(`sql-${t}`, "plain.test", SQL_DROP)), 200, "false");
      const r = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM web_users");
      expect(r.rows[0]?.n).toBeGreaterThan(0);
      expectAnswer(await c("check_password", ups(`sql-${t}`, "plain.test", "s3cret sql")), 200, "true");
    });

    it("a user part with a XEP-0106 escape (joe\\40example.com)", async () => {
      expectAnswer(
        await c("check_password", ups(`joe\\40example.com-${t}`, "plain.test", "escaped node")),
        200,
        "true",
      );
    });

    it("upper-case user and server are lower-cased", async () => {
      const res = await c(
        "check_password",
        ups(`ALICE-${t.toUpperCase()}`, "PLAIN.Test", "correct horse battery"),
      );
      expectAnswer(res, 200, "true");
    });

    it("a legacy cleartext row logs in and is rehashed, keeping its token where the domain keeps cleartext", async () => {
      expectAnswer(await c("check_password", ups(`legacy-${t}`, "plain.test", "legacy pass&1")), 200, "true");
      const kept = await eventually(
        () => row("plain.test", `legacy-${t}`),
        (r) => r?.has_scram === true,
      );
      expect(kept).toEqual({ token: "legacy pass&1", has_scram: true });

      expectAnswer(
        await c("check_password", ups(`legacy-${t}`, "hashed.test", "legacy hashed")),
        200,
        "true",
      );
      const dropped = await eventually(
        () => row("hashed.test", `legacy-${t}`),
        (r) => r?.has_scram === true,
      );
      expect(dropped).toEqual({ token: null, has_scram: true });
      // now checked against its SCRAM data
      expectAnswer(
        await c("check_password", ups(`legacy-${t}`, "hashed.test", "legacy hashed")),
        200,
        "true",
      );
      expectAnswer(await c("check_password", ups(`legacy-${t}`, "hashed.test", "legacy")), 200, "false");
    });

    it("a backend that is down: 400 internal_error, never a 5xx; a buddy of its domain still logs in", async () => {
      expectAnswer(
        await c("check_password", ups(`someone-${t}`, "broken.test", "whatever")),
        400,
        "internal_error",
      );
      expectAnswer(await c("check_password", ups(`bot-${t}`, "broken.test", "beep boop")), 200, "true");
      expectAnswer(await c("check_password", ups(`bot-${t}`, "broken.test", "beep")), 200, "false");
    });

    it("a backend that does not answer: 400 internal_error within backendTimeoutMs", async () => {
      const start = Date.now();
      expectAnswer(
        await c("check_password", ups(`someone-${t}`, "slow.test", "whatever")),
        400,
        "internal_error",
      );
      expect(Date.now() - start).toBeGreaterThanOrEqual(BACKEND_TIMEOUT_MS - 50);
      expect(Date.now() - start).toBeLessThan(BACKEND_TIMEOUT_MS + 1000);
    });
  });

  describe("user_exists", () => {
    it("true, false, false for an unknown domain (pass= present and empty)", async () => {
      expectAnswer(await c("user_exists", ups(`alice-${t}`, "plain.test")), 200, "true");
      expectAnswer(await c("user_exists", ups(`nobody-${t}`, "plain.test")), 200, "false");
      expectAnswer(await c("user_exists", ups(`alice-${t}`, "nowhere.test")), 200, "false");
    });

    it("a buddy of a REST-backed domain exists; others are unknown to a backend without userExistsUrl", async () => {
      expectAnswer(await c("user_exists", ups(`bot-${t}`, "broken.test")), 200, "true");
      expectAnswer(await c("user_exists", ups(`someone-${t}`, "broken.test")), 200, "false");
    });
  });

  describe("get_password", () => {
    it("plain domain keeping cleartext: 200 with the password, byte for byte", async () => {
      expectAnswer(await c("get_password", ups(`alice-${t}`, "plain.test")), 200, "correct horse battery");
      expectAnswer(await c("get_password", ups(`special-${t}`, "plain.test")), 200, SPECIAL);
    });

    it("plain domain without cleartext: 404", async () => {
      expectAnswer(await c("get_password", ups(`bob-${t}`, "hashed.test")), 404, "");
    });

    it("6.x scram domain: ==MULTI_SCRAM==, every hash a valid SCRAM of the password, each with its own salt", async () => {
      const text = expectFramed(await c("get_password", ups(`carol-${t}`, "scram6.test")), 200);
      expect(text).toMatch(/^==MULTI_SCRAM==,4096,===SHA1===/);
      expectMultiOf(text, "carol's pass", 4096, HASHES);
    });

    it("2.1.0 scram domain: ==SCRAM==,stored,server,salt,iterations, a valid SHA-1 SCRAM of the password", async () => {
      const text = expectFramed(await c("get_password", ups(`gina-${t}`, "scram2.test")), 200);
      expectLegacyOf(text, "gina pass", 4096);
    });

    it("a legacy cleartext row in a scram domain: a valid serialization of its cleartext, stored once", async () => {
      expect(await row("scram6.test", `legacy-${t}`)).toEqual({ token: "legacy6 pass", has_scram: false });
      const multi = expectFramed(await c("get_password", ups(`legacy-${t}`, "scram6.test")), 200);
      expectMultiOf(multi, "legacy6 pass", 4096, HASHES);
      const legacy = expectFramed(await c("get_password", ups(`legacy-${t}`, "scram2.test")), 200);
      expectLegacyOf(legacy, "legacy2 pass", 4096);
      // rehashed at the first read and kept, the cleartext dropped (these domains do not keep it): the next
      // get_password gives the same salt and keys, as MongooseIM's SCRAM handshake needs across logins
      expect(await row("scram6.test", `legacy-${t}`)).toEqual({ token: null, has_scram: true });
      expect(await row("scram2.test", `legacy-${t}`)).toEqual({ token: null, has_scram: true });
      expectAnswer(await c("get_password", ups(`legacy-${t}`, "scram6.test")), 200, multi);
      expectAnswer(await c("get_password", ups(`legacy-${t}`, "scram2.test")), 200, legacy);
      expectAnswer(await c("check_password", ups(`legacy-${t}`, "scram6.test", "legacy6 pass")), 200, "true");
    });

    it("unknown user or domain: 404", async () => {
      expectAnswer(await c("get_password", ups(`nobody-${t}`, "plain.test")), 404, "");
      expectAnswer(await c("get_password", ups(`nobody-${t}`, "scram6.test")), 404, "");
      expectAnswer(await c("get_password", ups(`alice-${t}`, "nowhere.test")), 404, "");
    });
  });

  describe("set_password", () => {
    it("plain domain, cleartext: 200, then the new password works and the old does not", async () => {
      const next = "n3w &=+% pass";
      expectAnswer(await c("set_password", ups(`changer-${t}`, "plain.test", next)), 200, "");
      expectAnswer(await c("check_password", ups(`changer-${t}`, "plain.test", next)), 200, "true");
      expectAnswer(await c("check_password", ups(`changer-${t}`, "plain.test", "old pass")), 200, "false");
      expectAnswer(await c("get_password", ups(`changer-${t}`, "plain.test")), 200, next);
    });

    it("6.x scram domain, a serialization: 200, get_password gives the same entries, the password works", async () => {
      const sent = multiSerialization("dave new", 4096, ["sha1", "sha256"]);
      expectAnswer(await c("set_password", ups(`dave-${t}`, "scram6.test", sent)), 200, "");
      const got = expectFramed(await c("get_password", ups(`dave-${t}`, "scram6.test")), 200);
      expect(readMulti(got)).toEqual(readMulti(sent));
      expectMultiOf(got, "dave new", 4096, ["sha1", "sha256"]);
      expectAnswer(await c("check_password", ups(`dave-${t}`, "scram6.test", "dave new")), 200, "true");
      expectAnswer(await c("check_password", ups(`dave-${t}`, "scram6.test", "dave old")), 200, "false");
    });

    it("2.1.0 scram domain, MongooseIM's documented serialization: get_password gives it back, misio works", async () => {
      expectAnswer(await c("set_password", ups(`hank-${t}`, "scram2.test", MISIO_LEGACY)), 200, "");
      expectAnswer(await c("get_password", ups(`hank-${t}`, "scram2.test")), 200, MISIO_LEGACY);
      expectAnswer(await c("check_password", ups(`hank-${t}`, "scram2.test", "misio")), 200, "true");
      // and a serialization computed here, with another iteration count
      const sent = legacySerialization("hank new", 5000);
      expectAnswer(await c("set_password", ups(`hank-${t}`, "scram2.test", sent)), 200, "");
      expectAnswer(await c("get_password", ups(`hank-${t}`, "scram2.test")), 200, sent);
    });

    it("a malformed serialization: 403, the password unchanged", async () => {
      const good = multiSerialization("erin new", 4096, ["sha256"]);
      for (const bad of [
        "==SCRAM==,abc",
        `${legacySerialization("x", 4096).replace(/,4096$/, ",zero")}`,
        "==MULTI_SCRAM==,4096",
        "==MULTI_SCRAM==,4096,===SHA1===!!|x|y",
        good.replace("==SHA256==", "==SHA999=="),
        good.replace(/\|[^|]+$/, ""),
        `${good},${good.split(",")[2]}`, // the same hash twice
      ]) {
        expectAnswer(await c("set_password", ups(`erin-${t}`, "scram6.test", bad)), 403, "refused");
      }
      expectAnswer(await c("check_password", ups(`erin-${t}`, "scram6.test", "erin pass")), 200, "true");
    });

    it("a serialization whose keys are not base64 of the hash's length: 403, the password unchanged", async () => {
      // a SHA-1 StoredKey/ServerKey is 20 bytes (28 base64 chars), a SHA-256 one 32: anything else is not
      // SCRAM data, and stored it would lock the user out for good
      const { storedKey, serverKey, salt } = rfc5802("ivy new", randomBytes(16), 4096, "sha256");
      for (const bad of [
        "==SCRAM==,a,b,c,4096", // not even whole base64 quanta
        "==SCRAM==,AAAA,AAAA,AAAA,4096", // 3-byte keys
        `==MULTI_SCRAM==,4096,==SHA256==${salt}|${storedKey.slice(4)}|${serverKey}`,
        `==MULTI_SCRAM==,4096,===SHA1===${salt}|${storedKey}|${serverKey}`, // SHA-256 keys labelled SHA-1
      ]) {
        expectAnswer(await c("set_password", ups(`ivy-${t}`, "scram6.test", bad)), 403, "refused");
      }
      expectAnswer(await c("check_password", ups(`ivy-${t}`, "scram6.test", "ivy pass")), 200, "true");
    });

    it("unknown user: 404; unknown domain: 403; missing pass: 400", async () => {
      expectAnswer(
        await c("set_password", ups(`nobody-${t}`, "plain.test", "some pass")),
        404,
        "unknown_user",
      );
      const sent = multiSerialization("x", 4096, ["sha1"]);
      expectAnswer(await c("set_password", ups(`nobody-${t}`, "scram6.test", sent)), 404, "unknown_user");
      expectAnswer(await c("set_password", ups(`alice-${t}`, "nowhere.test", "some pass")), 403, "refused");
      const missing: Params = [
        ["user", `alice-${t}`],
        ["server", "plain.test"],
      ];
      expectAnswer(await c("set_password", missing), 400, "bad_request: pass is required");
    });
  });

  describe("register", () => {
    it("201, then 409 for the same user; the new user logs in", async () => {
      expectAnswer(await c("register", ups(`newbie-${t}`, "plain.test", "fresh start")), 201, "");
      expectAnswer(await c("register", ups(`newbie-${t}`, "plain.test", "other pass")), 409, "exists");
      expectAnswer(await c("check_password", ups(`newbie-${t}`, "plain.test", "fresh start")), 200, "true");
    });

    it("6.x scram domain, a serialization: 201, the password works", async () => {
      const sent = multiSerialization("frank pass", 4096, HASHES);
      expectAnswer(await c("register", ups(`frank-${t}`, "scram6.test", sent)), 201, "");
      expectAnswer(await c("check_password", ups(`frank-${t}`, "scram6.test", "frank pass")), 200, "true");
      const got = expectFramed(await c("get_password", ups(`frank-${t}`, "scram6.test")), 200);
      expect(readMulti(got)).toEqual(readMulti(sent));
    });

    it("a malformed user part (@, space, /): 403, nothing stored", async () => {
      for (const node of [`bad@user-${t}`, `bad user-${t}`, `bad/user-${t}`]) {
        expectAnswer(await c("register", ups(node, "plain.test", "some pass")), 403, "refused");
        expect(await row("plain.test", node)).toBeUndefined();
      }
    });

    it("unknown domain: 403; empty pass: 403; missing pass: 400", async () => {
      expectAnswer(await c("register", ups(`newbie2-${t}`, "nowhere.test", "some pass")), 403, "refused");
      expectAnswer(await c("register", ups(`newbie2-${t}`, "plain.test", "")), 403, "refused");
      const missing: Params = [
        ["user", `newbie2-${t}`],
        ["server", "plain.test"],
      ];
      expectAnswer(await c("register", missing), 400, "bad_request: pass is required");
      expect(await row("plain.test", `newbie2-${t}`)).toBeUndefined();
    });
  });

  describe("remove_user and remove_user_validate", () => {
    it("remove_user: 200, then 404", async () => {
      expectAnswer(await c("remove_user", ups(`goner-${t}`, "plain.test")), 200, "");
      expectAnswer(await c("remove_user", ups(`goner-${t}`, "plain.test")), 404, "unknown_user");
      expectAnswer(await c("user_exists", ups(`goner-${t}`, "plain.test")), 200, "false");
    });

    it("remove_user_validate: wrong password 403, right 200, again 404", async () => {
      expectAnswer(
        await c("remove_user_validate", ups(`quitter-${t}`, "plain.test", "bye")),
        403,
        "bad_password",
      );
      expectAnswer(await c("user_exists", ups(`quitter-${t}`, "plain.test")), 200, "true");
      expectAnswer(await c("remove_user_validate", ups(`quitter-${t}`, "plain.test", "bye bye")), 200, "");
      expectAnswer(
        await c("remove_user_validate", ups(`quitter-${t}`, "plain.test", "bye bye")),
        404,
        "unknown_user",
      );
    });
  });

  describe("get_certs", () => {
    it("is not supported: 404", async () => {
      expectAnswer(await c("get_certs", ups(`alice-${t}`, "plain.test")), 404, "not_supported");
    });
  });

  describe("basic auth", () => {
    const params = () => ups(`alice-${t}`, "plain.test");
    it("missing, wrong password, wrong scheme: 401; right: 200", async () => {
      const missing = await c("user_exists", params(), { authorization: null });
      expectAnswer(missing, 401, "unauthorized");
      expect(missing.headers["www-authenticate"]).toMatch(/^Basic /);
      const wrong = `Basic ${Buffer.from("mongooseim:wrong").toString("base64")}`;
      expectAnswer(await c("user_exists", params(), { authorization: wrong }), 401, "unauthorized");
      const bearer = `Bearer ${Buffer.from(BASIC_AUTH).toString("base64")}`;
      expectAnswer(await c("user_exists", params(), { authorization: bearer }), 401, "unauthorized");
      expectAnswer(await c("user_exists", params(), { authorization: BASIC }), 200, "true");
    });
  });

  describe("guessing bounds (MongooseIM sends no client address)", () => {
    it("never locks anyone out: after many wrong passwords the right one passes, and get_password answers", async () => {
      const guess = async (node: string, domain: string) => {
        for (let i = 0; i < GUARD.delayAfterFailures + 3; i++) {
          expectAnswer(await c("check_password", ups(node, domain, `guess ${i}`)), 200, "false");
        }
      };
      await Promise.all([guess(`locked-${t}`, "plain.test"), guess(`guessed-${t}`, "scram6.test")]);
      expectAnswer(await c("check_password", ups(`locked-${t}`, "plain.test", "open sesame")), 200, "true");
      expectAnswer(
        await c("check_password", ups(`guessed-${t}`, "scram6.test", "guessed pass")),
        200,
        "true",
      );
      expectFramed(await c("get_password", ups(`guessed-${t}`, "scram6.test")), 200);
      expectAnswer(await c("check_password", ups(`bystander-${t}`, "plain.test", "not me")), 200, "true");
    });

    it("holds wrong answers back once a JID has had delayAfterFailures of them, up to maxDelayMs", async () => {
      const wrong = async (i: number) => {
        const started = performance.now();
        expectAnswer(
          await c("check_password", ups(`bystander-${t}`, "plain.test", `nope ${i}`)),
          200,
          "false",
        );
        return performance.now() - started;
      };
      for (let i = 0; i < GUARD.delayAfterFailures; i++) await wrong(i);
      // 250 ms, then 400 (the cap): lower bounds, which a slower machine only exceeds
      expect(await wrong(100)).toBeGreaterThanOrEqual(240);
      expect(await wrong(101)).toBeGreaterThanOrEqual(GUARD.maxDelayMs - 10);
      expectAnswer(await c("check_password", ups(`bystander-${t}`, "plain.test", "not me")), 200, "true");
    });
  });

  describe("success cache", () => {
    it("is dropped when the row changes in SQL (NOTIFY), so the old password fails soon after", async () => {
      const cached = async () =>
        sample(await metricsText(), "auth_checks_duration_seconds_count", {
          domain: "plain.test",
          method: "check_password",
          outcome: "cached",
        }) ?? 0;
      expectAnswer(await c("check_password", ups(`cached-${t}`, "plain.test", "cache me")), 200, "true");
      const before = await cached();
      expectAnswer(await c("check_password", ups(`cached-${t}`, "plain.test", "cache me")), 200, "true");
      expect(await cached()).toBe(before + 1); // answered from the cache

      await db.pool.query(
        "UPDATE web_users SET scram = NULL, token = 'other' WHERE domain = 'plain.test' AND node = $1",
        [`cached-${t}`],
      );
      const res = await eventually(
        () => c("check_password", ups(`cached-${t}`, "plain.test", "cache me")),
        (r) => r.body.toString() === "false",
      );
      expectAnswer(res, 200, "false");
      expectAnswer(await c("check_password", ups(`cached-${t}`, "plain.test", "other")), 200, "true");
    });
  });
});

describe("success cache and a password change during a check", () => {
  it("a check that began before set_password does not leave the old password cached", async () => {
    const v6 = { encoding: mongooseim6, method: "POST" } as const;
    // SCRAM data costly enough that a check takes ~200 ms (below backendTimeoutMs): a window to change the
    // password in while the check runs
    const started = Date.now();
    pbkdf2Sync("calibration", randomBytes(16), 100_000, 32, "sha256");
    // at most what a stored serialization may ask (1 000 000): a fast machine would otherwise calibrate above
    // it and the register below would be refused
    const iterations = Math.min(900_000, Math.round((100_000 * 200) / Math.max(1, Date.now() - started)));
    const slow = multiSerialization("race old", iterations, ["sha256"]);
    const fresh = multiSerialization("race new", 4096, ["sha256"]);
    expectAnswer(await call(v6, "register", ups("racer", "scram6.test", slow)), 201, "");

    const checking = call(v6, "check_password", ups("racer", "scram6.test", "race old"));
    await sleep(50); // the check has read the row and is deriving keys
    expectAnswer(await call(v6, "set_password", ups("racer", "scram6.test", fresh)), 200, "");
    expectAnswer(await checking, 200, "true"); // it read the password as it was
    await sleep(100); // the change's NOTIFY has arrived

    expectAnswer(await call(v6, "check_password", ups("racer", "scram6.test", "race old")), 200, "false");
    expectAnswer(await call(v6, "check_password", ups("racer", "scram6.test", "race new")), 200, "true");
  });
});

describe("routing", () => {
  const target = (method: string) => `${PREFIX}${method}?user=alice-p6&server=plain.test&pass=`;
  const headers = (): [string, string][] => [
    ["Host", "127.0.0.1"],
    ["Authorization", BASIC],
  ];

  it("an unknown method under the prefix: 404, GET and POST", async () => {
    for (const m of ["nope", "constructor", "__proto__", "toString", "Check_Password"]) {
      expectAnswer(
        await send({ method: "GET", target: target(m), headers: headers() }),
        404,
        "unknown_method",
      );
      expectAnswer(
        await call({ encoding: mongooseim6, method: "POST" }, m, ups("alice-p6", "plain.test")),
        404,
        "unknown_method",
      );
    }
    expectAnswer(await send({ method: "GET", target: PREFIX, headers: headers() }), 404, "unknown_method");
    expectAnswer(
      await send({ method: "GET", target: `${PREFIX}user_exists/more`, headers: headers() }),
      404,
      "unknown_method",
    );
  });

  it("PUT, DELETE, PATCH of a known method: 404", async () => {
    const body = Buffer.from("user=alice-p6&server=plain.test&pass=");
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const res = await send({
        method,
        target: `${PREFIX}user_exists`,
        headers: [...headers(), ["Content-Length", String(body.length)]],
        body,
      });
      expectAnswer(res, 404, "unknown_method");
    }
  });

  it("keep-alive: several calls on one connection, each framed by its Content-Length", async () => {
    const conn = await RawConnection.open(port);
    try {
      for (const [method, want] of [
        ["user_exists", "true"],
        ["check_password", "false"],
        ["get_password", "correct horse battery"],
      ] as const) {
        conn.write(requestBytes({ method: "GET", target: target(method), headers: headers() }));
        const res = await conn.read();
        expectAnswer(res, 200, want);
        expect(res.headers.connection ?? "keep-alive").toMatch(/keep-alive/i);
      }
    } finally {
      conn.close();
    }
  });
});

describe("body size", () => {
  it.each([mongooseim2, mongooseim6])(
    "a body over 16 KiB ($name): 400, never 413 or 5xx",
    async (encoding) => {
      const res = await call(
        { encoding, method: "POST" },
        "check_password",
        ups("alice-p6", "plain.test", "a".repeat(20_000)),
      );
      expectAnswer(res, 400, "bad_request: body over 16 KiB");
    },
  );

  it("a body just under 16 KiB is read (false: a password over 4 KiB is refused)", async () => {
    const params = ups("alice-p6", "plain.test", "a".repeat(16_000));
    expect(mongooseim6.encode(params).length).toBeLessThan(16 * 1024);
    expectAnswer(
      await call({ encoding: mongooseim6, method: "POST" }, "check_password", params),
      200,
      "false",
    );
  });
});

describe("Prosody mod_auth_http", () => {
  const get = { encoding: prosody, method: "GET" } as const;
  const post = { encoding: prosody, method: "POST" } as const;
  // Prosody's mistyped header, as it sends it
  const form = { contentType: "application/x/www-form-urlencoded" };

  beforeAll(async () => {
    await addUser(
      db.pool,
      { node: "prosody", domain: "plain.test" },
      { cleartext: "pr0sody päss" },
      domainConfig("plain.test"),
    );
  });

  it("check_password and user_exists by GET, fields in any order, lower-case hex, no pass for user_exists", async () => {
    const check: Params = [
      ["pass", "pr0sody päss"],
      ["user", "prosody"],
      ["server", "plain.test"],
    ];
    expect(prosody.encode(check).toString()).toBe("pass=pr0sody+p%c3%a4ss&user=prosody&server=plain%2etest");
    expectAnswer(await call(get, "check_password", check), 200, "true");
    const exists: Params = [
      ["server", "plain.test"],
      ["user", "prosody"],
    ];
    expectAnswer(await call(get, "user_exists", exists), 200, "true");
    expectAnswer(
      await call(get, "user_exists", [
        ["user", "nobody"],
        ["server", "plain.test"],
      ]),
      200,
      "false",
    );
  });

  it("set_password, register (201) and remove_user (no pass) by POST with Prosody's Content-Type", async () => {
    const set: Params = [
      ["server", "plain.test"],
      ["pass", "n3w pr0sody"],
      ["user", "prosody"],
    ];
    expectAnswer(await call(post, "set_password", set, form), 200, "");
    expectAnswer(
      await call(get, "check_password", [
        ["user", "prosody"],
        ["pass", "n3w pr0sody"],
        ["server", "plain.test"],
      ]),
      200,
      "true",
    );
    const reg: Params = [
      ["user", "prosody2"],
      ["pass", "another"],
      ["server", "plain.test"],
    ];
    expectAnswer(await call(post, "register", reg, form), 201, "");
    expectAnswer(
      await call(
        post,
        "remove_user",
        [
          ["user", "prosody2"],
          ["server", "plain.test"],
        ],
        form,
      ),
      200,
      "",
    );
    expectAnswer(
      await call(
        post,
        "remove_user",
        [
          ["user", "prosody2"],
          ["server", "plain.test"],
        ],
        form,
      ),
      404,
      "unknown_user",
    );
  });
});

describe("metrics and logs", () => {
  it("count decisions by domain, method and outcome on /metrics, with no password anywhere", async () => {
    const text = await metricsText();
    const count = (labels: Record<string, string>) =>
      sample(text, "auth_checks_duration_seconds_count", { service: "auth", ...labels });
    expect(count({ domain: "plain.test", method: "check_password", outcome: "ok" })).toBeGreaterThan(0);
    expect(count({ domain: "plain.test", method: "check_password", outcome: "no" })).toBeGreaterThan(0);
    expect(count({ domain: "broken.test", method: "check_password", outcome: "error" })).toBeGreaterThan(0);
    expect(
      count({ domain: "(unknown)", method: "check_password", outcome: "unknown_domain" }),
    ).toBeGreaterThan(0);

    const secrets = [
      "correct horse",
      SPECIAL,
      encodeURIComponent(SPECIAL),
      "umlaut user",
      "s3cret",
      "open sesame",
      "cache me",
      "carol's pass",
      "misio",
      "legacy pass",
      "beep boop",
      "pr0sody",
      BASIC_AUTH,
      Buffer.from(BASIC_AUTH).toString("base64"),
      MISIO.storedKey,
    ];
    const logs = logText();
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(text.includes(s), `metrics hold ${s}`).toBe(false);
      expect(logs.includes(s), `logs hold ${s}`).toBe(false);
    }
  });
});
