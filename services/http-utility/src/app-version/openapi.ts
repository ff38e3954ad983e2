import type { ZodOpenApiPathsObject } from "zod-openapi";
import { errorResponse, invalidRequest, security } from "../openapi/components.ts";
import { minimumVersionAnswer, minimumVersionQuery } from "./schema.ts";

/** The OpenAPI paths of the app-version group (routes.ts), from the schemas its route validates with. */
export const paths: ZodOpenApiPathsObject = {
  "/api/v1/minimum_app_version": {
    get: {
      summary: "The minimum version an app must run on a platform",
      description:
        "From the config's `apps.<appName>.minimumVersion`, overridden at runtime by `sidecars apps set-minimum`. " +
        "Without `platform`, or for a platform with no entry of its own, the `default` entry applies.",
      security: security.public,
      requestParams: { query: minimumVersionQuery },
      responses: {
        "200": {
          description: "The minimum version",
          content: { "application/json": { schema: minimumVersionAnswer } },
        },
        ...invalidRequest,
        "404": errorResponse(
          "unknown_app: no app of that name is configured; unknown_platform: no entry for the platform and no `default` (the message lists the platforms)",
        ),
      },
    },
  },
};
