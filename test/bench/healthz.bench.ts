import { freePort } from "../support/free-port.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { expectAnswer, wrkSide } from "./wrk.ts";

const BODY = JSON.stringify({ status: "ok" });
const ANSWER = { contentType: /^application\/json\b/, body: BODY };

/** What the whole bootstrap (Express, pino-http, metrics) costs per request against bare node:http. */
export const benchmark: Benchmark = {
  name: "healthz",
  figure: "req/s",
  description: "GET /healthz: http-utility (real bootstrap, APP_ENV=test) vs bare node:http, same body",
  async start({ config, defer }) {
    const projectPort = await freePort();
    const project = await startChildServer({
      name: "http-utility",
      script: "services/http-utility/src/main.ts",
      // no DATABASE_URL of ours: the service starts or reuses the embedded PostgreSQL under var/postgres
      env: { ...process.env, APP_ENV: "test", HTTP_UTILITY_PORT: String(projectPort) },
      url: `http://127.0.0.1:${projectPort}`,
      readyPath: "/healthz",
    });
    defer(project.stop);
    const baselinePort = await freePort();
    const baseline = await startChildServer({
      name: "bare node:http",
      script: "test/bench/bare-http-server.ts",
      args: [String(baselinePort), "application/json", BODY],
      url: `http://127.0.0.1:${baselinePort}`,
      readyPath: "/healthz",
    });
    defer(baseline.stop);

    const sides = { project, baseline };
    for (const s of Object.values(sides)) await expectAnswer(`${s.url}/healthz`, ANSWER);
    const load = {
      connections: config.connections,
      paths: ["/healthz"],
      expectStatus: 200,
      expectBody: BODY,
    };
    const tree = (s: { pid: number | undefined }) => () => processTree(s.pid as number);
    return {
      project: wrkSide("http-utility", { ...load, base: project.url }, tree(project)),
      baseline: wrkSide("node:http", { ...load, base: baseline.url }, tree(baseline)),
    };
  },
};
