import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import path from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { createStorage } from "#common/media/storage-registry.ts";
import { fromRoot } from "#common/paths.ts";
import {
  countLegacyFiles,
  type ImportProblem,
  importLegacyMedia,
  LegacyRootError,
  type ProblemReason,
} from "../../../http-utility/src/attachments/legacy-import.ts";
import { type CliContext, CliError } from "../context.ts";

/**
 * `sidecars media import --from <legacy root>`: the legacy services' media registered in place
 * (docs/attachments.md "Importing legacy media"), so that their legacy URLs keep answering. The files are
 * never copied, changed or deleted. A rerun, or a run after one that was killed, skips what is recorded.
 */

/** Problems printed at the end; the report file has them all. */
const PRINTED = 20;
const MiB = 1024 * 1024;

export function registerImport(media: Command, ctx: CliContext): void {
  media
    .command("import")
    .description(
      "register the legacy services' media (pictures/, videos/, avatars/ under a directory) in place, so their legacy URLs keep answering; resumable, idempotent",
    )
    .requiredOption("--from <dir>", "the legacy media directory (only read, never changed)")
    .option("--dry-run", "look at every file and report, write nothing")
    .option(
      "--domain <domain>",
      "domain of the imported files and of the users avatars are named by (default: the only configured domain)",
    )
    .option("--batch <n>", "files per database statement", "500")
    .option("--report <file>", "write every file not imported to this file, one JSON object per line")
    .action(
      async (opts: { from: string; dryRun?: boolean; domain?: string; batch: string; report?: string }) => {
        const batch = Number(opts.batch);
        if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
          throw new CliError(`--batch: "${opts.batch}" is not a whole number from 1 to 10000`, 2);
        }
        const domain = domainOf(ctx, opts.domain);
        const root = path.resolve(opts.from);
        const dryRun = opts.dryRun ?? false;
        const configured = ctx.config().media.legacyRoot;
        if (!configured) {
          ctx.out(
            `note: media.legacyRoot is not set: the services answer 404 for imported files until it names ${root}`,
          );
        } else if (path.resolve(fromRoot(configured)) !== root) {
          ctx.out(
            `note: media.legacyRoot is ${configured}: the services read imported files there, not in ${root} (fine when both are the same directory mounted twice)`,
          );
        }

        const pool = await ctx.pool();
        const report = opts.report ? await openReport(opts.report) : undefined;
        const storage = dryRun ? undefined : await createStorage(ctx.config().media.storage);
        const reasons = new Map<ProblemReason, number>();
        const printed: ImportProblem[] = [];
        const notes: string[] = [];
        // a bar only for a person watching, after a count of the files (entries only, nothing stat'ed)
        const bar = process.stderr.isTTY
          ? new SingleBar({
              format: "media import [{bar}] {value}/{total} files {eta_formatted} left",
              stream: process.stderr,
              hideCursor: true,
            })
          : undefined;
        const started = Date.now();
        let seen = 0;
        let summary: Awaited<ReturnType<typeof importLegacyMedia>>;
        try {
          bar?.start(await countLegacyFiles(root), 0);
          summary = await importLegacyMedia(storage ? { pool, storage } : { pool }, {
            root,
            domain,
            dryRun,
            batch,
            onFile() {
              seen++;
              // files may arrive in the legacy directory during the run: counted as they come
              if (bar && seen > bar.getTotal()) bar.setTotal(seen);
              bar?.update(seen);
            },
            onProblem(p) {
              reasons.set(p.reason, (reasons.get(p.reason) ?? 0) + 1);
              if (printed.length < PRINTED) printed.push(p);
              report?.write(`${JSON.stringify(p)}\n`);
            },
            onNote: (line) => notes.push(line),
          });
        } catch (err) {
          if (err instanceof LegacyRootError) throw new CliError(err.message);
          throw err;
        } finally {
          bar?.stop();
          await storage?.close();
          if (report) {
            report.end();
            await once(report, "close");
          }
        }

        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        const { imported, problems } = summary;
        const files = imported.picture + imported.video + imported.avatar;
        const verb = dryRun ? "would import" : "imported";
        for (const line of notes) ctx.out(line);
        ctx.out(
          `${verb} ${files} file(s) (${imported.picture} picture(s), ${imported.video} video(s), ${imported.avatar} avatar(s)` +
            `${dryRun ? "" : `, ${(summary.bytes / MiB).toFixed(1)} MiB`}) from ${root} into ${domain}; ` +
            `${summary.avatarsLinked} avatar(s) ${dryRun ? "would become" : "became"} their user's; ` +
            `${summary.updated} changed since the last import ${dryRun ? "would be " : ""}updated; ` +
            `${summary.unchanged} already imported; ${problems} not imported` +
            `; ${summary.files} file(s) in ${seconds.toFixed(1)} s (${Math.round(summary.files / seconds)} files/s` +
            `${dryRun ? "" : `, ${(summary.bytes / MiB / seconds).toFixed(1)} MiB/s imported`})`,
        );
        if (problems === 0) return;
        ctx.out(
          `not imported: ${[...reasons]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([r, n]) => `${r} ${n}`)
            .join(", ")}`,
        );
        for (const p of printed) ctx.out(`  ${p.path}: ${p.reason}: ${p.detail}`);
        if (problems > printed.length) {
          ctx.out(
            opts.report
              ? `  … and ${problems - printed.length} more in ${opts.report}`
              : `  … and ${problems - printed.length} more: --report <file> lists them all`,
          );
        }
      },
    );
}

/** `--domain`, or the only configured one. */
function domainOf(ctx: CliContext, wanted: string | undefined): string {
  if (wanted) {
    ctx.domain(wanted);
    return wanted;
  }
  const domains = Object.keys(ctx.config().domains);
  if (domains.length === 1 && domains[0]) return domains[0];
  throw new CliError(
    domains.length === 0
      ? 'no domain is configured: add the legacy domain under "domains" in config/<env>.json'
      : `several domains are configured (${domains.join(", ")}): say which the legacy files belong to with --domain`,
    2,
  );
}

/** The report file, truncated; a path that cannot be written stops the command before anything is done. */
async function openReport(file: string): Promise<WriteStream> {
  const out = createWriteStream(file, { flags: "w" });
  try {
    await once(out, "open");
  } catch (err) {
    throw new CliError(`--report: cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return out;
}
