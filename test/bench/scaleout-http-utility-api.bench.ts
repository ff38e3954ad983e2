import { AUTHORIZATION } from "./attachments-support.ts";
import type { Benchmark } from "./frame.ts";
import {
  BASELINE_WORKERS,
  clusterSide,
  PROJECT_WORKERS,
  startHttpUtilityClusters,
  workers,
} from "./scaleout-support.ts";
import { expectAnswer } from "./wrk.ts";

const CONNECTIONS = 64;
const PATH = "/api/v1/attachments/videos";

/**
 * What a second http-utility worker adds to an app's authenticated call: the caller's videos list, a Basic
 * check (the success cache of services/http-utility/src/callers.ts, warm after the first request of each
 * worker) and a query of `attachments` per request. The bench user has no video: the answer is an empty page,
 * so the figure is the app-call path, not the page's serialisation.
 */
export const benchmark: Benchmark = {
  name: "scaleout-http-utility-api",
  figure: "req/s",
  description:
    `GET ${PATH} (Basic auth, the caller's videos) by wrk, ${CONNECTIONS} connections: http-utility as pm2 ` +
    `cluster mode runs it with ${workers(PROJECT_WORKERS)} vs ${workers(BASELINE_WORKERS)}; the ratio is the ` +
    "scale factor (wrk and PostgreSQL on the same cores)",
  async start(ctx) {
    const { baseline, project } = await startHttpUtilityClusters(ctx);
    const headers = { authorization: AUTHORIZATION };
    const body = JSON.stringify({ videos: [], next: null });
    for (const c of [baseline, project]) {
      await expectAnswer(c.service.url + PATH, { contentType: /^application\/json\b/, body }, headers);
    }
    const load = { connections: CONNECTIONS, paths: [PATH], headers, expectStatus: 200, expectBody: body };
    return {
      project: clusterSide(workers(PROJECT_WORKERS), project.service.server, load),
      baseline: clusterSide(workers(BASELINE_WORKERS), baseline.service.server, load),
    };
  },
};
