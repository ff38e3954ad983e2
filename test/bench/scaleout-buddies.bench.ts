import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { projectRoot } from "#common/paths.ts";
import { freePort } from "../support/free-port.ts";
import { type Probes, startProbes } from "./buddies-probes.ts";
import { waitForSessions } from "./buddies-processes.ts";
import { type BuddiesBench, startBuddiesBench } from "./buddies-support.ts";
import { type BenchContext, type Benchmark, median, type Sample, type Side } from "./frame.ts";
import { cpuSecondsOfAll } from "./process-cpu.ts";

/** As buddies-online: 500 echo buddies, now shared by the runners of a side. */
const BUDDIES = 500;
/** Clients timing echoes, one chat in flight each: more than buddies-online's 4, so the echoes load the runners. */
const PROBES = 16;
const ONLINE_TIMEOUT_MS = 60_000;

interface Runner {
  child: ChildProcess;
  pid: number;
  url: string;
  output(): string;
}

interface BuddyView {
  jid: string;
  state: string;
  connectedSince: string | null;
  lastError: string | null;
  owner: { pid: number } | null;
}

interface ScaleoutSample extends Sample {
  onlineS: number;
  firstOnlineS: number;
  /** Buddies held by each runner when all were online, and after the echo window. */
  splitOnline: number[];
  splitAfter: number[];
  echoesPerS: number;
  /** The runners' CPU, cores: from spawn to all online, and during the echoes. */
  loginCores: number;
  echoCores: number;
}

