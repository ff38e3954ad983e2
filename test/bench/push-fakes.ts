import { type ChildProcess, spawn } from "node:child_process";
import { projectRoot } from "#common/paths.ts";
import type { BenchContext } from "./frame.ts";
import type { FakesStart, FakesStarted, FakesTaken } from "./push-fakes-process.ts";

/** The benchmark's handle on push-fakes-process.ts: started once per benchmark, stopped with it. */

export interface PushFakes {
  apns: FakesStarted["apns"];
  fcm: FakesStarted["fcm"];
  /** What reached the fakes since the last call (their request logs emptied). */
  take(): Promise<FakesTaken>;
}

const SCRIPT = "test/bench/push-fakes-process.ts";
const START_TIMEOUT_MS = 30_000;

export async function startPushFakes(ctx: BenchContext, start: Omit<FakesStart, "op">): Promise<PushFakes> {
  const child: ChildProcess = spawn(process.execPath, [SCRIPT], {
    cwd: projectRoot,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let failure: Error | undefined;
  child.on("error", (err) => {
    failure = err;
  });
  const kill = () => child.kill("SIGTERM");
  process.once("exit", kill);
  ctx.defer(async () => {
    process.off("exit", kill);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    if (child.connected) child.disconnect(); // it closes the fakes and exits
    const timer = setTimeout(kill, 3000);
    await exited;
    clearTimeout(timer);
  });

  function ask<T>(msg: FakesStart | { op: "take" }, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (failure || !child.connected) {
        reject(new Error(`${SCRIPT} is not running (${failure?.message ?? `code ${child.exitCode}`})`));
        return;
      }
      const onExit = (code: number | null) => reject(new Error(`${SCRIPT} exited (code ${code})`));
      const timer = setTimeout(() => reject(new Error(`${SCRIPT}: no answer to ${msg.op}`)), timeoutMs);
      child.once("exit", onExit);
      child.once("message", (answer) => {
        clearTimeout(timer);
        child.off("exit", onExit);
        resolve(answer as T);
      });
      child.send(msg);
    });
  }

  const started = await ask<FakesStarted>({ op: "start", ...start }, START_TIMEOUT_MS);
  return {
    apns: started.apns,
    fcm: started.fcm,
    take: () => ask<FakesTaken>({ op: "take" }),
  };
}
