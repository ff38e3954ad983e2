import { type Request, type RequestHandler, type Response, Router } from "express";
import { z } from "zod";
import type { ZodOpenApiContentObject, ZodOpenApiResponseObject } from "zod-openapi";
import type { ErrorEntry } from "../errors.ts";
import { parseInput } from "./validate.ts";

/**
 * An endpoint declared once: method, public path, who may call it, its input schemas, its answers and the
 * catalogue errors it may give (errors.ts `defineErrors`), next to its handler. `routesRouter` mounts a list
 * of them on Express; `routePaths` (route-openapi.ts) describes the same list in OpenAPI, so the two cannot
 * drift apart.
 */

export type Method = "get" | "post" | "put" | "patch" | "delete";

declare const CALLER: unique symbol;

/**
 * Who may call a route, as a service defines it (anyone, a user, a key with a scope…):
 * the security requirements and errors the document shows, and, as a type only, the caller its handlers get.
 * The service resolves a policy to a caller when it mounts its routes (`MountOptions.resolveCaller`).
 */
export interface CallerPolicy<C = unknown> {
  /** OpenAPI security requirements; `[]` is anyone. */
  readonly security: readonly Readonly<Record<string, readonly string[]>>[];
  /** What resolving the caller may answer instead of the handler (401, 403, 429…). */
  readonly errors: readonly ErrorEntry[];
  /** Never set: the type of the caller a handler under this policy receives. */
  readonly [CALLER]?: C;
}

export type CallerOf<P> = P extends CallerPolicy<infer C> ? C : never;

export interface RouteRequest {
  /** The path's `{name}` parameters: a z.object with exactly those keys. */
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /**
   * The body by content type as the document shows it, when that is not `body` as the service's parsers
   * accept it: a body checked by a transform of `unknown` (several shapes, limits from the config)
   * describes nothing by itself.
   */
  documentedBody?: Readonly<Record<string, z.ZodType>>;
  /**
   * Request headers the handler reads by itself (conditional requests, ranges), for the document only: HTTP's
   * own rules decide what a malformed one means (RFC 9110 §13: it is ignored), not a 400.
   */
  headers?: z.ZodObject;
}

export interface RouteResponse {
  description: string;
  /** The body; none for an empty answer. */
  schema?: z.ZodType;
  /** The body's type; `application/json` by default. */
  contentType?: string;
  /** The whole content when one schema and type do not say it (several types, bytes). */
  content?: ZodOpenApiContentObject;
  headers?: ZodOpenApiResponseObject["headers"];
  /**
   * The route answers every error of this status in this body of its own, not in the common format (a
   * protocol's, such as MongoosePush's `{ "reason": … }`): the catalogue codes of its caller and input at
   * this status are not listed with it.
   */
  replacesErrors?: boolean;
}

type Input<R, K extends keyof RouteRequest> = R extends { [P in K]: infer S extends z.ZodType }
  ? z.output<S>
  : undefined;

/** What a handler receives: its input as the schemas read it, the caller its policy yields, and Express's own. */
export interface RouteContext<P, R> {
  params: Input<R, "params">;
  query: Input<R, "query">;
  body: Input<R, "body">;
  caller: CallerOf<P>;
  req: Request;
  res: Response;
}

export interface RouteDefinition<
  P extends CallerPolicy = CallerPolicy,
  R extends RouteRequest = RouteRequest,
> {
  method: Method;
  /** The full public path, parameters as in OpenAPI: `/api/v1/locations/{msisdn}`. */
  path: string;
  summary: string;
  description?: string;
  /** A path kept for installed apps that still call it, documented as deprecated next to its successor. */
  deprecated?: boolean;
  caller: P;
  request?: R;
  /** The answers of a handler that succeeds, by status. */
  responses: Readonly<Record<number, RouteResponse>>;
  /** The catalogue errors the handler may throw; the caller's and the input's are added by themselves. */
  errors?: readonly ErrorEntry[];
  /**
   * Express middleware run once the caller is known and before the input is read, for a body the service's
   * parsers do not read (a route's own text or multipart parser). Most routes have none.
   */
  use?: readonly RequestHandler[];
  /** Writes the answer through `res`; what it throws or rejects with goes to the error middleware. */
  handler(context: RouteContext<P, R>): unknown;
}

