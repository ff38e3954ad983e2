import type { Express } from "express";
import { createBaseApp, finishApp } from "../../common/src/http/app-base.ts";
import type { Metrics } from "../../common/src/http/metrics.ts";
import type { ServiceContext } from "../../common/src/service.ts";
import type { AuthApi } from "./auth-service.ts";
import { authorizeRouter } from "./contract/routes.ts";

export interface AppDeps extends ServiceContext {
  core: AuthApi;
  metrics: Metrics;
}

/** The auth app: MongooseIM's contract under the configured prefix, plus the common endpoints. */
export function createAuthApp(deps: AppDeps): Express {
  const app = createBaseApp({ service: "auth", ...deps });
  const auth = deps.config.services.auth;
  app.use(
    auth.pathPrefix.replace(/\/$/, ""),
    authorizeRouter({ core: deps.core, basicAuth: auth.basicAuth, log: deps.log }),
  );
  return finishApp(app, deps.log);
}
