import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT, waitForOk } from "./support/processes.ts";

const run = promisify(execFile);
const PM2 = createRequire(import.meta.url).resolve("pm2/bin/pm2");

/** A GET on a connection of its own, so that pm2's cluster spreads the requests over the workers. */
function getOnce(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in 10 s`)));
    req.on("error", reject);
  });
}

/** The sum of the series of `name` whose labels include `labels` (e.g. `route="/healthz"`). */
function sum(text: string, name: string, labels: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((total, l) => total + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

describe("/metrics of http-utility under pm2 cluster mode, 2 workers", () => {
  let db: TestDatabase;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let base: string;
  const pm2 = (...args: string[]) =>
    run(process.execPath, [PM2, ...args], { cwd: ROOT, env, timeout: 120_000 });

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), "sidecars-metrics-"));
    const port = await freePort();
    env = {
      PATH: process.env.PATH ?? "",
      HOME: home,
      PM2_HOME: path.join(home, "pm2"),
      SIDECARS_LOG_DIR: path.join(home, "log"),
      DATABASE_URL: db.url,
      HTTP_UTILITY_PORT: String(port),
      HTTP_UTILITY_INTERNAL_PORT: String(await freePort()),
      HTTP_UTILITY_INSTANCES: "2",
      LOG_LEVEL: "info",
    };
    base = `http://127.0.0.1:${port}`;
    await pm2("start", "ecosystem.config.js", "--env", "test", "--only", "http-utility");
    await waitForOk(`${base}/readyz`, 90_000);
    // both workers up: each scrape then counts two (pm2 starts them one after the other)
    const until = Date.now() + 90_000;
    while ((await getOnce(`${base}/metrics`)).headers["x-metrics-workers"] !== "2/2") {
      if (Date.now() > until) throw new Error("the second worker did not come up in 90 s");
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 240_000);

  afterAll(async () => {
    if (env) await pm2("kill").catch(() => {});
    if (home) await rm(home, { recursive: true, force: true });
    await db?.drop();
  });

  it("counts every request of the service in every scrape, whichever worker answers it", async () => {
    const requests = 60;
    for (let i = 0; i < requests; i++) expect((await getOnce(`${base}/healthz`)).status).toBe(200);

    const answeredBy = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const scrape = await getOnce(`${base}/metrics`);
      expect(scrape.status).toBe(200);
      expect(scrape.headers["x-metrics-workers"]).toBe("2/2");
      expect(sum(scrape.body, "http_request_duration_seconds_count", 'route="/healthz"')).toBe(requests);
      expect(scrape.body).toMatch(/^sidecars_scrape_workers\{state="missing",service="http-utility"\} 0$/m);
      // one memory series per worker, told apart by `worker`
      const workers = scrape.body
        .split("\n")
        .filter((l) => l.startsWith("process_resident_memory_bytes{"))
        .map((l) => /worker="(\d+)"/.exec(l)?.[1]);
      expect(workers.sort()).toEqual(["0", "1"]);
      answeredBy.add(String(scrape.headers["x-metrics-worker"]));
    }
    expect([...answeredBy].sort()).toEqual(["0", "1"]);
  });

  it("keeps answering scrapes, each within a few seconds, while pm2 reloads the workers", async () => {
    let reloading = true;
    const reload = pm2("reload", "http-utility").finally(() => {
      reloading = false;
    });
    const seen: string[] = [];
    const slow: string[] = [];
    while (reloading) {
      const t0 = Date.now();
      const scrape = await getOnce(`${base}/metrics`);
      expect(scrape.status).toBe(200);
      if (Date.now() - t0 > 5000) slow.push(`${Date.now() - t0} ms`);
      seen.push(String(scrape.headers["x-metrics-workers"]));
    }
    await reload;
    expect(slow).toEqual([]);
    expect(seen.length).toBeGreaterThan(3);
    // once reloaded, every scrape holds both new workers again
    const until = Date.now() + 60_000;
    while ((await getOnce(`${base}/metrics`)).headers["x-metrics-workers"] !== "2/2" && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
    }
    expect((await getOnce(`${base}/metrics`)).headers["x-metrics-workers"]).toBe("2/2");
  }, 180_000);
});