/** A route of any input, under a policy of `P`: what lists of routes hold. */
// biome-ignore lint/suspicious/noExplicitAny: the input types are the route's own, checked by defineRoute
export type Route<P extends CallerPolicy = CallerPolicy> = RouteDefinition<P, any>;

const PATH = /^(\/([\w.~-]+|\{[A-Za-z_]\w*\}))+$/;

/** The names of a path's `{parameters}`, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
}

/**
 * A route, checked now rather than on its first request: a path in the form OpenAPI and `routesRouter`
 * both read, and path parameters that are exactly the keys of `request.params`. (NoInfer: a route written
 * in a list typed `Route[]` would otherwise take its input types from the list, `any`, not from its schemas.)
 */
// biome-ignore lint/complexity/noBannedTypes: a route without input has the empty request `{}`
export function defineRoute<P extends CallerPolicy, R extends RouteRequest = {}>(
  route: RouteDefinition<P, R>,
): NoInfer<RouteDefinition<P, R>> {
  const where = `${route.method.toUpperCase()} ${route.path}`;
  if (!PATH.test(route.path)) {
    throw new Error(`${where}: a path is /-separated names and {parameters}, nothing else`);
  }
  const named = pathParameters(route.path);
  const schema = route.request?.params;
  if (named.length > 0 || schema) {
    if (!(schema instanceof z.ZodObject)) throw new Error(`${where}: request.params must be a z.object`);
    const keys = Object.keys(schema.shape).sort();
    if (keys.join() !== [...named].sort().join()) {
      throw new Error(`${where}: the path names {${named.join("}, {")}}, request.params ${keys.join(", ")}`);
    }
  }
  if (Object.keys(route.responses).length === 0) throw new Error(`${where}: no responses`);
  return route;
}

export interface MountOptions<P extends CallerPolicy> {
  /** The path the router is mounted at (`/api/v1`): every route's path starts with it. */
  base?: string;
  /** The caller of a request under `policy`, or an error (thrown or rejected) saying why there is none. */
  resolveCaller(policy: P, req: Request): unknown;
}

/** Express's form of a route's path below `base`: `/locations/:msisdn`. */
export function expressPath(path: string, base = ""): string {
  if (base && path !== base && !path.startsWith(`${base}/`)) {
    throw new Error(`${path} is not below ${base}, where its router is mounted`);
  }
  return path.slice(base.length).replace(/\{(\w+)\}/g, ":$1") || "/";
}

/**
 * An Express router answering `routes`: each finds its caller, then runs its own middleware (`use`), then
 * reads its input, then runs its handler; a refusal or a rejection at any step goes to `next` (the error
 * middleware, app-base.ts).
 */
export function routesRouter<P extends CallerPolicy>(
  routes: readonly Route<P>[],
  options: MountOptions<P>,
): Router {
  const router = Router();
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${route.method.toUpperCase()} ${route.path}`;
    if (seen.has(key)) throw new Error(`${key} is defined twice`);
    seen.add(key);
    const callers = new WeakMap<Request, unknown>();
    const findCaller: RequestHandler = async (req, _res, next) => {
      try {
        callers.set(req, await options.resolveCaller(route.caller, req));
        next();
      } catch (err) {
        next(err);
      }
    };
    const handle: RequestHandler = async (req, res, next) => {
      try {
        const input = parseInput(route.request ?? {}, req);
        await route.handler({
          params: input.params,
          query: input.query,
          body: input.body,
          caller: callers.get(req) as CallerOf<P>,
          req,
          res,
        });
      } catch (err) {
        next(err);
      }
    };
    router[route.method](expressPath(route.path, options.base), findCaller, ...(route.use ?? []), handle);
  }
  return router;
}
