import type { RequestListener } from "node:http";
import express, { type Express, type RequestHandler } from "express";
import type { AuthApi } from "#auth";
import { createBaseApp, finishApp } from "#common/http/app-base.ts";
import type { Metrics } from "#common/http/metrics.ts";
import { routesRouter } from "#common/http/route.ts";
import type { ServiceContext } from "#common/service.ts";
import { appVersionRoutes } from "./app-version/routes.ts";
import { leanDownloads } from "./attachments/lean-downloads.ts";
import type { MediaDeps } from "./attachments/media-deps.ts";
import { attachmentsRoutes, undecodableName } from "./attachments/routes.ts";
import { createCallers, resolveInternalCaller } from "./callers.ts";
import { errors } from "./errors.ts";
import { locationsRoutes } from "./locations/routes.ts";
import { buildOpenApiDocument, routeGroups } from "./openapi/document.ts";
import { apiDocsRouter } from "./openapi/routes.ts";
import type { PushDeps } from "./push/deps.ts";
import { deviceRoutes } from "./push/devices/routes.ts";
import { MONGOOSEPUSH_PREFIXES, mongooseImRoutes, mongoosePushErrors } from "./push/mongooseim/routes.ts";
import { sendRoutes } from "./push/send/routes.ts";
import type { RegistrationDeps } from "./registration/deps.ts";
import { registrationRoutes } from "./registration/routes.ts";
import { sessionRoutes } from "./sessions/routes.ts";
import { type AppSessions, createAppSessions } from "./sessions/tokens.ts";
import { xmppUploadRoutes } from "./xmpp-upload/routes.ts";

/**
 * The features of the app, each built once by the composition root (service.ts), and the process's config, log
 * and pool. Each route group is handed its own part of them, never the whole.
 */
export interface AppDeps extends Pick<ServiceContext, "config" | "log" | "pool"> {
  /** The auth service's decisions (same code, same cache and guard): who an app caller is. */
  core: AuthApi;
  /** Storage, images and video posters of the attachment routes (`createMediaDeps`). */
  attachments: MediaDeps;
  /** Senders, notifier and durable push jobs of the notification routes (`createPushDeps`). */
  push: PushDeps;
  /** SMS senders, budget and limits of registration by phone number (`createRegistrationDeps`). */
  registration: RegistrationDeps;
  /**
   * Access tokens of app sessions, on the process's LISTEN connection (`createAppSessions`). Without it the
   * app makes its own, which looks each token's session up in the database (no notifications to trust).
   */
  sessions?: AppSessions;
  metrics?: Metrics;
}

const BODY_LIMIT = "256kb";

/**
 * A proxy the operator trusts that does not say who its client is (nginx's default config, stunnel, haproxy
 * in TCP mode) would make every client look like the proxy: one shared per-address limit for everyone. So
 * such a request is refused rather than counted as the proxy's own.
 */
function requireForwardedFor(trusted: (address: string, hop: number) => boolean): RequestHandler {
  return (req, _res, next) => {
    const address = req.socket.remoteAddress;
    const named = req.headers["x-forwarded-for"];
    next(address !== undefined && trusted(address, 0) && !named ? errors.missingForwardedFor() : undefined);
  };
}

/**
 * The http-utility app (docs/api.md): built from its dependencies, never listening by itself. It is the
 * public listener's: MongooseIM's endpoints are on the internal one (`createHttpUtilityInternalApp`) and
 * answer 404 here, whatever a request's headers say.
 */
