import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { projectRoot } from "#common/paths.ts";
import { nodeArgs } from "../../ecosystem.config.js";

/**
 * A server under load runs in its own process, started with the same Node binary as the bench, so the load
 * generator never shares its event loop.
 */

export interface ChildServerOptions {
  name: string;
  /** Script path relative to the repository root, run with the bench's Node binary. */
  script?: string;
  /** Another program to run instead of a Node script (e.g. nginx), with `args`. */
  program?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Base URL the server will answer on, e.g. http://127.0.0.1:1234 */
  url: string;
  /** Polled until it answers 200. */
  readyPath: string;
  readyTimeoutMs?: number;
}

export interface ChildServer {
  name: string;
  url: string;
  pid: number | undefined;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

const POLL_MS = 200;
const OUTPUT_TAIL = 4000;
const live = new Set<ChildProcess>();
// last resort when the bench dies without its cleanups: no server outlives it
process.once("exit", () => {
  for (const child of live) child.kill("SIGTERM");
});

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function answers200(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * The Node flags pm2 gives the service whose main.ts is among `argv` (ecosystem.config.js `nodeArgs`; the
 * cluster script names it as an argument): a service is measured as it runs.
 */
function serviceNodeArgs(argv: readonly string[]): string[] {
  for (const arg of argv) {
    const name = /^services\/([a-z-]+)\/src\/main\.ts$/.exec(arg)?.[1];
    if (name) return nodeArgs[name] ?? [];
  }
  return [];
}

export async function startChildServer(o: ChildServerOptions): Promise<ChildServer> {
  if (!o.program === !o.script) throw new Error(`${o.name}: give either a script or a program`);
  // BENCH_CPU_PROF_DIR: every Node server writes a V8 CPU profile there when it stops (`node --cpu-prof`)
  const profile = process.env.BENCH_CPU_PROF_DIR
    ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF_DIR]
    : [];
  const [file, args] = o.program
    ? [o.program, o.args ?? []]
    : [
        process.execPath,
        [
          ...profile,
          ...serviceNodeArgs([o.script as string, ...(o.args ?? [])]),
          o.script as string,
          ...(o.args ?? []),
        ],
      ];
  const child = spawn(file, args, {
    cwd: projectRoot,
    env: o.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let ready = false;
  let stopping: Promise<void> | undefined;
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  child.once("exit", (code, signal) => {
    live.delete(child);
    // a death before readiness is reported by the start below; this one is during the measurements
    if (ready && stopping === undefined && code !== 0 && signal !== "SIGTERM") {
      console.error(`${o.name} exited (code ${code}, signal ${signal}):\n${output}`);
    }
  });

  const server: ChildServer = {
    name: o.name,
    url: o.url,
    pid: child.pid,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGTERM");
        if (await waitForExit(child, 10_000)) return;
        console.error(`${o.name} ignored SIGTERM for 10 s; killing it`);
        child.kill("SIGKILL");
        await waitForExit(child, 5000);
      })();
      return stopping;
    },
  };

  const timeoutMs = o.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt <= timeoutMs / POLL_MS && Date.now() < deadline; attempt++) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      await server.stop();
      throw new Error(
        `${o.name} stopped before answering ${o.readyPath} ` +
          `(${spawnError?.message ?? `code ${child.exitCode}, signal ${child.signalCode}`}):\n${output}`,
      );
    }
    if (await answers200(o.url + o.readyPath)) {
      ready = true;
      return server;
    }
    await sleep(POLL_MS);
  }
  await server.stop();
  throw new Error(
    `${o.name} did not answer ${o.readyPath} with 200 within ${timeoutMs / 1000} s:\n${output}`,
  );
}
