import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { countOlderThan, purgeBatch } from "../../../../http-utility/src/locations/store.ts";
import { type CliContext, CliError } from "../context.ts";

const UNITS: Record<string, { ms: number; name: string }> = {
  m: { ms: 60_000, name: "minute" },
  h: { ms: 3_600_000, name: "hour" },
  d: { ms: 86_400_000, name: "day" },
  w: { ms: 7 * 86_400_000, name: "week" },
};

/** `90d`, `12h`, `30m`, `2w` in milliseconds; a CliError (exit 2) naming the accepted forms otherwise. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,6})([mhdw])$/.exec(text.trim());
  const unit = m?.[2] ? UNITS[m[2]] : undefined;
  if (!m || !unit || Number(m[1]) === 0) {
    throw new CliError(
      `--older-than: "${text}" is not a duration: write a positive whole number and a unit, m (minutes), h (hours), d (days) or w (weeks), such as 90d`,
      2,
    );
  }
  return Number(m[1]) * unit.ms;
}

/**
 * The moment `age` ago, never before 1970: `999999w` is a valid way to say "everything", but the moment it
 * names is before PostgreSQL's earliest timestamp, and nothing was stored before 1970 anyway.
 */
export function cutoffBefore(age: number): Date {
  return new Date(Math.max(0, Date.now() - age));
}

export function registerLocations(program: Command, ctx: CliContext): void {
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
