import express, { type Express, Router } from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import { API_SCOPES, type ApiScope } from "#common/config/schema.ts";
import { defineRoute, routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import pkg from "../../../../package.json" with { type: "json" };
import { sha256 } from "../../../../test/support/bytes.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { createHttpUtilityApp, createHttpUtilityInternalApp } from "../app.ts";
import { appVersionRoutes } from "../app-version/routes.ts";
import { createMediaDeps } from "../attachments/media-deps.ts";
import { attachmentsRoutes } from "../attachments/routes.ts";
import { type CallerPolicy, caller, createCallers } from "../callers.ts";
import { errors } from "../errors.ts";
import { locationsRoutes } from "../locations/routes.ts";
import { createPushDeps } from "../push/deps.ts";
import { deviceRoutes } from "../push/devices/routes.ts";
import { mongooseImRoutes } from "../push/mongooseim/routes.ts";
import { sendRoutes } from "../push/send/routes.ts";
import { createRegistrationDeps } from "../registration/deps.ts";
import { registrationRoutes } from "../registration/routes.ts";
import { GROUP_NAMES, mergePaths, type OpenApiDocument, type RouteGroup } from "./document.ts";

/**
 * The OpenAPI document against the app it describes: every route of the Express app is documented, every
 * documented operation has a route that answers it, each operation says who may call it as the app decides
 * it (asked without credentials, with a key lacking the scope, with the right one), every route definition
 * the app mounts is there with the codes of its catalogue errors, and the document holds together as
 * OpenAPI 3.1 (every $ref resolves, every operation has answers…).
 */

// ---------------------------------------------------------------------------------------------------------
// The routes of an Express 5 app, read from its router stack (router 2.x: `layer.rawPath` is the path a
// layer was added with, `layer.route` a route, `layer.handle.stack` a nested router).

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean>; stack: Layer[] };
  handle: unknown;
}

interface AppRoute {
  method: string;
  /** in OpenAPI form: `/api/v1/locations/{msisdn}` */
  path: string;
}

const isRouter = (h: unknown): h is { stack: Layer[] } =>
  typeof h === "function" && Array.isArray((h as { stack?: unknown }).stack);

/** Every concrete path an Express 5 path stands for (`{…}` is an optional part), in OpenAPI form. */
function openApiPaths(expressPath: unknown): string[] {
  if (Array.isArray(expressPath)) return expressPath.flatMap(openApiPaths);
  if (typeof expressPath !== "string") {
    throw new Error(`a route path that is not a string (${String(expressPath)}): describe it by hand`);
  }
  const optional = /\{([^{}]*)\}/.exec(expressPath);
  if (optional) {
    const [whole, inner] = optional as unknown as [string, string];
    const at = optional.index;
    return [
      ...openApiPaths(expressPath.slice(0, at) + inner + expressPath.slice(at + whole.length)),
      ...openApiPaths(expressPath.slice(0, at) + expressPath.slice(at + whole.length)),
    ];
  }
  return [expressPath.replace(/[:*]([A-Za-z_$][\w$]*)/g, "{$1}")];
}

function joinPath(prefix: string, rest: string): string {
  const joined = `${prefix}/${rest}`.replace(/\/+/g, "/");
  return joined.length > 1 ? joined.replace(/\/$/, "") : joined;
}

function appRoutes(app: Express): AppRoute[] {
  const routes: AppRoute[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (!("rawPath" in layer)) {
        throw new Error("router layers carry no rawPath: Express's router changed, update appRoutes()");
      }
      if (layer.route) {
        for (const path of openApiPaths(layer.route.path)) {
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (on) routes.push({ method, path: joinPath(prefix, path) });
          }
        }
      } else if (isRouter(layer.handle)) {
        for (const path of openApiPaths(layer.rawPath)) walk(layer.handle.stack, joinPath(prefix, path));
      } else if (layer.rawPath === "/" || layer.rawPath === undefined) {
        // middleware for every path below (body parsers, a router-wide caller check): no route of its own
      } else if (typeof layer.handle === "function" && layer.handle.length === 4) {
        // an error handler (err, req, res, next) answers no request of its own, only the errors of routes'
        // (MongoosePush's words for a device id its route could not decode)
      } else {
        throw new Error(
          `middleware mounted at ${joinPath(prefix, String(layer.rawPath))} answers requests no route lists: mount it on a route, or teach appRoutes() about it`,
        );
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "/");
  return routes;
}

