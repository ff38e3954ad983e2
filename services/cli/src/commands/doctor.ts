import { type Command, InvalidArgumentError, Option } from "commander";
import { createAuthCore } from "#auth";
import { type Listener, startListener } from "#common/db/listener.ts";
import { createLogger } from "#common/logger.ts";
import type { CliContext } from "../context.ts";
import { type CheckResult, runDoctor } from "../doctor.ts";

/** `sidecars doctor`: the deployment checked before traffic is switched to it (docs/operations.md "Doctor"). */

function parseTimeout(value: string): number {
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 100 || ms > 60_000) {
    throw new InvalidArgumentError("a whole number of milliseconds from 100 to 60000");
  }
  return ms;
}

const LABEL = { ok: "OK  ", warn: "WARN", fail: "FAIL" } as const;

export function format(results: readonly CheckResult[]): string[] {
  const width = Math.max(...results.map((r) => r.check.length));
  return results.map(
    (r) => `${LABEL[r.status]}  ${r.check.padEnd(width)}  ${r.detail}${r.fix ? ` → ${r.fix}` : ""}`,
  );
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command("doctor")
    .description(
      "check the deployment as an operator would before switching: database and migrations, each domain's authenticator, the auth service as MongooseIM calls it, the services' health, storage, certificates, push credentials (exit 1 on any FAIL)",
    )
    .option("--json", "one JSON document instead of lines")
    .option(
      "--ejabberd-config <file>",
      "ejabberd's config: with auth_method external, its extauth_program is asked as ejabberd asks it (left out when the file is absent)",
      "/etc/ejabberd/ejabberd.yml",
    )
    .addOption(
      new Option("--timeout-ms <ms>", "bound on each network call").argParser(parseTimeout).default(5000),
    )
    .action(async (opts: { json?: boolean; timeoutMs: number; ejabberdConfig: string }) => {
      const started = performance.now();
      const config = ctx.config();
      const log = createLogger({ log: { ...config.log, level: "silent", pretty: false } }, "doctor");
      let listener: Listener | undefined;
      try {
        const results = await runDoctor({
          config,
          log,
          pool: () => ctx.pool(),
          listener: async () => {
            listener ??= startListener({ connectionString: await ctx.databaseUrl(), log });
            return listener;
          },
          authCore: (pool, l) => createAuthCore({ config, pool, listener: l, log }),
          timeoutMs: opts.timeoutMs,
          ejabberdConfig: opts.ejabberdConfig,
        });
        const failed = results.some((r) => r.status === "fail");
        if (opts.json) {
          const ms = Math.round(performance.now() - started);
          ctx.out(JSON.stringify({ ok: !failed, ms, checks: results }, null, 2));
        } else {
          for (const line of format(results)) ctx.out(line);
          const count = (s: string) => results.filter((r) => r.status === s).length;
          ctx.out(`${count("ok")} OK, ${count("warn")} WARN, ${count("fail")} FAIL`);
        }
        if (failed) process.exitCode = 1;
      } finally {
        await listener?.close();
      }
    });
}
