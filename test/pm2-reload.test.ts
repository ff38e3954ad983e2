import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
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

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

interface Pm2Process {
  name: string;
  pid: number;
  pm2_env: { status: string; exec_mode: string };
}

/** `pm2 jlist` in a home where a daemon runs (in any other, pm2 would launch one). */
async function processes(pm2Home: string, env: NodeJS.ProcessEnv): Promise<Pm2Process[]> {
  const { stdout } = await run(process.execPath, [PM2, "jlist"], {
    cwd: ROOT,
    env: { ...env, PM2_HOME: pm2Home },
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.slice(stdout.indexOf("["))) as Pm2Process[];
}

const pids = (list: Pm2Process[], name: string) => list.filter((p) => p.name === name).map((p) => p.pid);

/**
 * `npm run <script>` as an operator types it, in `cwd`. npm's update check, which would go to the registry,
 * is off.
 */
function npmRun(cwd: string, env: NodeJS.ProcessEnv, ...args: string[]) {
  return run("npm", ["run", ...args], {
    cwd,
    env: { ...env, npm_config_update_notifier: "false" },
    timeout: 120_000,
  });
}

/** Keeps 8 clients busy on `targets` from 1 s before `action` to 1 s after it; what failed, and when. */
async function underLoad(targets: string[], action: () => Promise<unknown>) {
  // fetch keeps connections alive, as MongooseIM's pool and the apps do
  const counts = { ok: 0, failed: 0, duringAction: 0 };
  const failures: string[] = [];
  let acting = false;
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
      if (acting) counts.duringAction++;
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, (_, n) => worker(n)));
  await new Promise((r) => setTimeout(r, 1000));
  acting = true;
  const timeline = [`reload from ${new Date().toISOString()}`];
  try {
    await action();
  } finally {
    acting = false;
    timeline.push(`reload until ${new Date().toISOString()}`);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await load;
  }
  return { counts, failures, timeline };
}

/** What the services said, for whoever reads a failure. */
async function serviceLogs(dir: string): Promise<string[]> {
  const logs = await readdir(dir).catch(() => []);
  return Promise.all(
    logs.map(async (f) => `--- ${f}\n${(await readFile(path.join(dir, f), "utf8")).slice(-4000)}`),
  );
}

/** The lines a command wrote itself, without npm's own (`npm error …`, `npm warn …`). */
const ownLines = (stderr: string) =>
  stderr.split("\n").filter((l) => l.trim() !== "" && !/^npm (error|warn|notice|ERR!)/.test(l));

describe("pm2 started with `pm2 start ecosystem.config.js` and its own PM2_HOME", () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  let ports: { httpUtility: number; auth: number; buddies: number };
  const pm2 = (...args: string[]) =>
    run(process.execPath, [PM2, ...args], { cwd: ROOT, env, timeout: 120_000 });

  beforeAll(async () => {
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
    if (env) await pm2("kill").catch(() => {});
    if (home) await rm(home, { recursive: true, force: true });
  });

  it("runs http-utility and auth in cluster mode and buddies in fork mode", async () => {
    const list = await processes(env.PM2_HOME as string, env);
    const modes = list.map((p) => `${p.name}:${p.pm2_env.exec_mode}:${p.pm2_env.status}`).sort();
    expect(modes).toEqual([
      "auth:cluster_mode:online",
      "auth:cluster_mode:online",
      "buddies:fork_mode:online",
      "http-utility:cluster_mode:online",
      "http-utility:cluster_mode:online",
    ]);
  });

  it("`npm run reload` reloads it under load without losing a request", async () => {
    const before = await processes(env.PM2_HOME as string, env);
    const { counts, failures, timeline } = await underLoad(
      [
        `http://127.0.0.1:${ports.httpUtility}/readyz`,
        `http://127.0.0.1:${ports.auth}/readyz`,
        `http://127.0.0.1:${ports.httpUtility}/healthz`,
      ],
      () => npmRun(ROOT, env, "reload", "--", "--env", "test", "--only", "http-utility,auth"),
    );
    if (failures.length > 0) {
      const said = await serviceLogs(path.join(home, "log"));
      expect.soft([...timeline, ...failures, ...said].join("\n")).toBe("");
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.duringAction).toBeGreaterThan(50);
    const after = await processes(env.PM2_HOME as string, env);
    for (const name of ["http-utility", "auth"]) {
      expect(pids(after, name)).toHaveLength(2);
      expect(pids(after, name).some((pid) => pids(before, name).includes(pid))).toBe(false); // all replaced
    }
    expect(existsSync(path.join(home, ".pm2")), "pm2's default home was used").toBe(false);
  });
});

