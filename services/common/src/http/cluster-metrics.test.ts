import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Histogram } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ClusterMetrics, pm2Cluster, startClusterMetrics } from "./cluster-metrics.ts";
import { createMetrics } from "./metrics.ts";

/** A worker's registry that has seen `requests` requests to /healthz. */
function workerRegistry(requests: number) {
  const metrics = createMetrics("test");
  const duration = metrics.registry.getSingleMetric("http_request_duration_seconds") as Histogram;
  for (let i = 0; i < requests; i++) {
    duration.observe({ method: "GET", route: "/healthz", status_code: "200" }, 0.002);
  }
  return metrics.registry;
}

/** The value of each line of `text` that starts with `series` (its name and labels). */
const values = (text: string, series: RegExp) =>
  text
    .split("\n")
    .filter((l) => series.test(l))
    .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));

describe("metrics summed over pm2 cluster workers", () => {
  let dir: string;
  const started: ClusterMetrics[] = [];
  const servers: Server[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "cm-"));
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  // two workers in one process, each with its own registry and socket (the parent's pid stands for the
  // second, since a socket's name is the pid of a process that runs)
  async function twoWorkers(timeoutMs = 1000) {
    const first = await startClusterMetrics({
      registry: workerRegistry(3),
      service: "test",
      dir,
      worker: "0",
      timeoutMs,
    });
    const second = await startClusterMetrics({
      registry: workerRegistry(2),
      service: "test",
      dir,
      worker: "1",
      timeoutMs,
      pid: process.ppid,
    });
    started.push(first, second);
    return [first, second] as const;
  }

  it("sums request counts over the workers, whichever answers, and keeps process metrics per worker", async () => {
    for (const worker of await twoWorkers()) {
      const scrape = await worker.scrape();
      expect({ answered: scrape.answered, expected: scrape.expected }).toEqual({ answered: 2, expected: 2 });
      expect(values(scrape.text, /^http_request_duration_seconds_count\{.*route="\/healthz"/)).toEqual([5]);
      expect(
        values(scrape.text, /^http_request_duration_seconds_bucket\{.*le="0\.005".*route="\/healthz"/),
      ).toEqual([5]);
      const memory = scrape.text.split("\n").filter((l) => l.startsWith("process_resident_memory_bytes{"));
      expect(memory.map((l) => /worker="(\d)"/.exec(l)?.[1]).sort()).toEqual(["0", "1"]);
      expect(scrape.text).toMatch(/^sidecars_scrape_workers\{state="answered",service="test"\} 2$/m);
      expect(scrape.text).toMatch(/^sidecars_scrape_workers\{state="missing",service="test"\} 0$/m);
    }
  });

  it("answers within its bound without a sibling that does not answer, and says one is missing", async () => {
    const [first] = await twoWorkers(300);
    const stuck = createServer(() => {}); // takes the request, never answers
    servers.push(stuck);
    await new Promise<void>((r) => stuck.listen({ path: path.join(dir, "1.sock"), exclusive: true }, r));
    const t0 = Date.now();
    const scrape = await first.scrape();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect({ answered: scrape.answered, expected: scrape.expected }).toEqual({ answered: 2, expected: 3 });
    expect(values(scrape.text, /^http_request_duration_seconds_count\{.*route="\/healthz"/)).toEqual([5]);
    expect(scrape.text).toMatch(/^sidecars_scrape_workers\{state="missing",service="test"\} 1$/m);
  });

  it("forgets the socket of a worker that was killed, and removes its own when it stops", async () => {
    const dead = spawnSync(process.execPath, [
      "-e",
      "process.stdout.write(String(process.pid))",
    ]).stdout.toString();
    const left = path.join(dir, `${dead}.sock`);
    writeFileSync(left, "");
    const [first, second] = await twoWorkers();
    const scrape = await first.scrape();
    expect({ answered: scrape.answered, expected: scrape.expected }).toEqual({ answered: 2, expected: 2 });
    expect(existsSync(left)).toBe(false);

    await second.close();
    expect(existsSync(path.join(dir, `${process.ppid}.sock`))).toBe(false);
    const alone = await first.scrape();
    expect({ answered: alone.answered, expected: alone.expected }).toEqual({ answered: 1, expected: 1 });
    expect(values(alone.text, /^http_request_duration_seconds_count\{.*route="\/healthz"/)).toEqual([3]);
  });

  it("is on only in pm2 cluster mode", () => {
    const pm2 = { exec_mode: "cluster_mode", PM2_HOME: "/srv/pm2", name: "auth", NODE_APP_INSTANCE: "1" };
    expect(pm2Cluster(pm2)).toEqual({ dir: "/srv/pm2/metrics/auth", worker: "1" });
    expect(pm2Cluster({ ...pm2, exec_mode: "fork_mode" })).toBeUndefined();
    expect(pm2Cluster({})).toBeUndefined();
  });
});
