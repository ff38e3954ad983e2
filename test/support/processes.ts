import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");

export interface Exited {
  code: number | null;
  stderr: string;
  stdout: string;
  ready: boolean;
}

/** Runs a service's main.ts with an IPC channel (as pm2 does) and resolves when it exits. */
export function runService(
  service: string,
  env: NodeJS.ProcessEnv,
  onReady?: (child: ChildProcess) => void,
): Promise<Exited> {
  return new Promise((resolve) => {
    const child = fork(path.join(ROOT, `services/${service}/src/main.ts`), [], {
      env: { PATH: process.env.PATH ?? "", APP_ENV: "test", ...env },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    let stdout = "";
    let stderr = "";
    let ready = false;
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("message", (m) => {
      if (m === "ready") {
        ready = true;
        onReady?.(child);
      }
    });
    // a test that goes wrong must not leave a service behind
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code) => {
      clearTimeout(guard);
      resolve({ code, stderr, stdout, ready });
    });
  });
}

/** Polls a URL until it answers 200, or throws after `ms`. */
export async function waitForOk(url: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not healthy after ${ms} ms (${last})`);
}
