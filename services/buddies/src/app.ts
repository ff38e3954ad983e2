import type { Express } from "express";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import type { Metrics } from "#common/http/metrics.ts";
import type { ServiceContext } from "#common/service.ts";
import { requireAdmin, sameOrigin } from "./admin/admin-auth.ts";
import { domainsRouter } from "./admin/domains-routes.ts";
import { opsRouter } from "./admin/ops-routes.ts";
import { adminPageRouter } from "./admin/page.ts";
import { adminRouter, hooksRouter } from "./admin/routes.ts";
import { usersRouter } from "./admin/users-routes.ts";
import type { KindRegistry } from "./kinds/registry.ts";
import type { Runner } from "./runner/runner.ts";

export interface AppDeps extends Pick<ServiceContext, "config" | "log" | "pool" | "domains"> {
  runner: Runner;
  kinds: KindRegistry;
  metrics: Metrics;
}

/** The buddies app: health and metrics, hooks (hook or admin keys), admin API and page (admin keys). */
export function createBuddiesApp(deps: AppDeps): Express {
  const app = createBaseApp({ service: "buddies", ...deps });
  const admins = () => deps.config.services.buddies.admins;
  const hookCallers = () => ({
    ...deps.config.services.buddies.hookKeys,
    ...deps.config.services.buddies.admins,
  });
  app.use("/hooks", requireAdmin(hookCallers));
  app.use(hooksRouter(deps));
  app.use(requireAdmin(admins), sameOrigin);
  app.use(adminRouter(deps));
  app.use(usersRouter(deps));
  app.use(opsRouter(deps));
  if (deps.domains) app.use(domainsRouter({ ...deps, domains: deps.domains }));
  app.use(adminPageRouter());
  return finishApp(app, deps.log);
}
