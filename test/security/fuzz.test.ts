import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { createAuthApp } from "../../services/auth/src/app.ts";
import { type AuthCore, createAuthCore } from "../../services/auth/src/core/auth-core.ts";
import { createHttpUtilityApp, createHttpUtilityInternalApp } from "../../services/http-utility/src/app.ts";
import { createMediaDeps, type MediaDeps } from "../../services/http-utility/src/attachments/media-deps.ts";
import { fakeMp4 } from "../../services/http-utility/src/attachments/test-fixtures.ts";
import { createPushDeps } from "../../services/http-utility/src/push/deps.ts";
import { createRegistrationDeps } from "../../services/http-utility/src/registration/deps.ts";
import { sha256 } from "../support/bytes.ts";
import { createTestDatabase, type TestDatabase } from "../support/database.ts";
import {
  deepJsonText,
  hostileString,
  type JsonSchema,
  jsonText,
  keyText,
  plausibleText,
  RAW_ESCAPES,
} from "../support/fuzz-arbitraries.ts";
import {
  type CapturedLog,
  capturingLogger,
  type FuzzAnswer,
  type FuzzClient,
  type FuzzRequest,
  fuzzClient,
} from "../support/fuzz-http.ts";

/**
 * Bad input never answers 5xx (docs/security.md "Bad input never answers 5xx"): a property-based fuzz
 * (fast-check) of every operation of http-utility's OpenAPI document (as the app serves it) and of
 * MongooseIM's HTTP auth contract on the auth service, with and without basic_auth, GET and POST, queries
 * encoded as 2.1.0, 6.x and not at all. Both apps run in-process on loopback against this file's database.
 *
 * Asserted for every answer: no 5xx; a 4xx of http-utility is `{ error: { code, message } }`; the auth
 * contract answers only the codes MongooseIM knows (200, 201, 400, 401, 403, 404, 409) and never
 * `internal_error`; nothing is logged at level error or above. The seed is fixed: a failure prints it with
 * the counterexample, and FUZZ_SEED=<seed> replays the run.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_214);
const BATCH = 8; // requests in flight at once
const RUNS = 1300; // × BATCH ≥ 10 000 requests
const TIME_LIMIT_MS = 75_000;
const ANSWER_TIMEOUT_MS = 15_000;

const ALICE = { node: "306900000001", domain: "oyo.test", password: "alice pw" };
// BOB only ever gets wrong passwords: the guard may lock him, ALICE's valid requests reach the handlers
const BOB = { node: "306900000002", domain: "oyo.test", password: "bob pw" };
// the auth contract's own user (set_password, remove_user and register may change him)
const CAROL = { node: "306900000003", domain: "mim.test", password: "carol pw" };
const MIM_BASIC_AUTH = "mongooseim:s3cret";
const KEYS = {
  push: "sk_fuzz_push_0123456789",
  broadcast: "sk_fuzz_broadcast_0123456789",
  "locations:read": "sk_fuzz_reader_0123456789",
};

/**
 * Failures known and not yet fixed (a 5xx; on the auth contract an internal error masked as a 400), each
 * matched narrowly: the request that causes it, its answer, and the error line it logs. With the fixed seed an
 * entry that matched nothing fails the test, so a stale exclusion cannot hide a new bug.
 */
interface KnownFailure {
  name: string;
  matches(r: FuzzRequest, a: FuzzAnswer): boolean;
  /** the error line it logs */
  logged(line: Record<string, unknown>): boolean;
}
// empty since the two this fuzz found were fixed (MongoosePush's answers to a JSON body in another charset,
// and to a device id that is not UTF-8: push/mongooseim/routes.ts)
const KNOWN_FAILURES: KnownFailure[] = [];

