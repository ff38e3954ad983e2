import { z } from "zod";
import type {
  ZodOpenApiOperationObject,
  ZodOpenApiPathsObject,
  ZodOpenApiResponseObject,
  ZodOpenApiResponsesObject,
} from "zod-openapi";
import type { ErrorEntry } from "../errors.ts";
import { commonErrors } from "./common-errors.ts";
import type { Route, RouteResponse } from "./route.ts";

/**
 * The OpenAPI 3.1 operations (https://spec.openapis.org/oas/v3.1.0#operation-object) of route definitions
 * (route.ts): parameters and body from the schemas the routes validate with, answers from `responses`, and
 * error answers from the catalogue entries of the route, of its caller policy and of input validation,
 * grouped by status with each code and its description.
 */

/** The one error body, as app-base.ts writes it. */
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

/** An error answer in the common format with `description`. */
export function errorResponse(description: string): ZodOpenApiResponseObject {
  return { description, content: { "application/json": { schema: errorBody } } };
}

/**
 * The error answers of `entries` by status, each listing its codes with what they mean (a code with two
 * meanings at one status, such as `forbidden` for two reasons, is listed once for each).
 */
export function errorResponses(entries: readonly ErrorEntry[]): Record<string, ZodOpenApiResponseObject> {
  const byStatus = new Map<number, Set<string>>();
  for (const e of entries) {
    const lines = byStatus.get(e.status) ?? new Set<string>();
    lines.add(`- \`${e.code}\`: ${e.description}`);
    byStatus.set(e.status, lines);
  }
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, lines]) => [String(status), errorResponse([...lines].join("\n"))]),
  );
}

export interface RoutePathsOptions {
  /** The types a body is accepted in (the service's body parsers): each documents `request.body`. */
  bodyTypes: readonly string[];
}

function success(r: RouteResponse): ZodOpenApiResponseObject {
  const content =
    r.content ?? (r.schema ? { [r.contentType ?? "application/json"]: { schema: r.schema } } : {});
  return {
    description: r.description,
    ...(Object.keys(content).length > 0 ? { content } : {}),
    ...(r.headers ? { headers: r.headers } : {}),
  };
}

export function routeOperation(route: Route, options: RoutePathsOptions): ZodOpenApiOperationObject {
  const { params, query, body, documentedBody, headers } = route.request ?? {};
  const inputErrors = [
    ...(params || query || body ? [commonErrors.invalidRequest] : []),
    ...(body ? [commonErrors.invalidBody, commonErrors.payloadTooLarge] : []),
  ];
  const errors = errorResponses([...route.caller.errors, ...inputErrors, ...(route.errors ?? [])]);
  const responses: Record<string, ZodOpenApiResponseObject> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    const own = success(r);
    const theirs = r.replacesErrors ? undefined : errors[status];
    // a status that is both an answer of its own (with a body of its own) and catalogue errors: one answer
    // whose description lists the codes too
    responses[status] = theirs ? { ...own, description: `${own.description}\n${theirs.description}` } : own;
  }
  for (const [status, r] of Object.entries(errors)) responses[status] ??= r;
  responses.default = errorResponse("Any other error, in the common error format");

  const bodyContent: Readonly<Record<string, z.ZodType>> | undefined =
    documentedBody ?? (body ? Object.fromEntries(options.bodyTypes.map((t) => [t, body])) : undefined);
  return {
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.deprecated ? { deprecated: true } : {}),
    security: route.caller.security.map((requirement) =>
      Object.fromEntries(Object.entries(requirement).map(([scheme, scopes]) => [scheme, [...scopes]])),
    ),
    ...(params || query || headers
      ? {
          requestParams: {
            ...(params ? { path: params as z.ZodObject } : {}),
            ...(query ? { query: query as z.ZodObject } : {}),
            ...(headers ? { header: headers } : {}),
          },
        }
      : {}),
    ...(bodyContent
      ? {
          requestBody: {
            required: true,
            content: Object.fromEntries(Object.entries(bodyContent).map(([t, schema]) => [t, { schema }])),
          },
        }
      : {}),
    responses: responses as ZodOpenApiResponsesObject,
  };
}

/** The paths object of `routes`; a method and path defined twice is a mistake. */
export function routePaths(routes: readonly Route[], options: RoutePathsOptions): ZodOpenApiPathsObject {
  const paths: ZodOpenApiPathsObject = {};
  for (const route of routes) {
    const item = paths[route.path] ?? {};
    if (item[route.method]) throw new Error(`${route.method.toUpperCase()} ${route.path} is defined twice`);
    item[route.method] = routeOperation(route, options);
    paths[route.path] = item;
  }
  return paths;
}
