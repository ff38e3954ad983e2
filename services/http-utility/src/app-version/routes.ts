import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import { type CallerPolicy, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import { type MinimumVersionAnswer, minimumVersionAnswer, minimumVersionQuery } from "./schema.ts";
import { defaultApp, minimumVersion } from "./versions.ts";

/** GET /api/v1/minimum_app_version: public, so an app may ask before its user has an account. */
export function appVersionRoutes(deps: { config: Pick<Config, "apps">; pool: Pool }): Route<CallerPolicy>[] {
  return [
    defineRoute({
      method: "get",
      path: "/api/v1/minimum_app_version",
      summary: "The minimum version an app must run on a platform",
      description:
        "From the config's `apps.<appName>.minimumVersion`, overridden at runtime by `sidecars apps set-minimum`. " +
        "Without `platform`, or for a platform with no entry of its own, the `default` entry applies. " +
        "Without `appName` (as installed legacy apps call it), the default app answers: the one marked " +
        "`apps.<name>.default`, or the only app configured.",
      caller: caller.public,
      request: { query: minimumVersionQuery },
      responses: { 200: { description: "The minimum version", schema: minimumVersionAnswer } },
      errors: [errors.appNameRequired, errors.unknownApp, errors.unknownPlatform],
      async handler({ query, res }) {
        const appName = query.appName ?? defaultApp(deps.config.apps);
        if (appName === undefined) throw errors.appNameRequired(Object.keys(deps.config.apps));
        const found = await minimumVersion(deps.pool, deps.config.apps, appName, query.platform);
        if (!found.ok) {
          throw found.reason === "unknown_app"
            ? errors.unknownApp(appName)
            : errors.unknownPlatform(appName, found.known);
        }
        const answer: MinimumVersionAnswer = {
          appName: found.appName,
          platform: found.platform,
          minimumVersion: found.minimumVersion,
        };
        res.set("cache-control", "no-cache").json(answer);
      },
    }),
  ];
}
