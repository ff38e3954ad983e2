import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
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

let db: TestDatabase;
let home: string;
let env: NodeJS.ProcessEnv;
let ports: { httpUtility: number; auth: number; buddies: number };

const pm2 = (...args: string[]) =>
  run(process.execPath, [PM2, ...args], { cwd: ROOT, env, timeout: 120_000 });

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; exec_mode: string };
}
async function processes(): Promise<Pm2Process[]> {
  const { stdout } = await pm2("jlist");
  return JSON.parse(stdout.slice(stdout.indexOf("["))) as Pm2Process[];
}

beforeAll(async () => {
  db = await createTestDatabase();
  home = await mkdtemp(path.join(tmpdir(), "sidecars-pm2-"));
  ports = { httpUtility: await freePort(), auth: await freePort(), buddies: await freePort() };
  env = {
    PATH: process.env.PATH ?? "",
    HOME: home,
    PM2_HOME: path.join(home, "pm2"),
    SIDECARS_LOG_DIR: path.join(home, "log"),
    DATABASE_URL: db.url,
    HTTP_UTILITY_PORT: String(ports.httpUtility),
    AUTH_PORT: String(ports.auth),
    BUDDIES_ADMIN_PORT: String(ports.buddies),
    HTTP_UTILITY_INSTANCES: "2",
    AUTH_INSTANCES: "2",
    LOG_LEVEL: "info",
  };
  await pm2("start", "ecosystem.config.js", "--env", "test");
  await Promise.all([
    waitForOk(`http://127.0.0.1:${ports.httpUtility}/readyz`),
    waitForOk(`http://127.0.0.1:${ports.auth}/readyz`),
    waitForOk(`http://127.0.0.1:${ports.buddies}/healthz`),
  ]);
});

afterAll(async () => {
  await pm2("kill").catch(() => {});
  await db?.drop();
  await rm(home, { recursive: true, force: true });
});

describe("pm2", () => {
  it("runs http-utility and auth in cluster mode and buddies in fork mode", async () => {
    const list = await processes();
    const modes = list.map((p) => `${p.name}:${p.pm2_env.exec_mode}:${p.pm2_env.status}`).sort();
    expect(modes).toEqual([
      "auth:cluster_mode:online",
      "auth:cluster_mode:online",
      "buddies:fork_mode:online",
      "http-utility:cluster_mode:online",
      "http-utility:cluster_mode:online",
    ]);
  });

  it("reloads under load without losing a request", async () => {
    const before = await processes();
    const targets = [
      `http://127.0.0.1:${ports.httpUtility}/readyz`,
      `http://127.0.0.1:${ports.auth}/readyz`,
      `http://127.0.0.1:${ports.httpUtility}/healthz`,
    ];
    // fetch keeps connections alive, as MongooseIM's pool and the apps do
    const counts = { ok: 0, failed: 0, duringReload: 0 };
    const failures: string[] = [];
    const timeline: string[] = [];
    let reloading = false;
    let stop = false;
    const deadline = Date.now() + 90_000; // bounded whatever happens
    const worker = async (n: number) => {
      for (let i = n; !stop && Date.now() < deadline; i++) {
        const url = targets[i % targets.length] as string;
        try {
          const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
          await r.arrayBuffer();
          if (r.status === 200) counts.ok++;
          else {
            counts.failed++;
            failures.push(`${url}: ${r.status}`);
          }
        } catch (err) {
          counts.failed++;
          failures.push(
            `${new Date().toISOString()} ${url}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? "")}`,
          );
        }
        if (reloading) counts.duringReload++;
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, n) => worker(n)));
    await new Promise((r) => setTimeout(r, 1000));
    reloading = true;
    timeline.push(`reload from ${new Date().toISOString()}`);
    await pm2("reload", "ecosystem.config.js", "--env", "test", "--only", "http-utility,auth");
    reloading = false;
    timeline.push(`reload until ${new Date().toISOString()}`);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await load;

    if (failures.length > 0) {
      // what the services said about it, for whoever reads the failure
      const logs = await readdir(path.join(home, "log"));
      const said = await Promise.all(
        logs.map(
          async (f) => `--- ${f}\n${(await readFile(path.join(home, "log", f), "utf8")).slice(-4000)}`,
        ),
      );
      expect.soft([...timeline, ...failures, ...said].join("\n")).toBe("");
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.duringReload).toBeGreaterThan(50);
    const after = await processes();
    const pids = (list: Pm2Process[], name: string) => list.filter((p) => p.name === name).map((p) => p.pid);
    for (const name of ["http-utility", "auth"]) {
      expect(pids(after, name)).toHaveLength(2);
      expect(pids(after, name).some((pid) => pids(before, name).includes(pid))).toBe(false); // all replaced
    }
  });
});
