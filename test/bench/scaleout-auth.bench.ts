import { AUTH_CONNECTIONS, expectAuthAnswer, query } from "./auth-support.ts";
import type { Benchmark } from "./frame.ts";
import {
  AUTH_DOMAIN,
  AUTH_PASSWORD,
  AUTH_SERVICE_AUTHORIZATION,
  AUTH_USER,
  BASELINE_WORKERS,
  clusterSide,
  countedSide,
  PROJECT_WORKERS,
  startAuthClusters,
  workers,
} from "./scaleout-support.ts";

const PATH = query("check_password", { user: AUTH_USER, server: AUTH_DOMAIN, pass: AUTH_PASSWORD });
/** Enough requests that every worker (round-robin) has verified once and cached the success. */
const WARM_REQUESTS = 4 * PROJECT_WORKERS;

/** What a second auth worker adds to MongooseIM's steady state: one user's password checked from the cache. */
export const benchmark: Benchmark = {
  name: "scaleout-auth",
  figure: "req/s",
  description:
    `GET check_password of one user, success cache warm, by wrk, ${AUTH_CONNECTIONS} connections: auth as ` +
    `pm2 cluster mode runs it with ${workers(PROJECT_WORKERS)} vs ${workers(BASELINE_WORKERS)}; the ratio ` +
    "is the scale factor (wrk on the same cores)",
  async start(ctx) {
    const { baseline, project } = await startAuthClusters(ctx);
    for (const s of [baseline, project]) {
      for (let i = 0; i < WARM_REQUESTS; i++) await expectAuthAnswer(s.url + PATH, "true");
    }
    const load = {
      paths: [PATH],
      connections: AUTH_CONNECTIONS,
      headers: { authorization: AUTH_SERVICE_AUTHORIZATION },
      expectStatus: 200,
      expectBody: "true",
    };
    // the path meant: answered from the cache; a verification only where a worker's cached success expired
    const cached = (delta: Record<string, number>, total: number) => {
      const { cached: hits = 0, ok = 0, ...other } = delta;
      if (Object.keys(other).length > 0) return "outcomes other than cached or ok";
      if (hits < total) return "fewer checks answered from the cache than requests answered";
      if (ok > AUTH_CONNECTIONS) return "the cache was bypassed";
      return undefined;
    };
    const counted = { domain: AUTH_DOMAIN, method: "check_password" };
    const side = (n: number, server: typeof baseline) =>
      countedSide(clusterSide(workers(n), server, load), server.url, counted, cached);
    return { project: side(PROJECT_WORKERS, project), baseline: side(BASELINE_WORKERS, baseline) };
  },
};
