import type { Benchmark } from "./frame.ts";
import {
  BASELINE_WORKERS,
  clusterSide,
  PROJECT_WORKERS,
  startHttpUtilityClusters,
  workers,
} from "./scaleout-support.ts";
import { expectAnswer } from "./wrk.ts";

/** As attachments-thumbnail: 64 connections, one request in flight on each. */
const CONNECTIONS = 64;

/** What a second http-utility worker adds to downloads of a small hot file (issue 18 item 7). */
export const benchmark: Benchmark = {
  name: "scaleout-http-utility-download",
  figure: "req/s",
  description:
    `GET of an uploaded picture's WebP thumbnail (a few KB) by wrk, ${CONNECTIONS} connections: http-utility ` +
    `as pm2 cluster mode runs it with ${workers(PROJECT_WORKERS)} vs ${workers(BASELINE_WORKERS)}; the ratio ` +
    "is the scale factor (wrk on the same cores: see its cores beside the server's)",
  async start(ctx) {
    const { baseline, project } = await startHttpUtilityClusters(ctx);
    for (const c of [baseline, project]) {
      await expectAnswer(c.service.url + c.thumbnailPath, {
        contentType: /^image\/webp$/,
        body: c.thumbnail,
      });
    }
    const load = { connections: CONNECTIONS, expectStatus: 200 };
    return {
      project: clusterSide(workers(PROJECT_WORKERS), project.service.server, {
        ...load,
        paths: [project.thumbnailPath],
      }),
      baseline: clusterSide(workers(BASELINE_WORKERS), baseline.service.server, {
        ...load,
        paths: [baseline.thumbnailPath],
      }),
    };
  },
};
