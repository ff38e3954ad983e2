import { execFile } from "node:child_process";
import path from "node:path";
import { ROOT } from "./processes.ts";

/** `sidecars` run as an operator runs it (bin/sidecars.js), with a test environment plus `env`. */

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const SIDECARS_BIN = path.join(ROOT, "bin/sidecars.js");

export function runSidecars(
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; node?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      options.node ?? process.execPath,
      [SIDECARS_BIN, ...args],
      { env: { PATH: process.env.PATH ?? "", APP_ENV: "test", ...options.env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.input ?? "");
  });
}

/**
 * `sidecars` on a pseudo-terminal (util-linux `script`, in Debian's essential bsdutils), as a person at a
 * terminal runs it: what it draws only for a terminal (progress bars) shows in the output.
 */
export function runSidecarsOnTerminal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const command = [SIDECARS_BIN, ...args].map((a) => `'${a}'`).join(" ");
  return new Promise<string>((resolve, reject) => {
    execFile(
      "script",
      ["-qec", `'${process.execPath}' ${command}`, "/dev/null"],
      { env: { PATH: process.env.PATH ?? "", APP_ENV: "test", ...env } },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
}