/**
 * The pm2 daemons running whose home is under `dir`, as `<pid> <home>` (a daemon's home is in its
 * environment: its process title, which names it too, is cut short).
 */
function daemonsUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("God Daemon")) continue;
      const home = readFileSync(`/proc/${pid}/environ`, "utf8")
        .split("\0")
        .find((v) => v.startsWith("PM2_HOME="))
        ?.slice("PM2_HOME=".length);
      if (home?.startsWith(dir)) found.push(`${pid} ${home}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Stops what a failed test may have left: a SIGTERM has a pm2 daemon stop its apps, then itself. */
async function stopDaemonsUnder(dir: string): Promise<void> {
  for (const d of daemonsUnder(dir)) process.kill(Number.parseInt(d, 10), "SIGTERM");
  const until = Date.now() + 60_000;
  while (daemonsUnder(dir).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
}

// `npm start` and `npm run reload` as a developer runs them, with no PM2_HOME: the stack's pm2 home is then
// var/pm2 of the checkout. A checkout of its own (the code copied, node_modules linked) keeps that home, and
// the stack's ports, away from a developer's running stack and from the other test files.
describe("`npm start`, then `npm run reload` in another shell", () => {
  const work = mkdtempSync(path.join(tmpdir(), "sidecars-reload-"));
  const checkout = path.join(work, "checkout");
  const logDir = path.join(work, "log");
  const varPm2 = path.join(checkout, "var/pm2");
  let env: NodeJS.ProcessEnv;
  let ports: { httpUtility: number; auth: number; buddies: number };
  let stack: ChildProcess | undefined;
  let output = "";

  beforeAll(async () => {
    mkdirSync(path.join(work, "home"), { recursive: true });
    for (const f of ["package.json", "ecosystem.config.js", "scripts", "services", "config", "migrations"]) {
      cpSync(path.join(ROOT, f), path.join(checkout, f), { recursive: true });
    }
    symlinkSync(path.join(ROOT, "node_modules"), path.join(checkout, "node_modules"));
    ports = { httpUtility: await freePort(), auth: await freePort(), buddies: await freePort() };
    env = {
      PATH: process.env.PATH ?? "",
      HOME: path.join(work, "home"),
      APP_ENV: "test",
      SIDECARS_LOG_DIR: logDir,
      DATABASE_URL: db.url,
      HTTP_UTILITY_PORT: String(ports.httpUtility),
      AUTH_PORT: String(ports.auth),
      BUDDIES_ADMIN_PORT: String(ports.buddies),
      HTTP_UTILITY_INSTANCES: "2",
      AUTH_INSTANCES: "2",
      LOG_LEVEL: "info",
    };
  });

  afterAll(async () => {
    if (stack?.pid && stack.exitCode === null) {
      process.kill(-stack.pid, "SIGINT"); // Ctrl-C
      const until = Date.now() + 60_000;
      while (stack.exitCode === null && stack.signalCode === null && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
      }
      if (stack.exitCode === null && stack.signalCode === null) process.kill(-stack.pid, "SIGKILL");
    }
    await stopDaemonsUnder(work);
    await rm(work, { recursive: true, force: true });
  });

  it("with no stack running, `npm run reload` says so in one line, exits 1 and starts nothing", async () => {
    const failed = await npmRun(checkout, env, "reload").then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(ownLines(failed?.stderr ?? "")).toEqual([
      "reload: no stack runs under pm2 home var/pm2 (PM2_HOME unset): start it with `npm start` or `npm run pm2 -- start ecosystem.config.js`",
    ]);
    expect(existsSync(path.join(varPm2, "rpc.sock"))).toBe(false);
    expect(existsSync(path.join(env.HOME as string, ".pm2"))).toBe(false);
    expect(daemonsUnder(work)).toEqual([]);
  });

  it("reloads the stack of `npm start` under load without losing a request, and no second one starts", async () => {
    stack = spawn(process.execPath, [path.join(checkout, "scripts/start.ts")], {
      cwd: checkout,
      detached: true, // its own process group, like a terminal's foreground job
      stdio: ["ignore", "pipe", "pipe"],
      env,
    });
    const keep = (c: Buffer) => {
      output = (output + c.toString()).slice(-20_000);
    };
    stack.stdout?.on("data", keep);
    stack.stderr?.on("data", keep);
    await Promise.all([
      waitForOk(`http://127.0.0.1:${ports.httpUtility}/readyz`, 90_000),
      waitForOk(`http://127.0.0.1:${ports.auth}/readyz`, 90_000),
      waitForOk(`http://127.0.0.1:${ports.buddies}/healthz`, 90_000),
    ]).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${output}`);
    });
    expect(existsSync(path.join(varPm2, "rpc.sock")), "npm start's pm2 home is var/pm2 of its checkout").toBe(
      true,
    );

    const before = await processes(varPm2, env);
    let reload: { stdout: string; stderr: string } | undefined;
    const { counts, failures, timeline } = await underLoad(
      [
        `http://127.0.0.1:${ports.httpUtility}/readyz`,
        `http://127.0.0.1:${ports.auth}/readyz`,
        `http://127.0.0.1:${ports.httpUtility}/healthz`,
      ],
      async () => {
        reload = await npmRun(checkout, env, "reload");
      },
    );
    if (failures.length > 0) {
      const said = await serviceLogs(logDir);
      expect.soft([...timeline, ...failures, ...said, output].join("\n")).toBe("");
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.duringAction).toBeGreaterThan(50);
    expect(reload?.stdout).toMatch(/\[buddies\]\(\d+\) ✓/);

    // the same five processes' successors, in the one daemon: npm start's
    const after = await processes(varPm2, env);
    expect(after.map((p) => `${p.name}:${p.pm2_env.status}`).sort()).toEqual([
      "auth:online",
      "auth:online",
      "buddies:online",
      "http-utility:online",
      "http-utility:online",
    ]);
    for (const name of ["http-utility", "auth", "buddies"]) {
      expect(pids(after, name).some((pid) => pids(before, name).includes(pid))).toBe(false); // all replaced
    }
    expect(existsSync(path.join(env.HOME as string, ".pm2")), "pm2's default home was used").toBe(false);
    expect(daemonsUnder(work), "a pm2 daemon beside npm start's").toEqual([]);

    // and a second `npm start` in the same checkout refuses, in one line, before starting anything
    const again = await run(process.execPath, [path.join(checkout, "scripts/start.ts")], {
      cwd: checkout,
      env,
      timeout: 120_000,
    }).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(again?.code).toBe(1);
    expect(ownLines(again?.stderr ?? "")).toEqual([
      "the stack already runs under pm2 home var/pm2: reload it with `npm run reload`, or stop it first",
    ]);
    expect((await processes(varPm2, env)).map((p) => p.pid).sort()).toEqual(after.map((p) => p.pid).sort());
  }, 240_000); // a stack's start (up to 90 s on a loaded machine), the reload, a refused second start
});