/** A buddies runner (services/buddies/src/main.ts) on the bench's database and config, its output's tail kept. */
async function spawnRunner(b: BuddiesBench): Promise<Runner> {
  const port = await freePort();
  const child = spawn(process.execPath, ["services/buddies/src/main.ts"], {
    cwd: projectRoot,
    env: {
      ...process.env,
      APP_ENV: "test",
      CONFIG_DIR: b.runnerConfigDir,
      DATABASE_URL: b.databaseUrl,
      BUDDIES_ADMIN_PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("error", (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  child.once("exit", () => process.off("exit", kill));
  return { child, pid: child.pid as number, url: `http://127.0.0.1:${port}`, output: () => output };
}

async function stopRunner(r: Runner): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exit = new Promise<void>((resolve) => r.child.once("exit", () => resolve()));
  r.child.kill("SIGTERM");
  if (await Promise.race([exit.then(() => true), sleep(20_000).then(() => false)])) return;
  console.error(`buddies runner ${r.pid} ignored SIGTERM for 20 s; killed:\n${r.output()}`);
  r.child.kill("SIGKILL");
  await exit;
}

/** The cluster's view (any runner answers for all: docs/buddies.md, "Cluster"), or undefined if not up yet. */
async function clusterView(b: BuddiesBench, r: Runner): Promise<BuddyView[] | undefined> {
  return fetch(`${r.url}/api/buddies`, {
    headers: { authorization: b.adminAuthorization },
    signal: AbortSignal.timeout(5000),
  })
    .then(async (res) =>
      res.status === 200 ? ((await res.json()) as { buddies: BuddyView[] }).buddies : undefined,
    )
    .catch(() => undefined);
}

/** Buddies by state and owner, and the first few errors: what a timeout reports. */
function describe(buddies: BuddyView[] | undefined): string {
  if (!buddies) return "no answer from the admin API";
  const counts: Record<string, number> = {};
  for (const v of buddies) {
    const key = `${v.state}@${v.owner?.pid ?? "none"}${v.connectedSince ? "" : " (not connected)"}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const errors = [...new Set(buddies.map((v) => v.lastError).filter(Boolean))].slice(0, 3);
  return `${JSON.stringify(counts)}${errors.length > 0 ? `; errors: ${errors.join(" | ")}` : ""}`;
}

const split = (runners: Runner[], buddies: BuddyView[]) =>
  runners.map((r) => buddies.filter((v) => v.state === "online" && v.owner?.pid === r.pid).length);

/**
 * One measurement: `n` runners spawned at once, timed until the cluster shows all BUDDIES online (each
 * buddy's own `connectedSince`), echoes from the probes to all of them in turn for `durationS`, then the
 * runners stopped, their leases freed and ejabberd idle again. `value` is BUDDIES / s until all online.
 */
function side(label: string, n: number, b: BuddiesBench, probes: Probes, samples: ScaleoutSample[]): Side {
  return {
    label,
    async measure(durationS) {
      const spawnedAt = Date.now();
      const runners = await Promise.all(Array.from({ length: n }, () => spawnRunner(b)));
      const pids = runners.map((r) => r.pid);
      try {
        let buddies: BuddyView[] | undefined;
        for (;;) {
          const gone = runners.find((r) => r.child.exitCode !== null || r.child.signalCode !== null);
          if (gone) throw new Error(`buddies runner ${gone.pid} exited:\n${gone.output()}`);
          if (Date.now() - spawnedAt > ONLINE_TIMEOUT_MS) {
            throw new Error(
              `not all ${BUDDIES} buddies online after ${ONLINE_TIMEOUT_MS / 1000} s: ${describe(buddies)}\n` +
                runners.map((r) => `runner ${r.pid}:\n${r.output().slice(-1500)}`).join("\n"),
            );
          }
          buddies = await clusterView(b, runners[0] as Runner);
          const online = buddies?.filter((v) => v.state === "online" && v.connectedSince && v.owner) ?? [];
          if (online.length >= BUDDIES) break;
          await sleep(200);
        }
        const times = (buddies as BuddyView[]).map((v) => Date.parse(v.connectedSince as string) - spawnedAt);
        const loginCpu = await cpuSecondsOfAll(pids);
        const loginWall = (Date.now() - spawnedAt) / 1000;
        const splitOnline = split(runners, buddies as BuddyView[]);
        const targets = (buddies as BuddyView[]).map((v) => v.jid);
        const t0 = performance.now();
        const echo = await probes.echoLoad(targets, durationS);
        const echoWall = (performance.now() - t0) / 1000;
        const echoCpu = (await cpuSecondsOfAll(pids)) - loginCpu;
        const after = (await clusterView(b, runners[0] as Runner)) ?? [];
        const sample: ScaleoutSample = {
          value: BUDDIES / (Math.max(...times) / 1000),
          p50Ms: echo.p50Ms,
          p99Ms: echo.p99Ms,
          onlineS: Math.max(...times) / 1000,
          firstOnlineS: Math.min(...times) / 1000,
          splitOnline,
          splitAfter: split(runners, after),
          echoesPerS: Math.round(echo.count / echoWall),
          loginCores: Math.round((loginCpu / loginWall) * 100) / 100,
          echoCores: Math.round((echoCpu / echoWall) * 100) / 100,
        };
        console.error(
          `scaleout-buddies  ${label}: first online after ${sample.firstOnlineS.toFixed(2)} s, all ${BUDDIES} ` +
            `after ${sample.onlineS.toFixed(2)} s, held ${splitOnline.join("/")} (after the echoes ` +
            `${sample.splitAfter.join("/")}); ${sample.echoesPerS} echoes/s; runners' CPU ${sample.loginCores} ` +
            `cores logging in, ${sample.echoCores} echoing`,
        );
        samples.push(sample);
        return sample;
      } finally {
        await Promise.all(runners.map(stopRunner));
        // a killed runner's leases would bar the next side for leaseSeconds: every measurement starts unowned
        await b.pool.query("UPDATE buddy_leases SET owner = NULL, expires_at = NULL, state = 'stopped'");
        await b.pool.query("DELETE FROM buddy_runners");
        await waitForSessions(b.ej, PROBES);
      }
    },
  };
}

function summary(project: ScaleoutSample[], baseline: ScaleoutSample[]): void {
  // the frame measures each side once to warm up before the rounds
  const [p, one] = [project.slice(1), baseline.slice(1)];
  if (p.length === 0 || one.length === 0) return;
  const row = (what: string, f: (s: ScaleoutSample) => number) =>
    `  ${what.padEnd(28)} 2 runners ${median(p.map(f)).toFixed(2)}; 1 runner ${median(one.map(f)).toFixed(2)}; ` +
    `ratio ${(median(p.map(f)) / median(one.map(f))).toFixed(2)}`;
  console.error(
    [
      `scaleout-buddies summary (${p.length} rounds, medians)`,
      row(`all ${BUDDIES} online, s:`, (s) => s.onlineS),
      row("echoes answered, /s:", (s) => s.echoesPerS),
      row("echo p99, ms:", (s) => s.p99Ms ?? 0),
      row("runners' cores, logging in:", (s) => s.loginCores),
      row("runners' cores, echoing:", (s) => s.echoCores),
      `  held by each of the 2 runners when all were online: ${p.map((s) => s.splitOnline.join("/")).join(", ")}`,
    ].join("\n"),
  );
}

/** What a second buddies runner adds: the same 500 buddies shared by two runner processes, against one. */
export const benchmark: Benchmark = {
  name: "scaleout-buddies",
  figure: "online/s",
  description:
    `${BUDDIES} echo buddies shared by 2 buddies runners (spawned at once per round, same config and database) ` +
    `vs the same buddies on 1 runner, against ejabberd 23.01 with our extauth: value ${BUDDIES} / s from spawn ` +
    `until all online; p50/p99 echo round trips from ${PROBES} probes, one chat in flight each`,
  async start(ctx: BenchContext) {
    const b = await startBuddiesBench(ctx, { buddies: BUDDIES, probes: PROBES });
    const probes = await startProbes(ctx, b, PROBES);
    const project: ScaleoutSample[] = [];
    const baseline: ScaleoutSample[] = [];
    ctx.defer(() => summary(project, baseline));
    return {
      project: side("2 runners", 2, b, probes, project),
      baseline: side("1 runner", 1, b, probes, baseline),
    };
  },
};
