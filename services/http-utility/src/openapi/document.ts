import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from "zod-openapi";
import type { Route } from "#common/http/route.ts";
import { routePaths } from "#common/http/route-openapi.ts";
import pkg from "../../../../package.json" with { type: "json" };
import { API_KEY, APP_BASIC, callerErrors, errorBody, errorResponse, securitySchemes } from "./components.ts";

/**
 * The OpenAPI 3.1 description of the public API (https://spec.openapis.org/oas/v3.1.0). A group declared as
 * route definitions (common/src/http/route.ts) is described from the very definitions app.ts mounts
 * (`routeGroups`); a group not converted yet still describes its operations by hand in `<group>/openapi.ts`
 * (`export const paths: ZodOpenApiPathsObject`, keyed by the full public path, using ./components.ts).
 * A test (document.test.ts) fails when a route of the app is missing here or a path here has no route.
 */

export interface RouteGroup {
  /** The tag its operations are listed under. */
  name: string;
  description: string;
  /** The group's route definitions, as mounted: its operations are generated from them. */
  routes?: readonly Route[];
  /** The operations of a group not declared as route definitions yet, written by hand. */
  paths?: ZodOpenApiPathsObject;
}

/**
 * The groups, in the order the document lists them. A group without `paths` is declared as route
 * definitions and gets its routes from the app (`routeGroups`); converting a group deletes its `paths`.
 */
const GROUPS = [
  { name: "users", description: "Registration by phone number (SMS challenge)" },
  { name: "locations", description: "Location reports of app users" },
  { name: "app-version", description: "The minimum version each app must run" },
  { name: "attachments", description: "Pictures, avatars, generated avatars and videos" },
  {
    name: "notifications",
    description: "Push notifications: device tokens, badges, channels, sending, replies",
  },
  {
    name: "mongooseim",
    description: "What MongooseIM calls (loopback and push.hooks.allow only): message hook, MongoosePush API",
  },
] as const satisfies readonly RouteGroup[];

/** The groups declared as route definitions, whose routes `routeGroups` takes. */
export type DeclaredGroup = Exclude<(typeof GROUPS)[number], { paths: object }>["name"];

/**
 * The groups still described by hand, alone (a document of only those, for their own tests). Widened first:
 * with every group declared, `"paths" in g` would narrow a group to one with `paths: unknown`.
 */
export const ROUTE_GROUPS: readonly RouteGroup[] = (GROUPS as readonly RouteGroup[]).filter(
  (g) => "paths" in g,
);

/** The names of every group, in the document's order. */
export const GROUP_NAMES: readonly string[] = GROUPS.map((g) => g.name);

/** Every group, those declared as route definitions with the routes the app mounts. */
export function routeGroups(routes: Readonly<Record<DeclaredGroup, readonly Route[]>>): RouteGroup[] {
  return GROUPS.map((g): RouteGroup => ("paths" in g ? (g as RouteGroup) : { ...g, routes: routes[g.name] }));
}

/** The types a body is accepted in: the public API's body parsers (app.ts). */
const BODY_TYPES = ["application/json", "application/x-www-form-urlencoded"];

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export type OpenApiDocument = ReturnType<typeof createDocument>;

/**
 * Answers every hand-written operation has whether its group says so or not: who-is-calling errors, and any
 * other error. (A route definition's operation has them from its caller policy already.)
 */
function withCommonAnswers(op: ZodOpenApiOperationObject): ZodOpenApiOperationObject {
  const schemes = new Set((op.security ?? []).flatMap((requirement) => Object.keys(requirement)));
  const byCaller =
    schemes.has(APP_BASIC) && schemes.has(API_KEY)
      ? callerErrors.appOrServer
      : schemes.has(APP_BASIC)
        ? callerErrors.app
        : schemes.has(API_KEY)
          ? callerErrors.server
          : {};
  return {
    ...op,
    responses: {
      ...byCaller,
      ...op.responses,
      default: op.responses.default ?? errorResponse("Any other error, in the common error format"),
    },
  };
}

/** The groups' paths as one object; a path and method described by two groups is a mistake. */
export function mergePaths(groups: readonly RouteGroup[]): ZodOpenApiPathsObject {
  const merged: ZodOpenApiPathsObject = {};
  for (const group of groups) {
    if (!group.routes === !group.paths) {
      throw new Error(`group ${group.name}: give either its route definitions or its hand-written paths`);
    }
    const paths = group.routes ? routePaths(group.routes, { bodyTypes: BODY_TYPES }) : (group.paths ?? {});
    for (const [path, item] of Object.entries(paths)) {
      // MongoosePush's own paths are what MongooseIM calls, so they keep MongoosePush's layout
      if (!path.startsWith("/api/") && !/^\/v[23]\/notification\//.test(path)) {
        throw new Error(`group ${group.name}: "${path}" is not a full public path (/api/v1/…)`);
      }
      const into = { ...(merged[path] ?? {}) };
      for (const [key, value] of Object.entries(item)) {
        const method = METHODS.find((m) => m === key);
        if (!method) {
          (into as Record<string, unknown>)[key] = value; // summary, description, parameters, servers
          continue;
        }
        if (into[method]) throw new Error(`${method.toUpperCase()} ${path} is described twice`);
        const op = value as ZodOpenApiOperationObject;
        into[method] = { ...(group.routes ? op : withCommonAnswers(op)), tags: op.tags ?? [group.name] };
      }
      merged[path] = into;
    }
  }
  return merged;
}

export function buildOpenApiDocument(groups: readonly RouteGroup[]): OpenApiDocument {
  return createDocument({
    openapi: "3.1.0",
    info: {
      title: "xmpp-sidecars public API",
      version: pkg.version,
      description: [
        "The HTTP API of the xmpp-sidecars http-utility service, which the chat apps and their backends call.",
        "",
        "**Who is calling.** Apps authenticate with HTTP Basic: their JID (`node@domain`) and XMPP password.",
        "Servers send `Authorization: Bearer <API key>`; each key has scopes. Some operations are public.",
        "",
        "**Errors** are JSON `{ error: { code, message } }`: `code` is stable, `message` is for people.",
        "Bodies are accepted as JSON and as `application/x-www-form-urlencoded`.",
      ].join("\n"),
    },
    servers: [{ url: "/", description: "The server this document comes from (the paths are absolute)" }],
    tags: groups.map((g) => ({ name: g.name, description: g.description })),
    paths: mergePaths(groups),
    components: {
      securitySchemes,
      schemas: { Error: errorBody },
    },
  });
}
