import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { projectRoot } from "#common/paths.ts";
import type { Ejabberd } from "../support/ejabberd.ts";
import { freePort } from "../support/free-port.ts";
import type { BareClientsMessage } from "./buddies-bare-clients.ts";
import { type BuddiesBench, DOMAIN, RESOURCE } from "./buddies-support.ts";

/**
 * The two processes buddies-online.bench.ts compares, each started for one measurement and timed from its
 * spawn until all its clients are online: the buddies runner (services/buddies/src/main.ts) and the bare
 * @xmpp/client process of the baseline (buddies-bare-clients.ts).
 */

const ONLINE_TIMEOUT_MS = 60_000;

/** A child process of the bench, its output's tail kept for a failure message, killed if the bench dies. */
interface Child {
  process: ChildProcess;
  pid: number;
  output(): string;
  /** Log lines at warn or above so far. */
  warnings(): number;
  exited(): boolean;
  /** SIGTERM (or `gently`), then SIGKILL after `ms`; whether it went by itself. */
  stop(gently?: () => void, ms?: number): Promise<boolean>;
}

function startChild(script: string, args: string[], env: NodeJS.ProcessEnv, ipc: boolean): Child {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: projectRoot,
    env,
    stdio: ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let warnings = 0;
  const keep = (chunk: Buffer) => {
    const text = chunk.toString();
    // pino lines at warn (40) and above; a chunk may cut a line, which at worst misses one
    warnings += text.match(/"level":(?:40|50|60)\b/g)?.length ?? 0;
    output = (output + text).slice(-6000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("error", (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const exit = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exit.then(() => process.off("exit", kill));
  return {
    process: child,
    pid: child.pid as number,
    output: () => output,
    warnings: () => warnings,
    exited,
    async stop(gently = () => child.kill("SIGTERM"), ms = 20_000) {
      if (exited()) return true;
      gently();
      const timer = sleep(ms).then(() => false);
      if (await Promise.race([exit.then(() => true), timer])) return true;
      child.kill("SIGKILL");
      await exit;
      return false;
    },
  };
}

export interface Started {
  pid: number;
  /** Seconds from spawning the process until the last of its clients was online. */
  onlineS: number;
  /** …until the first was (process start, config, database: what comes before the logins). */
  firstOnlineS: number;
  stop(): Promise<void>;
}

interface BuddyView {
  jid: string;
  state: string;
  connectedSince: string | null;
  lastError: string | null;
}

/**
 * The project: a buddies runner on the bench's database and config, timed from its spawn until the admin
 * API shows all `count` buddies online. The time is the last buddy's own `connectedSince` (set once its
 * presence went out), so the polling period adds nothing to it.
 */
export async function startRunner(b: BuddiesBench, count: number): Promise<Started> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    APP_ENV: "test",
    CONFIG_DIR: b.runnerConfigDir,
    DATABASE_URL: b.databaseUrl,
    BUDDIES_ADMIN_PORT: String(port),
  };
  const spawnedAt = Date.now();
  const child = startChild("services/buddies/src/main.ts", [], env, false);
  const stop = async () => {
    const clean = await child.stop();
    if (!clean) console.error(`buddies runner ignored SIGTERM for 20 s; killed:\n${child.output()}`);
    if (child.warnings() > 0) {
      console.error(
        `buddies runner logged ${child.warnings()} warnings or errors; the last:\n${child.output().slice(-1500)}`,
      );
    }
    // leases of a killed runner would bar the next one for leaseSeconds: every round starts unowned
    await b.pool.query("UPDATE buddy_leases SET owner = NULL, expires_at = NULL, state = 'stopped'");
    await b.pool.query("DELETE FROM buddy_runners");
  };
  const deadline = spawnedAt + ONLINE_TIMEOUT_MS;
  let last = "no answer yet";
  try {
    for (;;) {
      if (child.exited()) throw new Error(`the buddies runner exited:\n${child.output()}`);
      if (Date.now() > deadline) {
        throw new Error(
          `not all ${count} buddies online after ${ONLINE_TIMEOUT_MS / 1000} s (${last}):\n${child.output()}`,
        );
      }
      const buddies = await fetch(`${url}/api/buddies`, {
        headers: { authorization: b.adminAuthorization },
        signal: AbortSignal.timeout(5000),
      })
        .then(async (r) =>
          r.status === 200 ? ((await r.json()) as { buddies: BuddyView[] }).buddies : undefined,
        )
        .catch(() => undefined);
      if (buddies) {
        const online = buddies.filter((v) => v.state === "online" && v.connectedSince);
        if (online.length >= count) {
          const times = online.map((v) => Date.parse(v.connectedSince as string));
          const seconds = (t: number) => (t - spawnedAt) / 1000;
          return {
            pid: child.pid,
            onlineS: seconds(Math.max(...times)),
            firstOnlineS: seconds(Math.min(...times)),
            stop,
          };
        }
        last = describeStates(buddies);
      }
      await sleep(200);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

function describeStates(buddies: BuddyView[]): string {
  const states: Record<string, number> = {};
  for (const v of buddies) states[v.state] = (states[v.state] ?? 0) + 1;
  const errors = [...new Set(buddies.map((v) => v.lastError).filter(Boolean))].slice(0, 3);
  return `states ${JSON.stringify(states)}${errors.length > 0 ? `; errors: ${errors.join(" | ")}` : ""}`;
}

/** The baseline: `count` bare @xmpp/client connections `bare-NNN` in their own process, all started at once. */
export async function startBareClients(b: BuddiesBench, count: number): Promise<Started> {
  const spawnedAt = Date.now();
  const args = [b.service, b.caFile, DOMAIN, "bare", String(count), b.passwordFile, RESOURCE];
  const child = startChild("test/bench/buddies-bare-clients.ts", args, process.env, true);
  const stop = async () => {
    const clean = await child.stop(() => child.process.send("stop"));
    if (!clean) console.error(`bare clients did not sign off within 20 s; killed:\n${child.output()}`);
  };
  try {
    const message = await new Promise<BareClientsMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.process.send("status");
        setTimeout(
          () =>
            reject(
              new Error(`bare clients not online after ${ONLINE_TIMEOUT_MS / 1000} s:\n${child.output()}`),
            ),
          500,
        );
      }, ONLINE_TIMEOUT_MS);
      child.process.once("message", (m) => {
        clearTimeout(timer);
        resolve(m as BareClientsMessage);
      });
      child.process.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`bare clients exited (code ${code}):\n${child.output()}`));
      });
    });
    if (message.type === "failed") throw new Error(`bare clients: a login failed: ${message.error}`);
    return {
      pid: child.pid,
      onlineS: (message.lastOnlineAt - spawnedAt) / 1000,
      firstOnlineS: (message.firstOnlineAt - spawnedAt) / 1000,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits until ejabberd has no session but `keep` (the probes): the next side starts on an idle server. */
export async function waitForSessions(ej: Ejabberd, keep: number): Promise<void> {
  let last = "";
  for (let i = 0; i < 60; i++) {
    const r = await ej.ctl("connected_users_number");
    last = r.out.trim();
    if (r.code === 0 && Number(last) <= keep) return;
    await sleep(500);
  }
  throw new Error(`ejabberd still has ${last} sessions 30 s after a side stopped (expected ${keep})`);
}
