import type { ZodOpenApiPathsObject, ZodOpenApiResponsesObject } from "zod-openapi";
import { errorResponse, invalidRequest, security } from "../openapi/components.ts";
import {
  documentedBody,
  historyAnswer,
  historyQuery,
  latestAnswer,
  latestQuery,
  readParams,
  reportFields,
  storedAnswer,
} from "./schema.ts";

/** The OpenAPI paths of the locations group (routes.ts), from the schemas its routes validate with. */

const readErrors: ZodOpenApiResponsesObject = {
  "400": errorResponse(
    "invalid_request: a malformed msisdn, date, limit or domain; ambiguous_msisdn: the msisdn has locations in several domains, add `domain`",
  ),
  "403": errorResponse(
    "forbidden: an app user asking for another user's locations (or another domain); insufficient_scope: the API key lacks `locations:read`",
  ),
  "404": errorResponse(
    "not_found: no location stored for that msisdn (an app user's own empty history is an empty page)",
  ),
};

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/locations": {
    post: {
      summary: "Report the caller's location(s)",
      description:
        'One report, a JSON array of reports, or `{ "locations": [...] }`, at most ' +
        "`services.httpUtility.locations.maxBatch` (500 by default) in one request. Every msisdn must be the " +
        "caller's own; a batch is stored whole or not at all. A `date` may be at most " +
        "`services.httpUtility.locations.futureSkewSeconds` (300 by default) ahead of the server's clock. A " +
        "report with the same date as one already stored (a retried batch) is kept once.",
      security: security.app,
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: documentedBody },
          "application/x-www-form-urlencoded": { schema: reportFields },
        },
      },
      responses: {
        "201": {
          description: "Stored: `stored` is the number of reports in the request",
          content: { "application/json": { schema: storedAnswer } },
        },
        ...invalidRequest,
        "403": errorResponse("forbidden: an msisdn that is not the caller's own; nothing was stored"),
      },
    },
  },
  "/api/v1/locations/{msisdn}/latest": {
    get: {
      summary: "The latest location of a user",
      description:
        "An app user reads their own; a server key needs the scope `locations:read` (and `domain` when the msisdn has locations in several domains).",
      security: security.appOrServer("locations:read"),
      requestParams: { path: readParams, query: latestQuery },
      responses: {
        "200": {
          description: "The report with the newest date",
          content: { "application/json": { schema: latestAnswer } },
        },
        ...readErrors,
      },
    },
  },
  "/api/v1/locations/{msisdn}": {
    get: {
      summary: "A user's locations in a time range, newest first, a page at a time",
      description:
        "Pass the answer's `next` as `before` (with the same `from`, `to`, `limit`) for the next, older page; `next` is null on the last page.",
      security: security.appOrServer("locations:read"),
      requestParams: { path: readParams, query: historyQuery },
      responses: {
        "200": {
          description: "One page",
          content: { "application/json": { schema: historyAnswer } },
        },
        ...readErrors,
      },
    },
  },
};
