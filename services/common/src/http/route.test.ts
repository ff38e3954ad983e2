import express, { type Request } from "express";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { startServer } from "#common/http/server.ts";
import { defineError } from "../errors.ts";
import { finishApp } from "./app-base.ts";
import { type CallerPolicy, defineRoute, expressPath, type Route, routesRouter } from "./route.ts";

/**
 * Route definitions mounted on a real Express app: paths, the order caller → input → handler, typed input
 * and caller, refusals through the error middleware, and the checks made when a route is defined.
 */

const denied = defineError({
  status: 401,
  code: "denied",
  description: "no token",
  message: "Say the word.",
});
const teapot = defineError({
  status: 418,
  code: "teapot",
  description: "a teapot",
  message: (name: string) => `${name} is a teapot.`,
  headers: (name: string) => ({ "x-teapot": name }),
  details: (name: string) => ({ pot: name }),
});

type Member = { name: string };
const open: CallerPolicy<undefined> & { kind: "open" } = { kind: "open", security: [], errors: [] };
const members: CallerPolicy<Member> & { kind: "members" } = {
  kind: "members",
  security: [{ token: [] }],
  errors: [denied],
};
type Policy = typeof open | typeof members;

/** A member is whoever sends `x-member`; the order of events is recorded in `trace`. */
const trace: string[] = [];
function resolveCaller(policy: Policy, req: Request): Member | undefined {
  trace.push("caller");
  if (policy.kind === "open") return undefined;
  const name = req.get("x-member");
  if (!name) throw denied();
  return { name };
}

const item = defineRoute({
  method: "put",
  path: "/api/v1/things/{id}/items/{item}",
  summary: "Put an item",
  caller: members,
  request: {
    params: z.object({ id: z.coerce.number().int(), item: z.string() }),
    query: z.object({ dry: z.enum(["yes", "no"]).default("no") }),
    body: z.object({ size: z.number().max(10) }),
  },
  responses: { 200: { description: "ok" } },
  handler({ params, query, body, caller, res }) {
    expectTypeOf(params).toEqualTypeOf<{ id: number; item: string }>();
    expectTypeOf(query.dry).toEqualTypeOf<"yes" | "no">();
    expectTypeOf(body.size).toEqualTypeOf<number>();
    expectTypeOf(caller).toEqualTypeOf<Member>();
    trace.push("handler");
    res.json({ params, query, body, caller });
  },
});

const routes: Route<Policy>[] = [
  item,
  defineRoute({
    method: "get",
    path: "/api/v1/teapot",
    summary: "A teapot",
    caller: open,
    responses: { 200: { description: "never" } },
    errors: [teapot],
    async handler({ caller, query }) {
      expectTypeOf(caller).toEqualTypeOf<undefined>();
      expectTypeOf(query).toEqualTypeOf<undefined>();
      throw teapot("Earl Grey");
    },
  }),
  defineRoute({
    method: "post",
    path: "/api/v1/notes",
    summary: "A note in plain text, read by the route's own parser",
    caller: members,
    use: [
      (_req, _res, next) => {
        trace.push("use");
        next();
      },
      express.text({ type: () => true }),
    ],
    request: { body: z.string().min(1) },
    responses: { 200: { description: "ok" } },
    handler({ body, res }) {
      trace.push("handler");
      res.json({ note: body });
    },
  }),
  defineRoute({
    method: "get",
    path: "/api/v1",
    summary: "The base itself",
    caller: open,
    responses: { 200: { description: "ok" } },
    handler: ({ res }) => res.json({ root: true }),
  }),
];

let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = express();
  const api = express.Router();
  api.use(express.json());
  api.use(routesRouter(routes, { base: "/api/v1", resolveCaller }));
  app.use("/api/v1", api);
  finishApp(app, pino({ level: "silent" }));
  const server = await startServer(app, {
    name: "test",
    host: "127.0.0.1",
    port: 0,
    log: pino({ level: "silent" }),
  });
  base = server.url;
  close = () => server.close(100);
});
afterAll(async () => {
  await close?.();
});

async function call(method: string, path: string, init: { member?: string; body?: unknown } = {}) {
  trace.length = 0;
  const r = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(init.member ? { "x-member": init.member } : {}),
      ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  return { status: r.status, headers: r.headers, body: (await r.json()) as any, trace: [...trace] };
}