export function createHttpUtilityApp(deps: AppDeps): Express {
  const { config, log, pool, push } = deps;
  const app = createBaseApp({ service: "http-utility", ...deps });
  app.set("trust proxy", config.services.httpUtility.trustProxy);
  app.use(requireForwardedFor(app.get("trust proxy fn")));
  const sessions = deps.sessions ?? createAppSessions({ config, pool, log });
  const callers = createCallers({
    core: deps.core,
    apiKeys: config.services.httpUtility.apiKeys,
    sessions,
    domains: config,
    apps: { config, pool, registry: deps.metrics?.registry },
  });

  const api = express.Router();
  api.use(express.json({ limit: BODY_LIMIT }), express.urlencoded({ extended: false, limit: BODY_LIMIT }));
  // the groups declared as route definitions: mounted here, and described from the same definitions
  const declared = {
    users: registrationRoutes({ config, log, pool, ...deps.registration }),
    sessions: sessionRoutes({ config, pool, core: deps.core, sessions, callers }),
    locations: locationsRoutes({ config, pool }),
    "app-version": appVersionRoutes({ config, pool }),
    attachments: attachmentsRoutes({ config, log, pool, ...deps.attachments, media: config.media }),
    notifications: [
      ...deviceRoutes({ config, pool, notifier: push.notifier }),
      ...sendRoutes({
        config,
        pool,
        notifier: push.notifier,
        broadcasts: push.broadcasts,
        relay: push.relay,
      }),
    ],
    // described here, served by the internal listener's app only (createHttpUtilityInternalApp)
    mongooseim: mongooseImRoutes({ config, pool, log, notifier: push.notifier }),
    // XEP-0363 uploads of XMPP servers' upload modules (docs/xmpp-clients.md): raw bodies, before any parser
    "xmpp-upload": xmppUploadRoutes({
      config,
      pool,
      log,
      ...deps.attachments,
      media: config.media,
      metrics: deps.metrics?.registry,
    }),
  };
  const mount = { base: "/api/v1", resolveCaller: callers.resolve };
  api.use(routesRouter(declared.users, mount));
  api.use(routesRouter(declared.sessions, mount));
  api.use(routesRouter(declared.locations, mount));
  api.use(routesRouter(declared["app-version"], mount));
  const [current, legacyRoot] = partition(declared.notifications, (r) => r.path.startsWith("/api/v1/"));
  api.use(routesRouter(current, mount));
  // multipart uploads are streamed by multer, outside the JSON and form parsers' size limit
  const attachments = { base: "/api/v1/attachments", resolveCaller: callers.resolve };
  app.use("/api/v1/attachments", routesRouter(declared.attachments, attachments), undecodableName);
  app.use(routesRouter(declared["xmpp-upload"], { resolveCaller: callers.resolve }), undecodableName);
  app.use("/api/v1", api);
  // the paths the legacy services answered at the root (`/replies`, `/resolves`), still called by installed apps
  const legacy = express.Router();
  for (const r of legacyRoot) {
    legacy[r.method](
      r.path,
      express.json({ limit: BODY_LIMIT }),
      express.urlencoded({ extended: false, limit: BODY_LIMIT }),
    );
  }
  app.use(legacy.use(routesRouter(legacyRoot, { resolveCaller: callers.resolve })));
  app.use("/api/docs", apiDocsRouter(buildOpenApiDocument(routeGroups(declared))));
  return finishApp(app, deps.log);
}

/**
 * The public listener's request handler: the lean path of hot downloads (attachments/lean-downloads.ts) in front
 * of the app, the way the auth contract stands in front of the auth service's app.
 */
export function createHttpUtilityHandler(deps: AppDeps): RequestListener {
  const app = createHttpUtilityApp(deps);
  const lean = leanDownloads({
    downloads: deps.attachments.downloads,
    log: deps.log,
    trusted: app.get("trust proxy fn"),
    ...(deps.metrics ? { observe: deps.metrics.observe } : {}),
  });
  return (req, res) => {
    if (!lean(req, res)) app(req, res);
  };
}

/**
 * The internal listener's app (`services.httpUtility.internal`, loopback by default): MongooseIM's message
 * hook and the MongoosePush API, which MongooseIM calls without credentials. Who may call is decided on the
 * connection's address (`push.hooks.allow`); no proxy is trusted here, so X-Forwarded-For means nothing.
 */
export function createHttpUtilityInternalApp(
  deps: Pick<AppDeps, "config" | "log" | "pool" | "push" | "metrics">,
): Express {
  const app = createBaseApp({ service: "http-utility", ...deps });
  const { config, log, pool } = deps;
  const mongooseim = mongooseImRoutes({ config, pool, log, notifier: deps.push.notifier });
  app.use(routesRouter(mongooseim, { resolveCaller: resolveInternalCaller }));
  // the MongoosePush API refuses in MongoosePush's words, even before its route matches
  app.use(MONGOOSEPUSH_PREFIXES, mongoosePushErrors({ log }));
  return finishApp(app, deps.log);
}

function partition<T>(items: readonly T[], test: (item: T) => boolean): [T[], T[]] {
  return [items.filter(test), items.filter((item) => !test(item))];
}
