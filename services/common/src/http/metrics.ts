import type { NextFunction, Request, Response } from "express";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { ClusterScrape } from "./cluster-metrics.ts";

export interface Metrics {
  registry: Registry;
  /** Observes every request's duration by method, route (the matched pattern, never the raw path) and status. */
  middleware: (req: Request, res: Response, next: NextFunction) => void;
  /** Observes one request answered outside Express (a lean path), as `middleware` would have. */
  observe(method: string, route: string, status: number, seconds: number): void;
  /**
   * Under pm2 cluster mode (service.ts), what /metrics serves instead of `registry` alone: the sum over the
   * app's workers (cluster-metrics.ts).
   */
  scrape?: () => Promise<ClusterScrape>;
}

export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Duration of HTTP requests by method, route and status",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    middleware(req, res, next) {
      const start = process.hrtime.bigint();
      res.on("finish", () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        // the route pattern keeps label cardinality bounded: /videos/:filename, not one label per file
        const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "(unmatched)";
        duration.observe({ method: req.method, route, status_code: String(res.statusCode) }, seconds);
      });
      next();
    },
    observe(method, route, status, seconds) {
      duration.observe({ method, route, status_code: String(status) }, seconds);
    },
  };
}
