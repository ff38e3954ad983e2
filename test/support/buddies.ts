import { type ChildProcess, fork } from "node:child_process";
import { openSync } from "node:fs";
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { sha256 } from "./bytes.ts";
import { freePort } from "./free-port.ts";
import { ROOT } from "./processes.ts";

/**
 * The buddies service for the end-to-end suites: a config folder (default.json and a test.json built by the
 * test), and runner processes started as pm2 starts them (main.ts with an IPC channel), each logging to its
 * own file so a failing test can print what the runners said.
 */

export const ADMIN_KEY = "admin-key-for-tests";
export const HOOK_KEY = "hook-key-for-tests";
export const adminAuth = `Basic ${Buffer.from(`ops:${ADMIN_KEY}`).toString("base64")}`;

/** `<dir>/config` for the buddies service: the test's own `test.json` with the admin and hook keys added. */
export async function writeBuddiesConfig(dir: string, testJson: Record<string, unknown>): Promise<void> {
  await mkdir(path.join(dir, "config"), { recursive: true });
  await copyFile(path.join(ROOT, "config/default.json"), path.join(dir, "config/default.json"));
  const services = (testJson.services ?? {}) as Record<string, Record<string, unknown>>;
  const json = {
    ...testJson,
    log: { level: "info", pretty: false },
    services: {
      ...services,
      buddies: {
        ...services.buddies,
        admins: { ops: { sha256: sha256(ADMIN_KEY) } },
        hookKeys: { monitoring: { sha256: sha256(HOOK_KEY) } },
      },
    },
  };
  await writeFile(path.join(dir, "config/test.json"), JSON.stringify(json, null, 2));
}

export interface BuddiesProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  logs(): Promise<string>;
  /** The JSON log lines so far. */
  lines(): Promise<Record<string, unknown>[]>;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL: no goodbye, the leases stay until they expire. */
  kill9(): Promise<void>;
}

export async function startBuddies(o: {
  dir: string;
  databaseUrl: string;
  name: string;
}): Promise<BuddiesProcess> {
  const port = await freePort();
  const logFile = path.join(o.dir, `${o.name}.log`);
  const fd = openSync(logFile, "a");
  const child = fork(path.join(ROOT, "services/buddies/src/main.ts"), [], {
    env: {
      PATH: process.env.PATH ?? "",
      APP_ENV: "test",
      CONFIG_DIR: path.join(o.dir, "config"),
      DATABASE_URL: o.databaseUrl,
      BUDDIES_ADMIN_PORT: String(port),
    },
    stdio: ["ignore", fd, fd, "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const logs = () => readFile(logFile, "utf8").catch(() => "");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      async () => reject(new Error(`${o.name} not ready after 30 s:\n${await logs()}`)),
      30_000,
    );
    child.on("message", (m) => {
      if (m === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", async (code) => {
      clearTimeout(timer);
      reject(new Error(`${o.name} exited (${code}) before it was ready:\n${await logs()}`));
    });
  });
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    child,
    logFile,
    logs,
    async lines() {
      return (await logs())
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    stop: () => kill("SIGTERM"),
    kill9: () => kill("SIGKILL"),
  };
}

export interface BuddyState {
  jid: string;
  state: string;
  lastError: string | null;
  connectedSince: string | null;
  stopped: boolean;
  reconnects: number;
  owner: { id: string; host: string; pid: number } | null;
}

/** `GET /api/buddies` of a runner, as an admin. */
export async function buddiesOf(url: string): Promise<BuddyState[]> {
  const res = await fetch(`${url}/api/buddies`, { headers: { authorization: adminAuth } });
  if (!res.ok) throw new Error(`GET /api/buddies: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { buddies: BuddyState[] }).buddies;
}

/** The full JIDs ejabberd says are connected. */
export async function connectedUsers(
  ctl: (cmd: string) => Promise<{ code: number; out: string }>,
): Promise<string[]> {
  const r = await ctl("connected_users");
  if (r.code !== 0) throw new Error(`ejabberdctl connected_users: ${r.out}`);
  return r.out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes("@"));
}

/** What the buddies need of ejabberd: MUC rooms anyone may create (on conference.<host>), XEP-0199 ping. */
export const BUDDIES_MODULES = `mod_muc:
  host: "conference.@HOST@"
  access_create: all
  default_room_options:
    persistent: false
    public: true
    members_only: false
    mam: false
mod_ping: {}
`;

export const DOMAINS = ["localhost", "second.test"] as const;
export type Domain = (typeof DOMAINS)[number];

/** `domains` of config: both web_users with cleartext passwords, as the legacy deployments have them. */
export function domainsConfig(): Record<string, unknown> {
  return Object.fromEntries(
    DOMAINS.map((d) => [d, { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" }]),
  );
}