/** encodeURIComponent for any string: a lone surrogate goes out as U+FFFD (UTF-8 can carry no other). */
const percent = (s: string) =>
  [...Buffer.from(s, "utf8")]
    .map((b) =>
      /[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
    )
    .join("");

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const basic = (u: { node: string; domain: string }, password: string) =>
  `Basic ${b64(`${u.node}@${u.domain}:${password}`)}`;

let db: TestDatabase;
let dir: string;
let captured: CapturedLog;
let core: AuthCore;
let media: MediaDeps;
const servers: RunningServer[] = [];
let http: FuzzClient;
/** the internal listener: MongooseIM's message hook and the MongoosePush API */
let internal: FuzzClient;
let authBasic: FuzzClient;
let authOpen: FuzzClient;
// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document as served
let doc: any;
let png: Buffer;
let storedPicture = "";

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), "fuzz-media-"));
  captured = capturingLogger();
  const log = captured.log;
  const config: Config = loadConfig({
    env: {
      APP_ENV: "test",
      AUTH_BASIC_AUTH: MIM_BASIC_AUTH,
      FUZZ_XEP0363_S3_SECRET: "fuzz-s3-secret-0123456789",
      FUZZ_XEP0363_EXTERNAL_SECRET: "fuzz-external-secret-0123456789",
    },
    overrides: {
      apps: { OyoChat: { minimumVersion: { android: "1.10.2", ios: "2.0.0", default: "1.0" } } },
      domains: {
        "oyo.test": {
          scramIterations: 4096,
          registration: { enabled: true, countries: ["GR"], sms: { kind: "log", options: {} } },
        },
        "mim.test": { scramIterations: 4096 },
      },
      services: {
        httpUtility: {
          apiKeys: Object.fromEntries(
            Object.entries(KEYS).map(([scope, key]) => [
              scope.replace(":", "-"),
              { sha256: sha256(key), scopes: [scope] },
            ]),
          ),
        },
      },
      media: {
        storage: { kind: "fs", options: { root: path.join(dir, "store") } },
        tmpDir: path.join(dir, "scratch"),
        // XEP-0363 in the domain the generated paths name, so that their signature checks are reached
        xmppUpload: {
          domains: {
            "oyo.test": {
              s3: { accessKeyId: "AKIDFUZZ", secretAccessKey: { env: "FUZZ_XEP0363_S3_SECRET" } },
              external: { secret: { env: "FUZZ_XEP0363_EXTERNAL_SECRET" } },
            },
          },
        },
      },
    },
  });
  for (const u of [ALICE, BOB, CAROL]) {
    const domain = config.domains[u.domain];
    if (!domain) throw new Error(`the fuzz config lacks ${u.domain}`);
    await addUser(db.pool, u, { cleartext: u.password }, domain);
  }
  const metrics = createMetrics("auth");
  core = await createAuthCore({
    config,
    pool: db.pool,
    listener: db.listener,
    log,
    metrics: metrics.registry,
  });
  media = await createMediaDeps({ config, log, pool: db.pool });
  const push = await createPushDeps({ config, log, pool: db.pool }, { workers: false });
  const registration = createRegistrationDeps({ config, log, pool: db.pool });
  const app = createHttpUtilityApp({
    config,
    log,
    pool: db.pool,
    core,
    attachments: media,
    push,
    registration,
  });
  const internalApp = createHttpUtilityInternalApp({ config, log, pool: db.pool, push });
  const open: Config = {
    ...config,
    services: { ...config.services, auth: { ...config.services.auth, basicAuth: undefined } },
  };
  const listen = async (handler: Parameters<typeof startServer>[0], name: string, raw = false) => {
    const s = await startServer(handler, { name, host: "127.0.0.1", port: 0, rawRequestBytes: raw, log });
    servers.push(s);
    return s.port;
  };
  http = fuzzClient(await listen(app, "http-utility"), ANSWER_TIMEOUT_MS);
  internal = fuzzClient(await listen(internalApp, "http-utility-internal"), ANSWER_TIMEOUT_MS);
  authBasic = fuzzClient(
    await listen(createAuthApp({ config, log, pool: db.pool, core, metrics }), "auth", true),
    ANSWER_TIMEOUT_MS,
  );
  authOpen = fuzzClient(
    await listen(
      createAuthApp({ config: open, log, pool: db.pool, core, metrics: createMetrics("auth") }),
      "auth",
      true,
    ),
    ANSWER_TIMEOUT_MS,
  );

  const served = await http.send({
    method: "GET",
    path: "/api/docs/openapi.json",
    headers: [["x-forwarded-for", "192.0.2.1"]],
  });
  expect(served.status, JSON.stringify(served.headers)).toBe(200);
  doc = JSON.parse(served.body.toString("utf8"));
  png = await sharp({ create: { width: 16, height: 12, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
  const upload = multipart("/api/v1/attachments/pictures", basic(ALICE, ALICE.password), [
    { name: "attachments", filename: "a.png", type: "image/png", data: png },
  ]);
  const up = await http.send({ ...upload, headers: [...upload.headers, ["x-forwarded-for", "192.0.2.1"]] });
  storedPicture = JSON.parse(up.body.toString()).attachments?.[0]?.fileName ?? "";
  expect(storedPicture, up.body.toString()).not.toBe("");
  expect(captured.errors).toEqual([]);
}, 60_000);

afterAll(async () => {
  for (const c of [http, internal, authBasic, authOpen]) c?.close();
  for (const s of servers) await s.close(500);
  await core?.close();
  await media?.storage.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Requests to http-utility, one generator per operation of the served OpenAPI document.

interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Buffer;
}

const BOUNDARY = "fuzzfuzzBoundary7MA4YWxkTrZu0gW";

function multipart(
  target: string,
  auth: string | undefined,
  parts: Part[],
  type = `multipart/form-data; boundary=${BOUNDARY}`,
): FuzzRequest {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ""}`;
    const head = `--${BOUNDARY}\r\ncontent-disposition: ${disposition}\r\n${p.type !== undefined ? `content-type: ${p.type}\r\n` : ""}\r\n`;
    chunks.push(Buffer.from(head, "utf8"), p.data, Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  const headers: [string, string][] = [["content-type", type]];
  if (auth) headers.push(["authorization", auth]);
  return { method: "POST", path: target, headers, body: Buffer.concat(chunks) };
}

// biome-ignore lint/suspicious/noExplicitAny: parts of the OpenAPI document
const resolve = (s: any): JsonSchema =>
  s?.$ref ? doc.components.schemas[String(s.$ref).split("/").pop() as string] : s;

/** Values that get a request past the first check: the caller's own number, a known domain, a recent date. */
function plausibleByName(name: string, schema: JsonSchema | undefined): fc.Arbitrary<string> {
  const n = name.toLowerCase();
  if (["msisdn", "node", "user", "author", "receiver"].includes(n))
    return fc
      .constantFrom(ALICE.node, `+${ALICE.node}`, "306900000099", "+306900000099")
      .map((v) => JSON.stringify(v));
  if (n === "domain" || n === "server") return fc.constant(JSON.stringify(ALICE.domain));
  if (n === "date" || n === "from" || n === "to" || n === "before")
    return fc
      .integer({ min: 1, max: 10_000_000 })
      .map((ms) => JSON.stringify(new Date(Date.now() - ms).toISOString()));
  if (n === "appname") return fc.constant(JSON.stringify("OyoChat"));
  if (n === "filename")
    return fc
      .constantFrom(storedPicture, ALICE.node, `${ALICE.node}@${ALICE.domain}`)
      .map((v) => JSON.stringify(v));
  return plausibleText(schema, resolve);
}

/** A JSON text as the string a query or form carries. */
const asText = (json: string): string => {
  const v = JSON.parse(json) as unknown;
  return typeof v === "string" ? v : JSON.stringify(v);
};

/** A value in a path or query: plausible, hostile and percent-encoded, raw escapes, or hostile and unencoded. */
const urlValue = (name: string, schema: JsonSchema | undefined): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: plausibleByName(name, schema).map((j) => percent(asText(j))) },
    { weight: 4, arbitrary: hostileString.map(percent) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.constantFrom(...RAW_ESCAPES), { minLength: 1, maxLength: 4 })
        .map((xs) => xs.join("")),
    },
    { weight: 1, arbitrary: hostileString }, // unencoded: node:http will not send it, the raw socket does
  );

const AUTHS: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(basic(ALICE, ALICE.password)) },
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom(...Object.values(KEYS)).map((k) => `Bearer ${k}`) },
  { weight: 1, arbitrary: hostileString.map((p) => basic(BOB, p)) },
  { weight: 1, arbitrary: hostileString.map((u) => `Basic ${b64(`${u}@${ALICE.domain}:${u}`)}`) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constantFrom(
        "Basic",
        "Basic ",
        "Basic !!!!",
        `Basic ${b64("nocolon")}`,
        `Basic ${b64(":")}`,
        "Bearer",
        "Digest x",
      ),
      hostileString.map((s) => `Bearer ${s}`),
      hostileString.map((s) => `Basic ${s}`),
    ),
  },
);

const CONTENT_TYPES = [
  "application/json",
  "application/x-www-form-urlencoded",
  `multipart/form-data; boundary=${BOUNDARY}`,
  "multipart/form-data",
  "text/plain",
  "application/json; charset=utf-16",
  "application/json; charset=latin1",
  "application/json; charset=nonsense",
  "application/octet-stream",
  "image/png",
  "",
  "application/json\r\nx-injected: 1",
  "*/*",
];

/** The content type of the body as generated (else another, or none). */
const KEEP = "(the body's own)";

const xForwardedFor: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.ipV4() },
  { weight: 2, arbitrary: fc.ipV6() },
  { weight: 1, arbitrary: hostileString },
);

// biome-ignore lint/suspicious/noExplicitAny: an operation of the OpenAPI document
function operationRequest(method: string, template: string, op: any): fc.Arbitrary<FuzzRequest> {
  // biome-ignore lint/suspicious/noExplicitAny: OpenAPI parameters
  const params: any[] = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === "path");
  const queryParams = params.filter((p) => p.in === "query");
  const content: Record<string, { schema: JsonSchema }> = op.requestBody?.content ?? {};
  const schema = resolve(
    content["application/json"]?.schema ?? content["application/x-www-form-urlencoded"]?.schema,
  );
  const objectSchema = resolve(schema?.anyOf?.[0] ?? schema);
  const props = Object.entries<JsonSchema>(objectSchema?.properties ?? {});

  const pathArb = fc
    .tuple(...pathParams.map((p) => urlValue(p.name, p.schema)))
    .map((values) => pathParams.reduce((t, p, i) => t.replace(`{${p.name}}`, values[i] ?? ""), template));
  const queryArb = fc
    .array(
      fc.tuple(
        fc.oneof(
          {
            weight: 3,
            arbitrary: queryParams.length
              ? fc.constantFrom(...queryParams.map((p) => String(p.name)))
              : keyText,
          },
          { weight: 1, arbitrary: keyText.map(percent) },
        ),
        fc.oneof(
          ...(queryParams.length
            ? [fc.constantFrom(...queryParams).chain((p) => urlValue(p.name, p.schema))]
            : []),
          urlValue("", undefined),
        ),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join("&")}` : ""));

  // a JSON object of the documented fields, each plausible or hostile, and maybe keys of its own
  const fieldsText = fc
    .tuple(
      ...props.map(([k, s]) =>
        fc.option(
          fc
            .oneof({ weight: 3, arbitrary: plausibleByName(k, s) }, { weight: 1, arbitrary: jsonText })
            .map((v) => [k, v] as const),
          { freq: 5 },
        ),
      ),
      fc.array(fc.tuple(keyText, jsonText), { maxLength: 2 }),
    )
    .map((xs) => {
      // the generated tuple is fast-check's (it replays and shrinks it): read it, never change it
      const extra = xs[xs.length - 1] as [string, string][];
      const fields = (xs.slice(0, -1) as ([string, string] | null)[]).filter((x) => x !== null);
      return [...fields, ...extra];
    });
  const json = (fields: [string, string][]) =>
    `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
  const form = (fields: [string, string][]) =>
    new URLSearchParams(fields.map(([k, v]): [string, string] => [k, asText(v)])).toString();
  const part = fc.record({
    name: fc.oneof(
      { weight: 4, arbitrary: fc.constant("attachments") },
      { weight: 1, arbitrary: hostileString },
    ),
    filename: fc.option(fc.oneof(fc.constantFrom("a.png", "v.mp4", "x.svg", "../../x.png"), hostileString), {
      nil: undefined,
    }),
    type: fc.option(
      fc.constantFrom("image/png", "video/mp4", "image/svg+xml", "text/html", "", "image/png\r\nx: y"),
      { nil: undefined },
    ),
    data: fc.oneof(
      fc.constant(png),
      fc.integer({ min: 0, max: png.length - 1 }).map((n) => png.subarray(0, n)),
      fc.integer({ min: 0, max: 20_000 }).map((n) => fakeMp4(n)),
      fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    ),
  });

  const bodyArb: fc.Arbitrary<{ type: string; body: Buffer } | undefined> = fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    {
      weight: 4,
      arbitrary: fieldsText.map((f) => ({ type: "application/json", body: Buffer.from(json(f)) })),
    },
    {
      weight: 2,
      arbitrary: fieldsText.map((f) => ({
        type: "application/x-www-form-urlencoded",
        body: Buffer.from(form(f)),
      })),
    },
    {
      weight: 2,
      arbitrary: fc.array(part, { maxLength: 3 }).map((parts) => ({
        type: `multipart/form-data; boundary=${BOUNDARY}`,
        body: multipart("/", undefined, parts).body as Buffer,
      })),
    },
    { weight: 1, arbitrary: jsonText.map((t) => ({ type: "application/json", body: Buffer.from(t) })) },
    { weight: 1, arbitrary: deepJsonText.map((t) => ({ type: "application/json", body: Buffer.from(t) })) },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 3000 })
        .map((a) => ({ type: "application/octet-stream", body: Buffer.from(a) })),
    },
  );

  return fc
    .record({
      method: fc.oneof(
        { weight: 12, arbitrary: fc.constant(method.toUpperCase()) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            "GET",
            "POST",
            "PUT",
            "DELETE",
            "PATCH",
            "OPTIONS",
            // not HEAD: node's client cannot read the server's parser refusal (a body) as a HEAD answer
            "PROPFIND",
            "get",
          ),
        },
      ),
      path: pathArb,
      query: queryArb,
      auth: AUTHS,
      body: bodyArb,
      // the declared type: the body's own, another, or none
      type: fc.oneof(
        { weight: 4, arbitrary: fc.constant(KEEP) },
        { weight: 1, arbitrary: fc.option(fc.constantFrom(...CONTENT_TYPES)) },
      ) as fc.Arbitrary<string | null>,
      // loopback is a trusted proxy: a request from it without X-Forwarded-For is refused before any route
      xff: fc.option(xForwardedFor, { freq: 20 }) as fc.Arbitrary<string | null>,
    })
    .map((r) => {
      const headers: [string, string][] = [];
      if (r.auth !== undefined) headers.push(["authorization", r.auth]);
      const type = r.type === KEEP ? r.body?.type : r.type;
      if (type) headers.push(["content-type", type]);
      if (r.xff !== null) headers.push(["x-forwarded-for", r.xff]);
      return { method: r.method, path: r.path + r.query, headers, body: r.body?.body };
    });
}

// ---------------------------------------------------------------------------------------------------------
// Requests to the auth contract (docs/auth.md): MongooseIM's method names, its parameters as 2.1.0 and 6.x
// encode them, or as no one encodes them.

const CONTRACT_METHODS = [
  "check_password",
  "get_password",
  "user_exists",
  "set_password",
  "register",
  "remove_user",
  "remove_user_validate",
  "get_certs",
];
// MongooseIM 2.1.0: http_uri:encode escapes its reserved set and sends other bytes (UTF-8 included) raw;
// control bytes are escaped here too, else the request line itself breaks (covered by the raw encoding)
const RESERVED_2_1_0 = new Set(Buffer.from(";:@&=+$,/?#[]<>\"{}|\\'^% "));
const encode210 = (v: string) =>
  Buffer.from(
    [...Buffer.from(v, "utf8")]
      .map((b) =>
        RESERVED_2_1_0.has(b) || b < 0x21 || b === 0x7f
          ? `%${b.toString(16).toUpperCase().padStart(2, "0")}`
          : String.fromCharCode(b),
      )
      .join(""),
    "latin1",
  ).toString("utf8");

const contractRequest: fc.Arbitrary<FuzzRequest & { open: boolean }> = fc
  .record({
    open: fc.boolean(),
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom("GET", "POST") },
      { weight: 1, arbitrary: fc.constantFrom("PUT", "DELETE", "OPTIONS") },
    ),
    name: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...CONTRACT_METHODS) },
      { weight: 1, arbitrary: hostileString.map(percent) },
    ),
    user: fc.option(
      fc.oneof({ weight: 2, arbitrary: fc.constant(CAROL.node) }, { weight: 3, arbitrary: hostileString }),
      { freq: 8 },
    ),
    server: fc.option(
      fc.oneof({ weight: 3, arbitrary: fc.constant(CAROL.domain) }, { weight: 1, arbitrary: hostileString }),
      { freq: 8 },
    ),
    pass: fc.option(fc.oneof(fc.constant(CAROL.password), hostileString), { freq: 4 }),
    extra: fc.array(fc.tuple(keyText, hostileString), { maxLength: 2 }),
    encoding: fc.constantFrom("2.1.0", "6.x", "raw"),
    inBody: fc.boolean(),
    contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { freq: 3 }),
    auth: fc.oneof(
      { weight: 4, arbitrary: fc.constant(`Basic ${b64(MIM_BASIC_AUTH)}`) },
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: hostileString.map((s) => `Basic ${b64(`mongooseim:${s}`)}`) },
      { weight: 1, arbitrary: hostileString.map((s) => `Basic ${s}`) },
    ),
    oversize: fc.option(fc.integer({ min: 16 * 1024 - 64, max: 20 * 1024 }), { freq: 30 }),
  })
  .map((r) => {
    const pairs: [string, string][] = [];
    if (r.user !== null) pairs.push(["user", r.user]);
    if (r.server !== null) pairs.push(["server", r.server]);
    if (r.pass !== null) pairs.push(["pass", r.pass]);
    pairs.push(...r.extra);
    let params =
      r.encoding === "6.x"
        ? new URLSearchParams(pairs).toString()
        : pairs
            .map(([k, v]) => (r.encoding === "raw" ? `${k}=${v}` : `${encode210(k)}=${encode210(v)}`))
            .join("&");
    const inBody = r.inBody && r.method === "POST";
    // over the contract's 16 KiB body limit; only in a body: a query that long is over node's header limit
    if (r.oversize !== null && inBody) params += `&pad=${"p".repeat(r.oversize)}`;
    const headers: [string, string][] = [];
    if (r.auth !== undefined) headers.push(["authorization", r.auth]);
    if (r.contentType !== null) headers.push(["content-type", r.contentType]);
    return {
      open: r.open,
      method: r.method,
      path: `/authorize/${r.name}${inBody || params === "" ? "" : `?${params}`}`,
      headers,
      body: inBody ? Buffer.from(params, "utf8") : undefined,
    };
  });

// ---------------------------------------------------------------------------------------------------------
// The contract every answer keeps.

const MONGOOSEIM_STATUSES = new Set([200, 201, 400, 401, 403, 404, 409]);

/**
 * node's HTTP parser refusing what it cannot read (bytes outside HTTP's grammar, headers over its 16 KiB), before
 * any app code: the common server's `clientError` answer (services/common/src/http/server.ts), a bare
 * `400 bad_request` that closes the connection.
 */
const parserRefusal = (a: FuzzAnswer) =>
  a.status === 400 &&
  a.headers.connection === "close" &&
  (a.body.length === 0 || a.body.toString() === "bad_request");

function jsonErrorProblem(r: FuzzRequest, a: FuzzAnswer): string | undefined {
  if (a.status >= 500) return `a ${a.status}`;
  if (a.status < 400 || parserRefusal(a) || r.method === "HEAD") return undefined;
  try {
    if (r.method === "POST" && /^\/v[23]\/notification\/[^/?]+(\?|$)/.test(r.path)) {
      // the MongoosePush API's route answers as MongoosePush does: { "reason": "…" }
      const push = JSON.parse(a.body.toString("utf8")) as { reason?: unknown };
      return typeof push.reason === "string" ? undefined : "a MongoosePush 4xx without { reason }";
    }
    const body = JSON.parse(a.body.toString("utf8")) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code !== "string" || typeof body.error.message !== "string" || !body.error.message)
      return "a 4xx without { error: { code, message } }";
    if (!/^application\/json/.test(a.headers["content-type"] ?? ""))
      return "a JSON error without its content type";
  } catch {
    return "a 4xx whose body is not JSON";
  }
  return undefined;
}

function contractProblem(r: FuzzRequest, a: FuzzAnswer): string | undefined {
  if (!r.path.startsWith("/authorize/")) return jsonErrorProblem(r, a); // the common app: /healthz, 404s
  if (parserRefusal(a)) return undefined;
  const body = a.body.toString("utf8");
  if (!MONGOOSEIM_STATUSES.has(a.status)) return `status ${a.status}, which MongooseIM does not know`;
  if (body.includes("internal_error")) return "an internal error, masked as a 400";
  if (a.status === 400 && !body.startsWith("bad_request")) return "a 400 that is not bad_request";
  if (r.method !== "HEAD" && !/^text\/plain/.test(a.headers["content-type"] ?? ""))
    return "an answer that is not text/plain";
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------

/** The operations of the document that the internal listener serves (app.ts createHttpUtilityInternalApp). */
const isInternal = (p: string) => /^\/(api\/v1\/mongooseim\/|v[23]\/notification\/)/.test(p);

type Target =
  | { kind: "http"; request: FuzzRequest }
  | { kind: "auth"; request: FuzzRequest & { open: boolean } };

const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}… (${s.length} characters)` : s);
const describeRequest = (r: FuzzRequest) =>
  JSON.stringify({
    ...r,
    path: clip(r.path),
    headers: r.headers.map(([k, v]) => [k, clip(v)]),
    body:
      r.body &&
      (r.body.length > 600
        ? `${r.body.subarray(0, 600).toString("latin1")}… (${r.body.length} bytes)`
        : r.body.toString("latin1")),
  });

