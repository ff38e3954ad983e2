import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from "zod-openapi";
import type { Route } from "#common/http/route.ts";
import { errorBody, routePaths } from "#common/http/route-openapi.ts";
import pkg from "../../../../package.json" with { type: "json" };
import { securitySchemes } from "../callers.ts";

/**
 * The OpenAPI 3.1 description of the public API (https://spec.openapis.org/oas/v3.1.0), generated from the
 * very route definitions app.ts mounts (common/src/http/route.ts): each group's operations come from its
 * routes, their errors from the catalogue (../errors.ts). A test (document.test.ts) calls every documented
 * operation on the real app.
 */

export interface RouteGroup {
  /** The tag its operations are listed under. */
  name: string;
  description: string;
  /** The group's route definitions, as mounted: its operations are generated from them. */
  routes: readonly Route[];
}

/** The groups, in the order the document lists them. */
const GROUPS = [
  { name: "users", description: "Registration by phone number (SMS challenge)" },
  {
    name: "sessions",
    description: "App sessions: the password once for a bearer access token and a rotating refresh token",
  },
  { name: "locations", description: "Location reports of app users" },
  { name: "app-version", description: "The minimum version each app must run" },
  { name: "attachments", description: "Pictures, avatars, generated avatars and videos" },
  {
    name: "xmpp-upload",
    description: "XEP-0363 HTTP File Upload of MongooseIM, ejabberd and Prosody (docs/xmpp-clients.md)",
  },
  {
    name: "notifications",
    description: "Push notifications: device tokens, badges, channels, sending, replies",
  },
  {
    name: "mongooseim",
    description: "What MongooseIM calls (loopback and push.hooks.allow only): message hook, MongoosePush API",
  },
] as const;

export type GroupName = (typeof GROUPS)[number]["name"];

/** The names of every group, in the document's order. */
export const GROUP_NAMES: readonly GroupName[] = GROUPS.map((g) => g.name);

/** Every group with the routes the app mounts for it. */
export function routeGroups(routes: Readonly<Record<GroupName, readonly Route[]>>): RouteGroup[] {
  return GROUPS.map((g) => ({ ...g, routes: routes[g.name] }));
}

/** The types a body is accepted in: the public API's body parsers (app.ts). */
const BODY_TYPES = ["application/json", "application/x-www-form-urlencoded"];

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export type OpenApiDocument = ReturnType<typeof createDocument>;

/** The groups' paths as one object, each operation tagged with its group; one operation in two groups is a mistake. */
export function mergePaths(groups: readonly RouteGroup[]): ZodOpenApiPathsObject {
  const merged: ZodOpenApiPathsObject = {};
  for (const group of groups) {
    for (const route of group.routes) {
      // MongoosePush's own paths are what MongooseIM calls, so they keep MongoosePush's layout; the legacy
      // services' root paths that installed apps still call are deprecated routes
      if (
        !route.path.startsWith("/api/") &&
        !/^\/v[23]\/notification\//.test(route.path) &&
        !route.deprecated
      ) {
        throw new Error(`group ${group.name}: "${route.path}" is not a full public path (/api/v1/…)`);
      }
    }
    for (const [path, item] of Object.entries(routePaths(group.routes, { bodyTypes: BODY_TYPES }))) {
      const into = { ...(merged[path] ?? {}) };
      for (const [key, value] of Object.entries(item)) {
        const method = METHODS.find((m) => m === key);
        if (!method) {
          (into as Record<string, unknown>)[key] = value; // summary, description, parameters, servers
          continue;
        }
        if (into[method]) throw new Error(`${method.toUpperCase()} ${path} is described twice`);
        const op = value as ZodOpenApiOperationObject;
        into[method] = { ...op, tags: op.tags ?? [group.name] };
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
        "**Who is calling.** Apps authenticate with HTTP Basic: their JID (`node@domain`) and XMPP password;",
        "or, once logged in with `POST /api/v1/sessions`, with `Authorization: Bearer <access token>`.",
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
