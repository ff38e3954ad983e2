import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { countOlderThan, purgeBatch } from "../../../http-utility/src/locations/store.ts";
import { type CliContext, CliError } from "../context.ts";
import { cutoffBefore, parseDuration } from "../durations.ts";

export function register(program: Command, ctx: CliContext): void {
  const locations = program.command("locations").description("location reports of app users");

  locations
    .command("purge")
    .description("delete the reports dated before a moment, in batches (rerun it safely: it resumes)")
    .requiredOption("--older-than <duration>", "age of the reports to delete: 90d, 12h, 30m, 2w")
    .option("--domain <domain>", "only this domain")
    .option("--dry-run", "count what would be deleted, delete nothing")
    .option("--batch <n>", "reports per delete", "5000")
    .action(async (opts: { olderThan: string; domain?: string; dryRun?: boolean; batch: string }) => {
      const age = parseDuration(opts.olderThan);
      const batch = Number(opts.batch);
      if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
        throw new CliError(`--batch: "${opts.batch}" is not a whole number from 1 to 100000`, 2);
      }
      if (opts.domain) ctx.domain(opts.domain);
      const cutoff = cutoffBefore(age);
      const where = `dated before ${cutoff.toISOString()}${opts.domain ? ` in ${opts.domain}` : ""}`;
      const pool = await ctx.pool();

      if (opts.dryRun) {
        ctx.out(
          `would delete ${await countOlderThan(pool, cutoff, opts.domain)} location report(s) ${where}`,
        );
        return;
      }
      // a bar only for a person watching: a cron job's mail or a pipe gets the one result line
      const bar = process.stderr.isTTY
        ? new SingleBar({
            format: "purge [{bar}] {value}/{total} reports {eta_formatted} left",
            stream: process.stderr,
            hideCursor: true,
          })
        : undefined;
      bar?.start(await countOlderThan(pool, cutoff, opts.domain), 0);
      let deleted = 0;
      try {
        for (;;) {
          const n = await purgeBatch(pool, cutoff, batch, opts.domain);
          deleted += n;
          // reports older than the cutoff may still arrive (an app uploading an old batch): counted as they go
          if (bar && deleted > bar.getTotal()) bar.setTotal(deleted);
          bar?.update(deleted);
          if (n === 0) break;
        }
      } finally {
        bar?.stop();
      }
      ctx.out(`deleted ${deleted} location report(s) ${where}`);
    });
}
