import cluster from "node:cluster";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

// A service as pm2 cluster mode runs it (ecosystem.config.js: `exec_mode: "cluster"`): a node:cluster primary
// that forks `workers` workers of the script and shares the listening socket among them (round-robin, Node's
// default on Linux, as under pm2), each worker with the environment pm2 gives its workers, so that the
// service's cluster-wide /metrics (services/common/src/http/cluster-metrics.ts) works as deployed. The bench
// runs it as a child server (child-server.ts): SIGTERM stops the workers, then the primary.
// Usage: node test/bench/cluster-server.ts <workers> <script> [args…]

const [workersText, script, ...args] = process.argv.slice(2);
const workers = Number(workersText);
if (!Number.isInteger(workers) || workers < 1 || !script) {
  console.error("usage: cluster-server.ts <workers> <script> [args…]");
  process.exit(2);
}

const pm2Home = mkdtempSync(path.join(os.tmpdir(), "sidecars-bench-pm2-"));
const name = path.basename(path.dirname(path.dirname(path.resolve(script))));
cluster.setupPrimary({ exec: script, args });
let stopping = false;
for (let i = 0; i < workers; i++) {
  const worker = cluster.fork({
    exec_mode: "cluster_mode",
    PM2_HOME: pm2Home,
    name,
    NODE_APP_INSTANCE: String(i),
  });
  worker.once("exit", (code, signal) => {
    if (!stopping) {
      console.error(`worker ${i} exited (code ${code}, signal ${signal}): stopping`);
      stop(1);
    }
  });
}

function stop(code: number): void {
  stopping = true;
  const live = Object.values(cluster.workers ?? {});
  for (const w of live) w?.process.kill("SIGTERM");
  let left = live.length;
  const done = () => {
    rmSync(pm2Home, { recursive: true, force: true });
    process.exit(code);
  };
  if (left === 0) done();
  for (const w of live) {
    w?.once("exit", () => {
      if (--left === 0) done();
    });
  }
  setTimeout(done, 12_000).unref();
}

process.once("SIGTERM", () => stop(0));
process.once("SIGINT", () => stop(0));
