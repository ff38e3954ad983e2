import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import express, { type ErrorRequestHandler, type Express } from "express";
import { pinoHttp } from "pino-http";
import { ZodError } from "zod";
import type { Config } from "../config/schema.ts";
import type { Pool } from "../db/pool.ts";
import { HttpError, isDatabaseUnavailable } from "../errors.ts";
import { type Logger, maskNumbers } from "../logger.ts";
import { createAllowList } from "./address-allow-list.ts";
import { commonErrors as errors } from "./common-errors.ts";
import { createMetrics, type Metrics } from "./metrics.ts";

export interface BaseDeps {
  service: string;
  config: Pick<Config, "metrics">;
  log: Logger;
  pool: Pool;
  /** The registry /metrics serves; a service with metrics of its own creates it and passes it here. */
  metrics?: Metrics;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * The common front of every service's Express app: request ids and logs, metrics, /healthz, /readyz,
 * /metrics. The service adds its routers, then calls `finishApp` for the 404 and error answers.
 */
export function createBaseApp(deps: BaseDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  const metrics = deps.metrics ?? createMetrics(deps.service);
  const metricsAllowed = createAllowList(deps.config.metrics.allow);

  const revealUsers = deps.log.isLevelEnabled("debug");
  app.use(
    pinoHttp({
      logger: deps.log,
      genReqId(req: IncomingMessage, res) {
        const given = req.headers["x-request-id"];
        const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
        res.setHeader("x-request-id", id);
        return id;
      },
      autoLogging: { ignore: (req) => QUIET_PATHS.has(req.url ?? "") },
      // lean request/response records: pino binds them to a child logger on every request, so serializing
      // every header each time costs a quarter of the throughput, and headers in every line are noise
      wrapSerializers: false,
      serializers: {
        req: (req: IncomingMessage & { id?: unknown }) => ({
          id: req.id,
          method: req.method,
          // the path only: a query may carry a password (MongooseIM sends check_password?…&pass=… by GET);
          // a phone number in it (`/locations/306912345678`) cut outside debug, as logger.ts cuts users
          url: revealUsers ? req.url?.split("?", 1)[0] : maskNumbers(req.url?.split("?", 1)[0] ?? ""),
          remoteAddress: req.socket?.remoteAddress,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? "error" : "info"),
    }),
  );
  app.use(metrics.middleware);

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    try {
      await deps.pool.query("SELECT 1");
      res.json({ status: "ready", database: "up" });
    } catch {
      res.status(503).json({
        status: "unready",
        database: "down",
        error: {
          code: "database_unavailable",
          message: "The database is not reachable; retry in a few seconds.",
        },
      });
    }
  });
  app.get("/metrics", async (req, res, next) => {
    if (!metricsAllowed(req.socket.remoteAddress)) {
      next(errors.metricsForbidden());
      return;
    }
    res.setHeader("content-type", metrics.registry.contentType);
    if (!metrics.scrape) {
      res.end(await metrics.registry.metrics());
      return;
    }
    const scrape = await metrics.scrape();
    // also in the body (sidecars_scrape_workers); the header is for whoever reads it with curl
    res.setHeader("x-metrics-workers", `${scrape.answered}/${scrape.expected}`);
    res.setHeader("x-metrics-worker", scrape.worker);
    res.end(scrape.text);
  });
  return app;
}

/**
 * Maps any thrown value to an error of the catalogue (common-errors.ts): the one place where what zod, the
 * body parsers (body-parser's `type`), the router (a URIError for a path that is not percent-encoding) and
 * pg throw becomes an answer. Undefined: not a known error, answered 500 `internal_error` and logged.
 */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const where = first && first.path.length > 0 ? first.path.join(".") : undefined;
    return errors.invalidRequest(where, first?.message ?? "invalid request");
  }
  if (isDatabaseUnavailable(err)) return errors.databaseUnavailable();
  const e = err as { type?: string; status?: number; limit?: number };
  if (e.type === "entity.too.large") return errors.payloadTooLarge(e.limit);
  if (e.type === "entity.parse.failed") return errors.invalidBody();
  if (typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    // what else body-parser and the router refuse: too many form fields (413), a charset or encoding they
    // cannot read (415), a body cut short or a path that does not decode (400)
    if (e.status === 413) return errors.tooManyParameters();
    if (e.status === 415) return errors.unsupportedEncoding();
    return errors.unreadableRequest();
  }
  return undefined;
}

export function finishApp(app: Express, log: Logger): Express {
  app.use((req, _res, next) => {
    next(errors.notFound(`route ${req.method} ${req.path}`));
  });
  const onError: ErrorRequestHandler = (err, req, res, _next) => {
    const known = toHttpError(err);
    const http = known ?? errors.internalError();
    if (!known) (req.log ?? log).error({ err }, "unhandled error");
    else if (http.status === 503)
      (req.log ?? log).warn({ code: http.code, err: (err as Error).message }, "unavailable");
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res
      .status(http.status)
      .set(http.headers)
      .json({ error: { code: http.code, message: http.message, ...http.details } });
  };
  app.use(onError);
  return app;
}
