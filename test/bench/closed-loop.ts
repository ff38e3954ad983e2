import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { projectRoot } from "#common/paths.ts";
import type { BenchContext, Side } from "./frame.ts";

/**
 * The shared half of the bare baselines that run as their own process (pbkdf2-loop.ts, avatar-sharp-loop.ts):
 * `inFlight` operations kept running for `durationS` seconds, counted with their latencies, one measurement
 * per IPC message `{ durationS }` from the benchmark.
 */

export interface LoopRequest {
  durationS: number;
}

export interface LoopResult {
  /** Operations completed within the window. */
  count: number;
  elapsedS: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function measureLoop(
  durationS: number,
  inFlight: number,
  operation: () => Promise<void>,
): Promise<LoopResult> {
  const deadline = performance.now() + durationS * 1000;
  const latencies: number[] = [];
  let running = 0;
  return new Promise((resolve, reject) => {
    const launch = () => {
      running++;
      const t0 = performance.now();
      operation().then(() => {
        running--;
        const now = performance.now();
        if (now <= deadline) {
          latencies.push(now - t0);
          launch();
        } else if (running === 0) {
          // the ones still in flight at the deadline have finished: the next measurement starts clean
          latencies.sort((a, b) => a - b);
          const round = (ms: number) => Math.round(ms * 10) / 10;
          resolve({
            count: latencies.length,
            elapsedS: durationS,
            p50Ms: round(percentile(latencies, 50)),
            p99Ms: round(percentile(latencies, 99)),
          });
        }
      }, reject);
    };
    for (let i = 0; i < inFlight; i++) launch();
  });
}

/** Answers each `{ durationS }` message of the parent with one measurement; exits with the parent. */
export function serveMeasurements(inFlight: number, operation: () => Promise<void>): void {
  process.on("message", (msg: LoopRequest) => {
    measureLoop(msg.durationS, inFlight, operation).then(
      (result) => process.send?.(result),
      (err: Error) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  process.on("disconnect", () => process.exit(0));
}

/**
 * The benchmark's side of such a baseline: `script` started with an IPC channel (stopped with the run), each
 * measurement asked of it; `what` names one operation in the messages ("derivation", "avatar").
 */
export function loopSide(
  ctx: BenchContext,
  label: string,
  script: string,
  args: string[],
  what: string,
): Side {
  const name = path.basename(script, ".ts");
  const child: ChildProcess = spawn(process.execPath, [script, ...args], {
    cwd: projectRoot,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let failure: Error | undefined;
  child.on("error", (err) => {
    failure = err;
  });
  const kill = () => child.kill("SIGTERM");
  process.once("exit", kill);
  ctx.defer(() => {
    process.off("exit", kill);
    if (child.connected) child.disconnect(); // it exits when its channel closes
    kill();
  });
  return {
    label,
    measure(durationS) {
      return new Promise<LoopResult>((resolve, reject) => {
        if (failure || !child.connected) {
          reject(new Error(`${name} is not running (${failure?.message ?? `code ${child.exitCode}`})`));
          return;
        }
        const onExit = (code: number | null) => reject(new Error(`${name} exited (code ${code})`));
        child.once("exit", onExit);
        child.once("message", (result) => {
          child.off("exit", onExit);
          resolve(result as LoopResult);
        });
        child.send({ durationS } satisfies LoopRequest);
      }).then((r) => {
        if (r.count === 0) throw new Error(`${name}: no ${what} completed`);
        return { value: r.count / r.elapsedS, p50Ms: r.p50Ms, p99Ms: r.p99Ms };
      });
    },
  };
}
