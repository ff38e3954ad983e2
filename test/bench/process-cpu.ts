import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";

/** CPU time of processes, from /proc (Linux): what the frame reports for load generators and servers. */

/** CPU seconds a process has used so far (utime + stime of /proc/<pid>/stat, in USER_HZ = 100 on Linux). */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The summed CPU seconds of `pids` (a process that has gone counts 0). */
export async function cpuSecondsOfAll(pids: readonly number[]): Promise<number> {
  const each = await Promise.all(pids.map((pid) => cpuSecondsOf(pid).catch(() => 0)));
  return each.reduce((a, b) => a + b, 0);
}

/** The bench process's own CPU seconds (the load generator of sides that drive load from this process). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export const CORES = os.availableParallelism();

/** `pid` and every process below it (a cluster's primary and its workers), from the parent ids in /proc. */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/**
 * Runs a load generator (wrk, pgbench) to its end: its exit code, its output (stdout and stderr) and its CPU
 * seconds, sampled every 100 ms until it exits (a reaped process has no /proc entry: the last sample is at
 * most 100 ms short of the total, under 2 % of a 5 s round).
 */
export async function runMeasured(
  command: string,
  args: readonly string[],
): Promise<{ code: number | null; out: string; cpuS: number }> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const pid = child.pid as number;
  let cpuS = 0;
  const sampler = setInterval(() => {
    cpuSecondsOf(pid).then(
      (v) => {
        cpuS = v;
      },
      () => {},
    );
  }, 100);
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  clearInterval(sampler);
  return { code, out, cpuS };
}