/** A counterexample printed as `describeRequest` writes it, not as megabytes of Buffer.from([…]). */
const printable = <R extends FuzzRequest>(r: R): R =>
  Object.defineProperty(r, fc.toStringMethod, { value: () => describeRequest(r), enumerable: false });

describe("bad input never answers 5xx", () => {
  // about 40 s, and must be: the count of requests (10 000, issue 14) is the point, 8 in flight at a time
  it("holds for 10 000 generated requests to every http-utility operation and the auth contract", async () => {
    const operations: fc.Arbitrary<FuzzRequest>[] = [];
    for (const [template, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const [method, op] of Object.entries(item))
        operations.push(operationRequest(method, template, op));
    }
    expect(operations.length).toBeGreaterThanOrEqual(30);
    const target: fc.Arbitrary<Target> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc
          .oneof(...operations)
          .map((request) => ({ kind: "http" as const, request: printable(request) })),
      },
      {
        weight: 3,
        arbitrary: contractRequest.map((request) => ({ kind: "auth" as const, request: printable(request) })),
      },
    );

    let sent = 0;
    let runs = 0;
    const statuses = new Map<string, number>();
    const excluded = new Map<string, number>();
    const property = fc.asyncProperty(
      fc.array(target, { minLength: BATCH, maxLength: BATCH }),
      async (batch) => {
        runs++;
        const logged = captured.errors.length;
        const seen = new Set<KnownFailure>(); // the known failures this batch hit: their log lines are expected
        const answers = await Promise.all(
          batch.map(async (t, i) => {
            const r = {
              ...t.request,
              headers: [...t.request.headers, ["x-request-id", `fuzz-${runs}-${i}`] as [string, string]],
            };
            const client =
              t.kind === "auth"
                ? t.request.open
                  ? authOpen
                  : authBasic
                : isInternal(r.path)
                  ? internal
                  : http;
            const a = await client.send(r).catch((err: Error) => {
              throw new Error(`seed ${SEED}: ${err.message}: ${describeRequest(r)}`);
            });
            sent++;
            const key = `${t.kind} ${a.status}`;
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
            const problem = t.kind === "http" ? jsonErrorProblem(r, a) : contractProblem(r, a);
            const known = problem ? KNOWN_FAILURES.find((k) => k.matches(r, a)) : undefined;
            if (known) {
              excluded.set(known.name, (excluded.get(known.name) ?? 0) + 1);
              seen.add(known);
              return undefined;
            }
            return (
              problem &&
              `${problem}: ${describeRequest(r)} answered ${a.status} ${a.body.subarray(0, 300).toString("utf8")}`
            );
          }),
        );
        const problems = answers.filter((p) => p !== undefined);
        const errors = captured.errors
          .slice(logged)
          .filter((line) => ![...seen].some((k) => k.logged(line)))
          .map((e) => JSON.stringify(e).slice(0, 2000));
        if (problems.length > 0 || errors.length > 0) {
          throw new Error(`seed ${SEED}:\n${[...problems, ...errors.map((e) => `logged: ${e}`)].join("\n")}`);
        }
      },
    );
    const started = Date.now();
    await fc.assert(property, {
      seed: SEED,
      numRuns: RUNS,
      interruptAfterTimeLimit: TIME_LIMIT_MS,
      markInterruptAsFailure: true,
      // no shrinking: a batch of real requests per step makes it take minutes, and the failure message
      // already names the one request that failed; seed and path replay the run
      endOnFailure: true,
    });
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `fuzz: seed ${SEED}, ${sent} requests in ${seconds.toFixed(1)} s; answers ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; excluded ${JSON.stringify(Object.fromEntries(excluded))}`,
    );
    expect(sent).toBeGreaterThanOrEqual(10_000);
    // with the fixed seed, an exclusion that matched nothing is stale: remove it
    if (process.env.FUZZ_SEED === undefined) {
      expect(KNOWN_FAILURES.map((k) => k.name).filter((n) => !excluded.has(n))).toEqual([]);
    }
  }, 150_000);
});
