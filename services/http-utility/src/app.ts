import type { Express } from "express";
import { createBaseApp, finishApp } from "../../common/src/http/app-base.ts";
import type { ServiceContext } from "../../common/src/service.ts";

export type AppDeps = ServiceContext;

/** The http-utility app: built from its dependencies, never listening by itself. */
export function createHttpUtilityApp(deps: AppDeps): Express {
  const app = createBaseApp({ service: "http-utility", ...deps });
  return finishApp(app, deps.log);
}
