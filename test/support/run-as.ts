import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
/** What a daemon's own user gets: a plain PATH and a UTF-8 locale, nothing of the test's environment. */
export const SU_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

/** Quotes each argument for `sh -c`. */
export const shellWords = (args: readonly string[]) =>
  args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");

/**
 * Runs a shell command as `user` (ejabberd, prosody: the servers the tests start run as their own users), within
 * 60 s; answers its exit code and output instead of throwing.
 */
export async function runAs(user: string, command: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run("su", [user, "-s", "/bin/sh", "-c", command], { env: SU_ENV, timeout: 60_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === "number" ? e.code : -1,
      out: `${e.stdout ?? ""}${e.stderr ?? e.message}`,
    };
  }
}
