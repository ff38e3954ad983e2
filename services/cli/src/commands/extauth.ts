import { Console } from "node:console";
import { type Command, InvalidArgumentError, Option } from "commander";
import { createAuthCore, runExtauth } from "#auth";
import { createRuntimeDomains } from "#common/config/runtime-domains.ts";
import { startListener } from "#common/db/listener.ts";
import { createPool, resolveDatabaseUrl } from "#common/db/pool.ts";
import { createLogger } from "#common/logger.ts";
import type { CliContext } from "../context.ts";

/**
 * `sidecars extauth`: the program ejabberd (`auth_method: external`, `extauth_program`) starts and talks to
 * on stdin/stdout. stdout carries only the protocol; logs go to stderr.
 */

function parseTimeout(value: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 50 || ms > 60_000) {
    throw new InvalidArgumentError("a whole number of milliseconds from 50 to 60000");
  }
  return ms;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("extauth")
    .description(
      "serve ejabberd's external auth protocol on stdin/stdout until stdin closes (ejabberd extauth_program)",
    )
    .addOption(
      new Option("--timeout-ms <ms>", "answer false when a decision takes longer than this")
        .argParser(parseTimeout)
        .default(5000),
    )
    .action(async (opts: { timeoutMs: number }) => {
      // a stray console.log (say, in a per-domain module) must not reach stdout: it would corrupt the protocol
      globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
      const config = ctx.config();
      const log = createLogger(config, "extauth", 2);
      // No startup check of the database: while it is down every answer is false, and the program keeps
      // running (ejabberd would otherwise restart it in a loop).
      const url = await resolveDatabaseUrl(config, log);
      const pool = createPool(config, url, log);
      // the cache forgets a changed password when PostgreSQL says so, as in the services (common/service.ts)
      const listener = startListener({ connectionString: url, log });
      try {
        const core = await createAuthCore({ config, pool, listener, log });
        // domains added, changed or removed at runtime (`sidecars domains`): served within a second, as by the
        // services (common/service.ts), for as long as ejabberd keeps this program running
        const domains = createRuntimeDomains({ load: { env: ctx.env }, pool, log }).watch(
          listener,
          async (next) => {
            await core.reload(next);
            log.info({ domains: Object.keys(next.domains) }, "extauth: domains reloaded");
          },
        );
        try {
          log.info({ domains: Object.keys(config.domains), timeoutMs: opts.timeoutMs }, "extauth ready");
          await runExtauth({
            api: core,
            input: process.stdin,
            output: process.stdout,
            log,
            timeoutMs: opts.timeoutMs,
          });
          log.info("extauth: stdin closed, stopping");
        } finally {
          domains.close();
          await core.close();
        }
      } finally {
        await listener.close();
        await pool.end();
      }
    });
}
