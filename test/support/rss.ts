import { readFile } from "node:fs/promises";

/** A process's resident memory (VmRSS), bytes: what the memory limits of the upload tests and bench mean. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no VmRSS`);
  return Number(m[1]) * 1024;
}

/** Samples a process's RSS every 50 ms while `work` runs: its value before and its highest during. */
export async function withRss<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; before: number; peak: number }> {
  const before = await rssBytes(pid);
  let peak = before;
  const timer = setInterval(() => {
    rssBytes(pid).then(
      (v) => {
        peak = Math.max(peak, v);
      },
      () => {},
    );
  }, 50);
  try {
    const result = await work();
    peak = Math.max(peak, await rssBytes(pid));
    return { result, before, peak };
  } finally {
    clearInterval(timer);
  }
}