describe("routesRouter", () => {
  it("answers a route's path, parameters as Express reads them, with typed, validated input", async () => {
    expect(
      await call("PUT", "/api/v1/things/7/items/a%20b?dry=yes", { member: "ann", body: { size: 3 } }),
    ).toMatchObject({
      status: 200,
      body: {
        params: { id: 7, item: "a b" },
        query: { dry: "yes" },
        body: { size: 3 },
        caller: { name: "ann" },
      },
      trace: ["caller", "handler"],
    });
    expect((await call("GET", "/api/v1")).body).toEqual({ root: true });
  });

  it("finds the caller before it reads the input, and runs no handler for either refusal", async () => {
    expect(await call("PUT", "/api/v1/things/x/items/a", { body: { size: 99 } })).toMatchObject({
      status: 401,
      body: { error: { code: "denied", message: "Say the word." } },
      trace: ["caller"],
    });
    expect(await call("PUT", "/api/v1/things/x/items/a", { member: "ann", body: { size: 3 } })).toMatchObject(
      {
        status: 400,
        body: { error: { code: "invalid_request", message: expect.stringMatching(/^id: /) } },
        trace: ["caller"],
      },
    );
    expect(
      (await call("PUT", "/api/v1/things/1/items/a", { member: "ann", body: { size: 99 } })).body,
    ).toMatchObject({
      error: { code: "invalid_request", message: expect.stringMatching(/^size: /) },
    });
  });

  it("runs a route's own middleware after the caller is known, before its input is read", async () => {
    const note = (member?: string) =>
      fetch(`${base}/api/v1/notes`, {
        method: "POST",
        headers: { "content-type": "text/plain", ...(member ? { "x-member": member } : {}) },
        body: "hello",
      });
    trace.length = 0;
    expect(await (await note("ann")).json()).toEqual({ note: "hello" });
    expect(trace).toEqual(["caller", "use", "handler"]);
    trace.length = 0;
    expect((await note()).status).toBe(401);
    expect(trace).toEqual(["caller"]);
  });

  it("sends what a handler throws to the error middleware, with the entry's headers and details", async () => {
    const r = await call("GET", "/api/v1/teapot");
    expect(r.status).toBe(418);
    expect(r.headers.get("x-teapot")).toBe("Earl Grey");
    expect(r.body).toEqual({
      error: { code: "teapot", message: "Earl Grey is a teapot.", pot: "Earl Grey" },
    });
  });

  it("leaves other paths and methods to the rest of the app (here: the 404)", async () => {
    expect((await call("POST", "/api/v1/teapot")).body.error.message).toMatch(/^No such route POST/);
    expect((await call("GET", "/api/v1/things/1/items")).status).toBe(404);
  });

  it("refuses a list that defines a method and path twice, or a path outside its base", () => {
    expect(() => routesRouter([item, item], { resolveCaller })).toThrow(
      "PUT /api/v1/things/{id}/items/{item} is defined twice",
    );
    expect(() => routesRouter([item], { base: "/api/v2", resolveCaller })).toThrow(/not below \/api\/v2/);
    expect(expressPath("/api/v1/a/{b}/c", "/api/v1")).toBe("/a/:b/c");
  });
});

describe("defineRoute", () => {
  const base = {
    method: "get" as const,
    summary: "s",
    caller: open,
    responses: { 200: { description: "ok" } },
    handler: () => {},
  };
  it("refuses a path other than names and {parameters}, and parameters that are not request.params", () => {
    for (const path of ["/a/:id", "/a/{id", "a", "/a/*", "/a/{id}?", "/a//b"]) {
      expect(
        () => defineRoute({ ...base, path, request: { params: z.object({ id: z.string() }) } }),
        path,
      ).toThrow();
    }
    expect(() => defineRoute({ ...base, path: "/a/{id}" })).toThrow(/request.params must be a z.object/);
    expect(() =>
      defineRoute({ ...base, path: "/a/{id}", request: { params: z.object({ ID: z.string() }) } }),
    ).toThrow("GET /a/{id}: the path names {id}, request.params ID");
    expect(() =>
      defineRoute({ ...base, path: "/a", request: { params: z.object({ id: z.string() }) } }),
    ).toThrow();
    expect(() => defineRoute({ ...base, path: "/a", responses: {} })).toThrow(/no responses/);
  });
});
