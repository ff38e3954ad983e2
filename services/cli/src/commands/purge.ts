import type { Command } from "commander";
import { retentionMs } from "#common/config/retention-schema.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { type PurgeResult, purgeExpired } from "../../../http-utility/src/retention/purge.ts";
import type { CliContext } from "../context.ts";

/**
 * `sidecars purge`: the purge http-utility runs on `retention.schedule` (docs/operations.md "Retention"),
 * now, with a line per table as it is done.
 */
export function register(program: Command, ctx: CliContext): void {
  program
    .command("purge")
    .description(
      "delete the rows older than their configured retention (config `retention`), in batches, now",
    )
    .option("--dry-run", "count what would be deleted, delete nothing")
    .action(async (opts: { dryRun?: boolean }) => {
      const retention = ctx.config().retention;
      const pool = await ctx.pool();
      const verb = opts.dryRun ? "would delete" : "deleted";
      const line = (r: PurgeResult) =>
        ctx.out(`${r.kind}: ${verb} ${r.rows} row(s) of ${r.what} before ${r.before.toISOString()}`);
      const storage =
        !opts.dryRun && retentionMs(retention.media) !== undefined
          ? await createStorage(ctx.config().media.storage)
          : undefined;
      try {
        // recorded in retention_runs (not a dry run): the console shows it next to the scheduled runs
        const results = await purgeExpired(pool, retention, {
          dryRun: opts.dryRun ?? false,
          trigger: "command",
          onResult: line,
          ...(storage ? { storage } : {}),
        });
        const kept = Object.entries(retention)
          .filter(([k, v]) => k !== "schedule" && k !== "jobs" && retentionMs(v) === undefined)
          .map(([k]) => k);
        const total = results.reduce((n, r) => n + r.rows, 0);
        ctx.out(
          `${verb} ${total} row(s) in all${kept.length > 0 ? `; kept for ever (retention 0): ${kept.join(", ")}` : ""}; pg-boss removes its finished jobs itself after retention.jobs (${retention.jobs})`,
        );
      } finally {
        await storage?.close();
      }
    });
}
