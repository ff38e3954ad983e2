import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from "zod-openapi";
import pkg from "../../../../package.json" with { type: "json" };
import { paths as appVersionPaths } from "../app-version/openapi.ts";
import { paths as attachmentsPaths } from "../attachments/openapi.ts";
import { paths as locationsPaths } from "../locations/openapi.ts";
import { paths as notificationDevicePaths } from "../push/devices/openapi.ts";
import { paths as mongooseImPaths, mongoosePushPaths } from "../push/mongooseim/openapi.ts";
import { paths as notificationSendPaths } from "../push/send/openapi.ts";
import { paths as usersPaths } from "../registration/openapi.ts";
import { API_KEY, APP_BASIC, callerErrors, errorBody, errorResponse, securitySchemes } from "./components.ts";

/**
 * The OpenAPI 3.1 description of the public API (https://spec.openapis.org/oas/v3.1.0), generated from the
 * zod schemas the routes validate with. Each route group describes its own operations in
 * `<group>/openapi.ts` as `export const paths: ZodOpenApiPathsObject`, keyed by the full public path
 * (`/api/v1/users/authorize`, parameters as `{filename}`), using the pieces of ./components.ts. A test
 * (document.test.ts) fails when a route of the app is missing here or a path here has no route.
 */

export interface RouteGroup {
  /** The tag its operations are listed under. */
  name: string;
  description: string;
  paths: ZodOpenApiPathsObject;
}

// Adding a route group is one line here (its openapi.ts written like the others):
//   { name: "attachments", description: "…", paths: attachmentsPaths },
export const ROUTE_GROUPS: readonly RouteGroup[] = [
  { name: "users", description: "Registration by phone number (SMS challenge)", paths: usersPaths },
  { name: "locations", description: "Location reports of app users", paths: locationsPaths },
  { name: "app-version", description: "The minimum version each app must run", paths: appVersionPaths },
  {
    name: "attachments",
    description: "Pictures, avatars, generated avatars and videos",
    paths: attachmentsPaths,
  },
  {
    name: "notifications",
    description: "Push notifications: device tokens, badges, channels, sending, replies",
    paths: { ...notificationDevicePaths, ...notificationSendPaths },
  },
  {
    name: "mongooseim",
    description: "What MongooseIM calls (loopback and push.hooks.allow only): message hook, MongoosePush API",
    paths: { ...mongooseImPaths, ...mongoosePushPaths },
  },
];

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export type OpenApiDocument = ReturnType<typeof createDocument>;

/** Answers every operation has whether its group says so or not: who-is-calling errors, and any other error. */
function withCommonAnswers(op: ZodOpenApiOperationObject, group: string): ZodOpenApiOperationObject {
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
    tags: op.tags ?? [group],
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
    for (const [path, item] of Object.entries(group.paths)) {
      // MongoosePush's own paths are what MongooseIM calls, so they keep MongoosePush's layout
      if (!path.startsWith("/api/") && !/^\/v[23]\/notification\//.test(path)) {
        throw new Error(`${group.name}/openapi.ts: "${path}" is not a full public path (/api/v1/…)`);
      }
      const into = { ...(merged[path] ?? {}) };
      for (const [key, value] of Object.entries(item)) {
        const method = METHODS.find((m) => m === key);
        if (!method) {
          (into as Record<string, unknown>)[key] = value; // summary, description, parameters, servers
          continue;
        }
        if (into[method]) throw new Error(`${method.toUpperCase()} ${path} is described twice`);
        into[method] = withCommonAnswers(value as ZodOpenApiOperationObject, group.name);
      }
      merged[path] = into;
    }
  }
  return merged;
}

export function buildOpenApiDocument(groups: readonly RouteGroup[] = ROUTE_GROUPS): OpenApiDocument {
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
