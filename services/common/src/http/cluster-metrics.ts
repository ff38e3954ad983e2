// One scrape, the whole service: under pm2 cluster mode a scrape reaches one worker, so the worker that takes
// it asks its siblings for their metrics and answers with the merge (docs/operations.md, "Health and
// metrics"). pm2's cluster primary is the pm2 daemon, not our code, so prom-client's AggregatorRegistry cannot
// ask the workers itself; its `aggregate()` merges what they answer.
//
// Each worker serves its registry as JSON on a Unix socket of its own, `<dir>/<pid>.sock`, where `dir` is
// per pm2 home and app: the worker that takes a scrape lists the directory and asks every socket in parallel,
// directly, without the pm2 daemon (which is busiest exactly while it reloads workers) and without pm2's bus
// (which would hand every worker every other process's log lines too).
import { mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import path from "node:path";
import {
  AggregatorRegistry,
  Gauge,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from "prom-client";

/** The metrics of one process, not of the service: labelled by worker and never summed. */
const PER_WORKER = /^(process_|nodejs_)/;
/** A socket path longer than this does not fit in `sockaddr_un` (108 bytes on Linux, with the final NUL). */
const MAX_SOCKET_PATH = 107;

export interface ClusterScrape {
  text: string;
  /** Workers whose metrics are in `text` (this one included), and workers that should have been. */
  answered: number;
  expected: number;
  /** The worker that answered (its `worker` label). */
  worker: string;
}

export interface ClusterMetrics {
  scrape(): Promise<ClusterScrape>;
  close(): Promise<void>;
}

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/**
 * The pm2 cluster this process is a worker of, from the environment pm2 gives its workers, or undefined
 * outside pm2 cluster mode (a single process, fork mode, tests): then /metrics serves the registry alone.
 */
export function pm2Cluster(env: NodeJS.ProcessEnv): { dir: string; worker: string } | undefined {
  if (env.exec_mode !== "cluster_mode" || !env.PM2_HOME || !env.name || env.NODE_APP_INSTANCE === undefined) {
    return undefined;
  }
  return { dir: path.join(env.PM2_HOME, "metrics", env.name), worker: env.NODE_APP_INSTANCE };
}

/**
 * Serves `registry` to the siblings on `<dir>/<pid>.sock` and merges theirs into each scrape. `worker` (pm2's
 * NODE_APP_INSTANCE, 0 to instances - 1 across reloads) labels the per-process series; a sibling that does
 * not answer within `timeoutMs` is left out of that scrape and counted as missing.
 */
export async function startClusterMetrics(opts: {
  registry: Registry;
  service: string;
  dir: string;
  worker: string;
  timeoutMs: number;
  pid?: number;
}): Promise<ClusterMetrics> {
  const { registry, dir, worker, timeoutMs } = opts;
  const pid = opts.pid ?? process.pid;
  const own = path.join(dir, `${pid}.sock`);
  if (own.length > MAX_SOCKET_PATH) {
    throw new Error(
      `metrics socket path too long for a Unix socket (${own.length} > ${MAX_SOCKET_PATH}): ${own}`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  const ownMetrics = async (): Promise<MetricJson[]> =>
    labelPerWorker((await registry.getMetricsAsJSON()) as MetricJson[], worker);

  const server: Server = createServer((_req, res) => {
    ownMetrics().then(
      (json) => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify(json));
      },
      () => {
        res.statusCode = 500;
        res.end();
      },
    );
  });
  removeIfDead(own, pid); // a socket file left by a killed process of the same pid would block listen
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // exclusive: this worker's own socket, not one the cluster primary would share among the workers
    server.listen({ path: own, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    async scrape() {
      const siblings = readdirSync(dir)
        .filter((f) => f.endsWith(".sock") && f !== `${pid}.sock`)
        .map((f) => path.join(dir, f));
      const [mine, ...theirs] = await Promise.all([
        ownMetrics(),
        ...siblings.map((socket) => askSibling(socket, timeoutMs)),
      ]);
      const answers: MetricJson[][] = [mine as MetricJson[]];
      let expected = 1;
      for (const answer of theirs) {
        if (answer === "gone") continue;
        expected++;
        if (answer !== "missing") answers.push(answer);
      }
      const merged = AggregatorRegistry.aggregate(answers);
      const counts = scrapeWorkers(opts.service, answers.length, expected);
      const text = `${await merged.metrics()}\n${await counts.metrics()}`;
      return { text, answered: answers.length, expected, worker };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Per-process series get the `worker` label and are kept apart (a same label set, during a reload: first). */
function labelPerWorker(metrics: MetricJson[], worker: string): MetricJson[] {
  return metrics.map((m) =>
    PER_WORKER.test(m.name)
      ? {
          ...m,
          aggregator: "first",
          values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker } })),
        }
      : m,
  );
}

/** A sibling's metrics; "gone" when nothing listens there any more, "missing" when it did not answer. */
function askSibling(socket: string, timeoutMs: number): Promise<MetricJson[] | "gone" | "missing"> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/", agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as MetricJson[]) : "missing");
        } catch {
          resolve("missing");
        }
      });
      res.on("error", () => resolve("missing"));
    });
    // the whole exchange is bounded, not only its idle time: a slow sibling costs one timeout per scrape
    const deadline = setTimeout(() => req.destroy(new Error("timeout")), timeoutMs);
    req.on("close", () => clearTimeout(deadline));
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      // nothing listens there: a worker killed before it could remove its socket (its file goes once its pid
      // is free; a live pid is another process that reused it)
      if (err.code === "ECONNREFUSED" || err.code === "ENOENT") {
        removeIfDead(socket, Number.parseInt(path.basename(socket), 10));
        resolve("gone");
      } else resolve("missing");
    });
    req.end();
  });
}

/** Removes the socket file of a process that no longer runs (killed before it could); true if it is gone. */
function removeIfDead(socket: string, pid: number): boolean {
  try {
    process.kill(pid, 0);
    if (pid !== process.pid) return false; // alive: a sibling still starting, or stuck
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EPERM") return false;
  }
  try {
    unlinkSync(socket);
  } catch {
    // already removed
  }
  return true;
}

/**
 * `sidecars_scrape_workers`: the answering worker's count of this one scrape, in a registry of its own so that
 * no sibling's count is summed in.
 */
function scrapeWorkers(service: string, answered: number, expected: number): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  const gauge = new Gauge({
    name: "sidecars_scrape_workers",
    help: "Workers whose metrics this scrape sums (answered) or lacks (missing: no answer in time)",
    labelNames: ["state"] as const,
    registers: [registry],
  });
  gauge.set({ state: "answered" }, answered);
  gauge.set({ state: "missing" }, expected - answered);
  return registry;
}
