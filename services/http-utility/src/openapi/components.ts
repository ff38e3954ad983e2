import type { ZodOpenApiResponseObject } from "zod-openapi";
import { errorResponses } from "#common/http/route-openapi.ts";
import { caller } from "../callers.ts";

/**
 * The pieces a group's hand-written `openapi.ts` uses, until the group is declared as route definitions
 * (route.ts in common/src/http), whose document is generated from the same pieces: the error body, the
 * errors of "who is calling" (callers.ts) and the security requirements. They live apart from document.ts
 * because document.ts imports every group: a group importing document.ts would be an import cycle.
 */

export { errorBody, errorResponse } from "#common/http/route-openapi.ts";
export { API_KEY, APP_BASIC, security, securitySchemes } from "../callers.ts";

/** The answers callers.ts may give before a handler runs, to spread into an operation's `responses`. */
export const callerErrors = {
  app: errorResponses(caller.app.errors),
  server: errorResponses(caller.server("push").errors),
  appOrServer: errorResponses(caller.appOrServer("push").errors),
} satisfies Record<string, Record<string, ZodOpenApiResponseObject>>;
