// The one pm2 home of the stack, for every command of this project that talks to pm2 (`npm start`,
// `npm run reload`, `npm run pm2`): PM2_HOME when set, else var/pm2 of this checkout. A pm2 command run in
// another home (pm2's own default is ~/.pm2) finds no apps there, and `pm2 reload` or `pm2 start` of
// ecosystem.config.js then starts a second copy of every service beside the one serving, crash-looping on
// its ports. A daemon's sockets, pid files and dump live in its home
// (https://github.com/Unitech/pm2/blob/master/paths.js).
import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import { homedir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fromRoot, projectRoot } from "#common/paths.ts";
import ecosystem from "../ecosystem.config.js";

export const PM2_BIN = createRequire(import.meta.url).resolve("pm2/bin/pm2");

/** The names of the apps of ecosystem.config.js. */
export const APP_NAMES: readonly string[] = ecosystem.apps.map((a) => a.name);

export function pm2Home(env: NodeJS.ProcessEnv = process.env): string {
  return env.PM2_HOME ? path.resolve(env.PM2_HOME) : fromRoot("var/pm2");
}

/** A home as the operator typed it or would: relative to the checkout when inside it. */
export function showHome(home: string): string {
  const rel = path.relative(projectRoot, home);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : home;
}

/** The line of a command that found no stack to talk to. */
export function noStackLine(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.PM2_HOME ? `${showHome(pm2Home(env))} (PM2_HOME)` : "var/pm2 (PM2_HOME unset)";
  return `no stack runs under pm2 home ${home}: start it with \`npm start\` or \`npm run pm2 -- start ecosystem.config.js\``;
}

/** Whether a pm2 daemon answers under `home`: a connection to its RPC socket, which launches nothing. */
export function daemonRuns(home: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path.join(home, "rpc.sock"));
    const done = (runs: boolean) => {
      socket.destroy();
      resolve(runs);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false)); // no socket file, or one left by a daemon that died
    socket.setTimeout(5000, () => done(false));
  });
}

export interface Pm2Process {
  name: string;
  pid: number;
  status: string;
  /** The script's absolute path: which checkout the app runs from. */
  script: string;
}

/** The processes of the daemon under `home`. Only for a home where one runs: pm2 would launch one. */
export async function pm2Processes(home: string): Promise<Pm2Process[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [PM2_BIN, "jlist"], {
    cwd: projectRoot,
    env: { ...process.env, PM2_HOME: home },
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const list = stdout.split("\n").find((line) => line.startsWith("["));
  if (!list) throw new Error(`pm2 jlist under ${home} printed no process list`);
  return (
    JSON.parse(list) as { name: string; pid: number; pm2_env?: { status?: string; pm_exec_path?: string } }[]
  ).map((p) => ({
    name: p.name,
    pid: p.pid,
    status: p.pm2_env?.status ?? "unknown",
    script: p.pm2_env?.pm_exec_path ?? "",
  }));
}

/**
 * Runs pm2's command line in `home` from the checkout, its output the terminal's; resolves with its exit
 * code. Ctrl-C reaches pm2 too (one process group) and this waits for it; a SIGTERM is passed on.
 */
export function runPm2(args: readonly string[], home: string): Promise<number> {
  const child = spawn(process.execPath, [PM2_BIN, ...args], {
    cwd: projectRoot,
    stdio: "inherit",
    env: { ...process.env, PM2_HOME: home },
  });
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  return new Promise((resolve) => {
    child.on("error", () => resolve(1));
    child.on("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}

/** An app of ecosystem.config.js run from this checkout (another checkout's stack is not ours). */
export function isOurs(p: Pm2Process): boolean {
  const rel = path.relative(projectRoot, p.script);
  return APP_NAMES.includes(p.name) && !rel.startsWith("..") && !path.isAbsolute(rel);
}

/**
 * The homes of the pm2 processes of this machine's user that are running: a daemon's process title names
 * its home but is cut to the length of its first command line, so the home is read from its environment,
 * as is pm2-runtime's (`npm start`). Linux only; elsewhere none are found.
 */
function runningHomes(): string[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  const homes = new Set<string>();
  for (const pid of pids) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!/God Daemon|pm2-runtime/.test(cmdline)) continue;
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      const home = environ.find((v) => v.startsWith("PM2_HOME="))?.slice("PM2_HOME=".length);
      if (home) homes.add(path.resolve(home));
    } catch {
      // gone meanwhile, or another user's
    }
  }
  return [...homes];
}

export type StackLocation =
  /** a daemon answers in the home: its processes, this checkout's apps among them or not */
  | { at: "home"; home: string; processes: Pm2Process[] }
  /** none of this checkout's apps in the home, but they run under another */
  | { at: "elsewhere"; home: string; elsewhere: string; processes: Pm2Process[] }
  | { at: "nowhere"; home: string };

/**
 * Where this checkout's stack runs. In the home when a daemon answers there with its apps. Else, when
 * PM2_HOME is unset, under any other home holding them (pm2's default ~/.pm2, where the commands of earlier
 * releases put it, or a running daemon's); with PM2_HOME set, stacks in other homes are the operator's
 * choice (a second stack on other ports), not this one.
 */
export async function locateStack(env: NodeJS.ProcessEnv = process.env): Promise<StackLocation> {
  const home = pm2Home(env);
  const here = (await daemonRuns(home)) ? await pm2Processes(home) : undefined;
  if (here?.some(isOurs)) return { at: "home", home, processes: here };
  if (!env.PM2_HOME) {
    const others = [path.join(homedir(), ".pm2"), ...runningHomes()].filter((h, i, all) => {
      return h !== home && all.indexOf(h) === i;
    });
    const found = await Promise.all(
      others.map(async (h) => {
        if (!(await daemonRuns(h))) return undefined;
        // a daemon this pm2 cannot read (another version, gone meanwhile) holds no stack we could reload
        return { h, list: await pm2Processes(h).catch(() => []) };
      }),
    );
    const theirs = found.find((f) => f?.list.some(isOurs));
    if (theirs) return { at: "elsewhere", home, elsewhere: theirs.h, processes: theirs.list };
  }
  return here ? { at: "home", home, processes: here } : { at: "nowhere", home };
}
