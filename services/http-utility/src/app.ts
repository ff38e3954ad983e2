import express, { type Express } from "express";
import type { AuthApi } from "../../common/src/auth/auth-core.ts";
import { createBaseApp, finishApp } from "../../common/src/http/app-base.ts";
import type { Metrics } from "../../common/src/http/metrics.ts";
import type { ServiceContext } from "../../common/src/service.ts";
import { appVersionRouter } from "./app-version/routes.ts";
import type { MediaDeps } from "./attachments/media-deps.ts";
import { attachmentsRouter } from "./attachments/routes.ts";
import { createCallers } from "./callers.ts";
import { locationsRouter } from "./locations/routes.ts";
import { deviceRoutes } from "./notifications/device-routes.ts";
import { mongooseImRoutes } from "./notifications/mongooseim-routes.ts";
import type { PushDeps } from "./notifications/push-deps.ts";
import { sendRoutes } from "./notifications/send-routes.ts";
import { apiDocsRouter } from "./openapi/routes.ts";
import { usersRouter } from "./users/routes.ts";

export interface AppDeps extends ServiceContext {
  /** The auth service's decisions (same code, same cache and guard): who an app caller is. */
  core: AuthApi;
  /** Storage, images and video posters of the attachment routes (`createMediaDeps`). */
  media: MediaDeps;
  /** Senders, notifier and durable push jobs of the notification routes (`createPushDeps`). */
  push: PushDeps;
  metrics?: Metrics;
}

const BODY_LIMIT = "256kb";

/** The http-utility app (legacy-api.md): built from its dependencies, never listening by itself. */
export function createHttpUtilityApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = createBaseApp({ service: "http-utility", ...deps });
  app.set("trust proxy", config.services.httpUtility.trustProxy);
  const callers = createCallers({ core: deps.core, apiKeys: config.services.httpUtility.apiKeys });

  const api = express.Router();
  api.use(express.json({ limit: BODY_LIMIT }), express.urlencoded({ extended: false, limit: BODY_LIMIT }));
  api.use("/users", usersRouter({ ...deps, callers }));
  api.use("/locations", locationsRouter({ ...deps, callers }));
  api.use("/minimum_app_version", appVersionRouter(deps));
  api.use("/notifications", deviceRoutes({ ...deps, ...deps.push, callers }));
  api.use("/notifications", sendRoutes({ ...deps, ...deps.push, callers }));
  // MongooseIM's hooks read their bodies themselves (2.1.0 sends unencoded forms): before the parsers
  app.use(mongooseImRoutes({ ...deps, notifier: deps.push.notifier }));
  // multipart uploads are streamed by multer, outside the JSON and form parsers' size limit
  app.use("/api/v1/attachments", attachmentsRouter({ ...deps, ...deps.media, media: config.media, callers }));
  app.use("/api/v1", api);
  app.use("/api/docs", apiDocsRouter());
  return finishApp(app, deps.log);
}
