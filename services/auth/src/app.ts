import type { RequestListener } from "node:http";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import type { Metrics } from "#common/http/metrics.ts";
import type { ServiceContext } from "#common/service.ts";
import { contractHandler } from "./contract/routes.ts";
import type { AuthApi } from "./core/auth-core.ts";

export interface AppDeps extends Pick<ServiceContext, "config" | "log" | "pool"> {
  core: AuthApi;
  metrics: Metrics;
}

/**
 * The auth service's request handler: MongooseIM's contract under the configured prefix (a plain handler,
 * see contract/routes.ts), everything else (/healthz, /readyz, /metrics, 404s) through the common Express app.
 */
export function createAuthApp(deps: AppDeps): RequestListener {
  const auth = deps.config.services.auth;
  const contract = contractHandler({
    core: deps.core,
    pathPrefix: auth.pathPrefix,
    basicAuth: auth.basicAuth,
    log: deps.log,
  });
  const app = finishApp(createBaseApp({ service: "auth", ...deps }), deps.log);
  return (req, res) => {
    if (!contract(req, res)) app(req, res);
  };
}