/** Routes that are not the public API: health and metrics (common/src/http/app-base.ts), the docs themselves. */
const OPERATIONAL = /^(get \/healthz|get \/readyz|get \/metrics|\w+ \/api\/docs(\/.*)?)$/;

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function operations(doc: OpenApiDocument): { method: string; path: string; op: Json }[] {
  return Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((m) => isObject((item as Json)[m])).map((method) => ({
      method,
      path,
      op: (item as Json)[method] as Json,
    })),
  );
}

// ---------------------------------------------------------------------------------------------------------
// OpenAPI 3.1 structure (https://spec.openapis.org/oas/v3.1.0): what a generator or a hand-written group
// could get wrong. Not a full validator: @apidevtools/swagger-parser would be one (see docs/api.md).

function openApiProblems(doc: Json): string[] {
  const problems: string[] = [];
  const resolve = (ref: string): unknown => {
    if (!ref.startsWith("#/")) return undefined;
    let node: unknown = doc;
    for (const raw of ref.slice(2).split("/")) {
      const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
      node = isObject(node) || Array.isArray(node) ? (node as Json)[key] : undefined;
    }
    return node;
  };
  const deref = (v: unknown): unknown =>
    isObject(v) && typeof v.$ref === "string" ? deref(resolve(v.$ref)) : v;

  // every $ref, anywhere, points into this document at something that exists
  const visit = (v: unknown, where: string) => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, `${where}/${i}`);
    } else if (isObject(v)) {
      if (typeof v.$ref === "string" && resolve(v.$ref) === undefined) {
        problems.push(`${where}: $ref ${v.$ref} does not resolve`);
      }
      for (const [k, x] of Object.entries(v))
        visit(x, `${where}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`);
    } else if (v === undefined) problems.push(`${where}: undefined (not JSON)`);
  };
  visit(doc, "#");

  if (doc.openapi !== "3.1.0") problems.push(`openapi is ${String(doc.openapi)}, not 3.1.0`);
  const info = doc.info as Json | undefined;
  if (typeof info?.title !== "string" || typeof info?.version !== "string") {
    problems.push("info needs a title and a version");
  }
  const schemes = ((doc.components as Json | undefined)?.securitySchemes ?? {}) as Json;
  for (const [name, s] of Object.entries(schemes)) {
    const scheme = deref(s) as Json;
    if (!["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"].includes(String(scheme?.type))) {
      problems.push(`securityScheme ${name}: unknown type ${String(scheme?.type)}`);
    }
    if (scheme?.type === "http" && typeof scheme.scheme !== "string") {
      problems.push(`securityScheme ${name}: http needs a scheme`);
    }
  }
  if (!isObject(doc.paths)) problems.push("no paths");
  const operationIds = new Set<string>();
  for (const [path, rawItem] of Object.entries((doc.paths ?? {}) as Json)) {
    const item = deref(rawItem) as Json;
    if (!path.startsWith("/")) problems.push(`path ${path} does not start with /`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string);
    const ops = METHODS.filter((m) => item[m] !== undefined);
    if (ops.length === 0) problems.push(`${path}: no operation`);
    for (const method of ops) {
      const op = item[method] as Json;
      const where = `${method.toUpperCase()} ${path}`;
      const params = [...((item.parameters as unknown[]) ?? []), ...((op.parameters as unknown[]) ?? [])].map(
        (p) => deref(p) as Json,
      );
      const seen = new Set<string>();
      for (const p of params) {
        if (typeof p?.name !== "string" || !["query", "header", "path", "cookie"].includes(String(p?.in))) {
          problems.push(`${where}: a parameter without a name or a valid "in"`);
          continue;
        }
        const key = `${p.in}:${p.name}`;
        if (seen.has(key)) problems.push(`${where}: parameter ${key} twice`);
        seen.add(key);
        if (p.schema === undefined && p.content === undefined)
          problems.push(`${where}: ${key} has no schema`);
        if (p.in === "path") {
          if (p.required !== true) problems.push(`${where}: path parameter ${p.name} must be required`);
          if (!templated.includes(p.name))
            problems.push(`${where}: path parameter ${p.name} is not in the path`);
        }
      }
      for (const name of templated) {
        if (!seen.has(`path:${name}`))
          problems.push(`${where}: {${name}} is not described as a path parameter`);
      }
      if (typeof op.operationId === "string") {
        if (operationIds.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} twice`);
        operationIds.add(op.operationId);
      }
      const body = deref(op.requestBody) as Json | undefined;
      if (body && (!isObject(body.content) || Object.keys(body.content).length === 0)) {
        problems.push(`${where}: a requestBody without content`);
      }
      const responses = op.responses;
      if (!isObject(responses) || Object.keys(responses).length === 0) {
        problems.push(`${where}: no responses`);
        continue;
      }
      for (const [status, r] of Object.entries(responses)) {
        if (!/^([1-5]XX|[1-5]\d\d|default)$/.test(status)) problems.push(`${where}: response key ${status}`);
        const response = deref(r) as Json | undefined;
        if (typeof response?.description !== "string") {
          problems.push(`${where}: response ${status} has no description`);
        }
        for (const [type, media] of Object.entries((response?.content ?? {}) as Json)) {
          if (!isObject(media) || media.schema === undefined) {
            problems.push(`${where}: response ${status} ${type} has no schema`);
          }
        }
      }
      for (const requirement of (op.security ?? doc.security ?? []) as Json[]) {
        for (const [name, scopes] of Object.entries(requirement)) {
          if (!(name in schemes)) problems.push(`${where}: security scheme ${name} is not defined`);
          if (!Array.isArray(scopes)) problems.push(`${where}: security ${name} needs an array`);
        }
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------

describe("appRoutes / openApiPaths (the walker the coverage test relies on)", () => {
  it("reads routes with their mount paths, parameters and optional parts, mounted by hand or defined", () => {
    const callers = createCallers({
      core: { checkPassword: async () => false } as unknown as AuthCore,
      apiKeys: {},
    });
    const pass: express.RequestHandler = (_req, _res, next) => next();
    const app = express();
    app.get("/healthz", (_req, res) => res.end());
    const inner = Router();
    inner.get("/", (_req, res) => res.end());
    inner.post("/:id/items{/:item}", pass, (_req, res) => res.end());
    const guarded = Router();
    guarded.use(pass);
    guarded.route("/send").post((_req, res) => res.end());
    const api = Router();
    api.use(express.json());
    api.use("/things", inner);
    api.use(["/guarded", "/alias"], guarded);
    const defined = defineRoute({
      method: "get",
      path: "/api/v1/defined/{name}",
      summary: "s",
      caller: caller.public,
      request: { params: z.object({ name: z.string() }) },
      responses: { 200: { description: "ok" } },
      handler: ({ res }) => res.end(),
    });
    api.use(routesRouter([defined], { base: "/api/v1", resolveCaller: callers.resolve }));
    app.use("/api/v1", api);

    expect(appRoutes(app)).toEqual([
      { method: "get", path: "/healthz" },
      { method: "get", path: "/api/v1/things" },
      { method: "post", path: "/api/v1/things/{id}/items/{item}" },
      { method: "post", path: "/api/v1/things/{id}/items" },
      { method: "post", path: "/api/v1/guarded/send" },
      { method: "post", path: "/api/v1/alias/send" },
      { method: "get", path: "/api/v1/defined/{name}" },
    ]);

    const withStatic = express();
    withStatic.use("/files", express.static("/nonexistent"));
    expect(() => appRoutes(withStatic)).toThrow(/middleware mounted at \/files/);
  });
});

describe("openApiProblems (the structural check)", () => {
  it("finds what is broken in a broken document", () => {
    const broken = {
      openapi: "3.0.3",
      info: { title: "x" },
      components: { securitySchemes: { basic: { type: "http" } } },
      paths: {
        "/a/{id}": {
          get: {
            parameters: [{ name: "other", in: "path", schema: { type: "string" } }],
            responses: { "200": { content: { "application/json": {} } }, "2xx": { description: "x" } },
            security: [{ missing: [] }],
          },
        },
        "/b": {
          post: { responses: {} },
          put: { responses: { "200": { $ref: "#/components/responses/Nope" } } },
        },
      },
    };
    expect(openApiProblems(broken)).toEqual([
      "#/paths/~1b/put/responses/200: $ref #/components/responses/Nope does not resolve",
      "openapi is 3.0.3, not 3.1.0",
      "info needs a title and a version",
      "securityScheme basic: http needs a scheme",
      "GET /a/{id}: path parameter other must be required",
      "GET /a/{id}: path parameter other is not in the path",
      "GET /a/{id}: {id} is not described as a path parameter",
      "GET /a/{id}: response 200 has no description",
      "GET /a/{id}: response 200 application/json has no schema",
      "GET /a/{id}: response key 2xx",
      "GET /a/{id}: security scheme missing is not defined",
      "PUT /b: response 200 has no description",
      "POST /b: no responses",
    ]);
  });
});

describe("mergePaths", () => {
  const route = (method: "get" | "post", path: string, policy = caller.public as CallerPolicy) =>
    defineRoute({
      method,
      path,
      summary: `${method} ${path}`,
      caller: policy,
      responses: { 200: { description: "ok" } },
      handler: () => {},
    });

  it("tags each operation with its group, adds the caller's answers, refuses a path described twice", () => {
    const merged = mergePaths([
      { name: "one", description: "", routes: [route("get", "/api/v1/a")] },
      { name: "two", description: "", routes: [route("post", "/api/v1/a", caller.app)] },
    ]);
    expect(merged["/api/v1/a"]?.get?.tags).toEqual(["one"]);
    expect(Object.keys(merged["/api/v1/a"]?.get?.responses ?? {})).toEqual(["200", "default"]);
    // an app caller: bad credentials, a disabled account (403), a failure budget used, the auth core away, and
    // an app version that is malformed or below its minimum (426)
    expect(Object.keys(merged["/api/v1/a"]?.post?.responses ?? {})).toEqual([
      "200",
      "400",
      "401",
      "403",
      "426",
      "429",
      "503",
      "default",
    ]);
    expect(() =>
      mergePaths([
        { name: "one", description: "", routes: [route("get", "/api/v1/a")] },
        { name: "two", description: "", routes: [route("get", "/api/v1/a")] },
      ]),
    ).toThrow("GET /api/v1/a is described twice");
    expect(() => mergePaths([{ name: "one", description: "", routes: [route("get", "/users")] }])).toThrow(
      /not a full public path/,
    );
  });

  it("describes a route's input, answers and catalogue errors, tagged with its group", () => {
    const b = defineRoute({
      method: "get",
      path: "/api/v1/b/{id}",
      summary: "A b",
      caller: caller.app,
      request: { params: z.object({ id: z.string() }) },
      responses: { 200: { description: "ok", schema: z.object({ id: z.string() }) } },
      errors: [errors.unknownApp],
      handler: () => {},
    });
    const op = mergePaths([{ name: "two", description: "", routes: [b] }])["/api/v1/b/{id}"]?.get;
    expect(op?.tags).toEqual(["two"]);
    expect(op?.security).toEqual(caller.app.security);
    expect(Object.keys(op?.responses ?? {})).toEqual([
      "200",
      "400",
      "401",
      "403",
      "404",
      "426",
      "429",
      "503",
      "default",
    ]);
    expect(op?.responses["404"]).toMatchObject({
      description: "- `unknown_app`: no app of that name is configured",
    });
  });
});

describe("the OpenAPI document of http-utility", () => {
  let db: TestDatabase;
  let core: AuthCore;
  let app: Express;
  /** The internal listener's app (MongooseIM's endpoints): documented with the rest, served apart. */
  let internalApp: Express;
  const servers: RunningServer[] = [];
  let publicUrl: string;
  let internalUrl: string;
  /** The document as the app serves it, built from the route definitions it mounts. */
  let doc: OpenApiDocument;
  let declared: RouteGroup[];
  const allRoutes = () => [...appRoutes(app), ...appRoutes(internalApp)];
  /** One API key per scope, each with that scope alone. */
  const KEYS = Object.fromEntries(
    API_SCOPES.map((scope) => [scope, `sk_${scope.replace(":", "_")}_0123456789`]),
  );
  const USER = { node: "docs", domain: "localhost", password: "docs pw" };

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = loadConfig({
      env: { APP_ENV: "test", DATABASE_URL: db.url },
      overrides: {
        services: {
          httpUtility: {
            apiKeys: Object.fromEntries(
              API_SCOPES.map((scope) => [
                scope.replace(":", "-"),
                { sha256: sha256(KEYS[scope] ?? ""), scopes: [scope] },
              ]),
            ),
          },
        },
      },
    });
    const log = pino({ level: "silent" });
    const domain = config.domains.localhost;
    if (!domain) throw new Error("config/test.json has no localhost domain");
    await addUser(db.pool, USER, { cleartext: USER.password }, domain);
    core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
    const push = await createPushDeps({ config, log, pool: db.pool }, { workers: false });
    const media = await createMediaDeps({ config, log, pool: db.pool });
    app = createHttpUtilityApp({
      config,
      log,
      pool: db.pool,
      core,
      attachments: media,
      push,
      registration: createRegistrationDeps({ config, log, pool: db.pool }),
    });
    internalApp = createHttpUtilityInternalApp({ config, log, pool: db.pool, push });
    for (const a of [app, internalApp]) {
      servers.push(await startServer(a, { name: "http-utility", host: "127.0.0.1", port: 0, log }));
    }
    [publicUrl, internalUrl] = servers.map((s) => `http://127.0.0.1:${s.port}`) as [string, string];
    doc = (await (await fetch(`${publicUrl}/api/docs/openapi.json`)).json()) as OpenApiDocument;
    // the route definitions the app mounts, made by the same factories from the same deps
    const deps = { config, pool: db.pool };
    declared = [
      {
        name: "users",
        description: "",
        routes: registrationRoutes({ ...deps, log, ...createRegistrationDeps({ ...deps, log }) }),
      },
      { name: "locations", description: "", routes: locationsRoutes(deps) },
      { name: "app-version", description: "", routes: appVersionRoutes(deps) },
      {
        name: "attachments",
        description: "",
        routes: attachmentsRoutes({ ...deps, log, ...media, media: config.media }),
      },
      {
        name: "notifications",
        description: "",
        routes: [...deviceRoutes({ ...deps, ...push }), ...sendRoutes({ ...deps, ...push })],
      },
      {
        name: "mongooseim",
        description: "",
        routes: mongooseImRoutes({ ...deps, log, notifier: push.notifier }),
      },
    ];
  });
  afterAll(async () => {
    for (const s of servers) await s.close(100);
    await core?.close();
    await db?.drop();
  });

  it("is OpenAPI 3.1.0 that holds together", () => {
    expect(openApiProblems(JSON.parse(JSON.stringify(doc)))).toEqual([]);
  });

  it("names the API, its version (package.json), the server, the security schemes and the error body", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "xmpp-sidecars public API", version: pkg.version });
    expect(doc.servers).toEqual([{ url: "/", description: expect.any(String) }]);
    expect(doc.components?.securitySchemes).toEqual({
      appBasic: { type: "http", scheme: "basic", description: expect.stringMatching(/JID.*XMPP password/) },
      appBearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: expect.any(String) },
      apiKey: { type: "http", scheme: "bearer", bearerFormat: "sk_…", description: expect.any(String) },
    });
    expect(doc.components?.schemas?.Error).toEqual({
      description: expect.any(String),
      type: "object",
      properties: {
        error: {
          type: "object",
          properties: {
            code: expect.objectContaining({ type: "string" }),
            message: expect.objectContaining({ type: "string" }),
          },
          required: ["code", "message"],
          additionalProperties: false,
        },
      },
      required: ["error"],
      additionalProperties: false,
    });
  });

  it("describes every route group, each operation tagged, with an error answer in the common format", () => {
    const tags = (doc.tags ?? []).map((t) => t.name);
    expect(tags).toEqual(GROUP_NAMES);
    for (const { method, path, op } of operations(doc)) {
      expect(tags, `${method} ${path}`).toContain((op.tags as string[])[0]);
      expect((op.responses as Json).default, `${method} ${path}`).toMatchObject({
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      });
    }
    for (const name of GROUP_NAMES) {
      expect(
        operations(doc).some(({ op }) => (op.tags as string[]).includes(name)),
        name,
      ).toBe(true);
    }
  });

  it("documents every route of the app, and has a route for every documented operation", () => {
    const routes = allRoutes().filter((r) => !OPERATIONAL.test(`${r.method} ${r.path}`));
    const inApp = routes.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort();
    const inDoc = operations(doc)
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`)
      .sort();
    expect({ undocumented: inApp.filter((r) => !inDoc.includes(r)) }).toEqual({ undocumented: [] });
    expect({ withoutRoute: inDoc.filter((d) => !inApp.includes(d)) }).toEqual({ withoutRoute: [] });
    expect(inApp.length).toBeGreaterThan(0);
  });

  it("has every route definition the app mounts, with its summary and the codes of its errors", () => {
    for (const group of declared) {
      for (const route of group.routes ?? []) {
        const where = `${route.method.toUpperCase()} ${route.path}`;
        const op = (doc.paths?.[route.path] as Json | undefined)?.[route.method] as Json | undefined;
        expect(op, where).toMatchObject({ summary: route.summary, tags: [group.name] });
        const responses = (op?.responses ?? {}) as Record<string, { description: string }>;
        for (const status of Object.keys(route.responses)) expect(responses[status], where).toBeDefined();
        for (const e of [...route.caller.errors, ...(route.errors ?? [])]) {
          expect(responses[e.status]?.description, `${where} ${e.code}`).toContain(`\`${e.code}\`: `);
        }
      }
    }
  });

  /** A request to a documented operation, on the listener that serves it; `{param}`s filled with "x". */
  async function ask(method: string, path: string, authorization?: string) {
    const internal = appRoutes(internalApp).some((r) => r.method === method && r.path === path);
    const url = `${internal ? internalUrl : publicUrl}${path.replace(/\{\w+\}/g, "x")}`;
    const r = await fetch(url, {
      method: method.toUpperCase(),
      headers: authorization ? { authorization } : {},
    });
    const text = await r.text();
    const body = (
      r.headers.get("content-type")?.startsWith("application/json") && text ? JSON.parse(text) : {}
    ) as {
      error?: { code?: string; message?: string };
    };
    return {
      status: r.status,
      code: body.error?.code,
      message: body.error?.message,
      challenge: r.headers.get("www-authenticate"),
    };
  }
  const ROUTER_404 = /^No such route /;
  const basicAuth = `Basic ${Buffer.from(`${USER.node}@${USER.domain}:${USER.password}`).toString("base64")}`;

  it("answers every documented operation itself, and asks the callers the operation says", async () => {
    for (const { method, path, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      const requirements = op.security as Record<string, string[]>[] | undefined;
      expect(requirements, `${where}: security must be explicit`).toBeDefined();
      const schemes = new Map((requirements ?? []).flatMap((r) => Object.entries(r)));

      const anonymous = await ask(method, path);
      expect(anonymous.message ?? "", where).not.toMatch(ROUTER_404);
      if (schemes.size === 0) {
        expect(anonymous.status, `${where} is public`).not.toBe(401);
        expect((await ask(method, path, "Basic bm9ib2R5Og==")).status, `${where} is public`).not.toBe(401);
        continue;
      }
      // without credentials: the challenge of the first scheme the operation accepts
      expect(anonymous, where).toMatchObject({
        status: 401,
        code: schemes.has("appBasic") ? "invalid_credentials" : "invalid_api_key",
      });

      const scope = schemes.get("apiKey")?.[0] as ApiScope | undefined;
      if (scope) {
        const other = API_SCOPES.find((s) => s !== scope) as ApiScope;
        expect(await ask(method, path, `Bearer ${KEYS[other]}`), `${where} needs ${scope}`).toMatchObject({
          status: 403,
          code: "insufficient_scope",
          challenge: expect.stringContaining(`scope="${scope}"`),
        });
        const allowed = await ask(method, path, `Bearer ${KEYS[scope]}`);
        expect([401, 403], `${where} with a ${scope} key: ${allowed.code}`).not.toContain(allowed.status);
        expect(allowed.message ?? "", where).not.toMatch(ROUTER_404);
      } else {
        expect((await ask(method, path, `Bearer ${KEYS.push}`)).code, `${where} takes no key`).toBe(
          "invalid_credentials",
        );
      }
      if (schemes.has("appBasic")) {
        const user = await ask(method, path, basicAuth);
        expect([401, 429, 503], `${where} as an app user: ${user.code}`).not.toContain(user.status);
        expect(user.message ?? "", where).not.toMatch(ROUTER_404);
      }
    }
  });
});
