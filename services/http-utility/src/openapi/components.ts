import { z } from "zod";
import type { ZodOpenApiResponseObject, ZodOpenApiSecuritySchemeObject } from "zod-openapi";
import type { ApiScope } from "#common/config/schema.ts";

/**
 * The pieces of the OpenAPI document that every route group's `openapi.ts` uses: the error body, the error
 * answers of "who is calling" (callers.ts), and the security requirements. They live apart from document.ts
 * because document.ts imports every group: a group importing document.ts would be an import cycle.
 */

/** The one error body of the API, written by the error middleware (common/src/http/app-base.ts). */
export const errorBody = z
  .object({
    error: z.object({
      code: z.string().meta({
        description: "A stable snake_case code that programs can test",
        example: "invalid_request",
      }),
      message: z.string().meta({
        description: "What went wrong and what to do about it, for people; its wording may change",
        example: "latitude: Too big: expected number to be <=90",
      }),
    }),
  })
  .meta({ id: "Error", description: "Every error answer: `{ error: { code, message } }`" });

/** An error answer; name the codes it may carry in the description (`invalid_request: …`). */
export function errorResponse(description: string): ZodOpenApiResponseObject {
  return { description, content: { "application/json": { schema: errorBody } } };
}

/** The names of the security schemes in `components.securitySchemes`. */
export const APP_BASIC = "appBasic";
export const API_KEY = "apiKey";

export const securitySchemes: Record<string, ZodOpenApiSecuritySchemeObject> = {
  [APP_BASIC]: {
    type: "http",
    scheme: "basic",
    description:
      "Apps: HTTP Basic with the user's JID (`node@domain`, case-insensitive) as the user name and their XMPP password (the `token` that `POST /api/v1/users/authorize` answered).",
  },
  [API_KEY]: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "sk_…",
    description:
      "Servers: `Authorization: Bearer <API key>`. A key has scopes (`push`, `broadcast`, `locations:read`); an operation lists the scope it needs. Operators create keys with `sidecars api-keys create` (docs/api.md).",
  },
};

/** Security requirements of an operation, by who may call it (legacy-api.md "Who may call"). */
export const security = {
  /** Anyone. */
  public: [] as Record<string, string[]>[],
  /** An app user (HTTP Basic). */
  app: [{ [APP_BASIC]: [] }] as Record<string, string[]>[],
  /** A server whose API key has `scope`. */
  server: (scope: ApiScope): Record<string, string[]>[] => [{ [API_KEY]: [scope] }],
  /** Either an app user (on their own data) or a server whose API key has `scope`. */
  appOrServer: (scope: ApiScope): Record<string, string[]>[] => [{ [APP_BASIC]: [] }, { [API_KEY]: [scope] }],
};

/** The answers callers.ts may give before a handler runs, to spread into an operation's `responses`. */
export const callerErrors = {
  app: {
    "401": errorResponse(
      "invalid_credentials: no, malformed or wrong HTTP Basic credentials; comes with `WWW-Authenticate: Basic`",
    ),
    "429": errorResponse(
      "too_many_failures: this client address gave wrong passwords too often (for this JID, or for many); retry after `Retry-After`; other addresses are not affected",
    ),
    "503": errorResponse(
      "auth_unavailable: credentials cannot be checked right now; retry after `Retry-After`",
    ),
  },
  server: {
    "401": errorResponse(
      "invalid_api_key: no or unknown Bearer API key; comes with `WWW-Authenticate: Bearer`",
    ),
    "403": errorResponse("insufficient_scope: the API key lacks the scope this operation needs"),
  },
  appOrServer: {
    "401": errorResponse(
      "invalid_credentials (HTTP Basic) or invalid_api_key (Bearer): the caller could not be identified",
    ),
    "403": errorResponse("insufficient_scope: the API key lacks the scope this operation needs"),
    "429": errorResponse(
      "too_many_failures: this client address gave wrong passwords too often; retry after `Retry-After`",
    ),
    "503": errorResponse(
      "auth_unavailable: credentials cannot be checked right now; retry after `Retry-After`",
    ),
  },
} satisfies Record<string, Record<string, ZodOpenApiResponseObject>>;

/** `400 invalid_request` from `validated()` (common/src/http/validate.ts): "<field>: <problem>". */
export const invalidRequest = {
  "400": errorResponse(
    "invalid_request: a field is missing or wrong, named in the message as `<field>: <problem>`; invalid_body: the body is not valid JSON or form data",
  ),
} satisfies Record<string, ZodOpenApiResponseObject>;
