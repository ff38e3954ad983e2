import { Router } from "express";
import { HttpError } from "#common/errors.ts";
import { validated } from "#common/http/validate.ts";
import type { AppDeps } from "../app.ts";
import { type MinimumVersionAnswer, minimumVersionQuery } from "./schema.ts";
import { minimumVersion } from "./versions.ts";

const unknownApp = (appName: string) =>
  new HttpError(
    404,
    "unknown_app",
    `No app "${appName}" is configured: check appName (names are case-sensitive).`,
  );
const unknownPlatform = (appName: string, known: string[]) =>
  new HttpError(
    404,
    "unknown_platform",
    known.length > 0
      ? `"${appName}" has no minimum version for this platform and no default: send platform as one of ${known.join(", ")}.`
      : `"${appName}" has no minimum version configured for any platform.`,
  );

/** GET /api/v1/minimum_app_version: public, so an app may ask before its user has an account. */
export function appVersionRouter(deps: Pick<AppDeps, "config" | "pool">): Router {
  const router = Router();
  router.get(
    "/",
    validated({ query: minimumVersionQuery }, async ({ query }, _req, res) => {
      const found = await minimumVersion(deps.pool, deps.config.apps, query.appName, query.platform);
      if (!found.ok) {
        throw found.reason === "unknown_app"
          ? unknownApp(query.appName)
          : unknownPlatform(query.appName, found.known);
      }
      const answer: MinimumVersionAnswer = {
        appName: found.appName,
        platform: found.platform,
        minimumVersion: found.minimumVersion,
      };
      res.set("cache-control", "no-cache").json(answer);
    }),
  );
  return router;
}
