import type { Command } from "commander";
import { migrate } from "#common/db/migrate.ts";
import type { CliContext } from "../context.ts";

export function register(program: Command, ctx: CliContext): void {
  program
    .command("migrate")
    .description("apply the pending migrations of migrations/ (safe to run again; takes a lock)")
    .option("--dry-run", "print what would run, change nothing")
    .action(async (opts: { dryRun?: boolean }) => {
      await ctx.pool(); // a clear message when the database is away, before node-pg-migrate's own
      const applied = await migrate({
        databaseUrl: await ctx.databaseUrl(),
        dryRun: opts.dryRun ?? false,
        log: opts.dryRun ? ctx.out : () => {},
      });
      const verb = opts.dryRun ? "would apply" : "applied";
      ctx.out(applied.length === 0 ? "up to date" : `${verb}: ${applied.join(", ")}`);
    });
}
