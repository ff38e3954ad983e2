import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import type { Storage } from "#common/media/storage.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { deleteOldAttachments, removeFiles } from "../../../http-utility/src/attachments/gc.ts";
import { countOlderThan, knownNames } from "../../../http-utility/src/attachments/store.ts";
import { countAbandoned, dropAbandoned } from "../../../http-utility/src/xmpp-upload/slot-store.ts";
import { type CliContext, CliError } from "../context.ts";
import { cutoffBefore, parseDuration } from "../durations.ts";
import { registerImport } from "./media-import.ts";

/**
 * `sidecars media gc`: attachments older than a moment go, rows first (in batches, so a rerun resumes),
 * then their files. It also removes what crashes leave behind: partial uploads, files without a row
 * (stored, then the process died before recording them) and XEP-0363 reservations still pending after a day
 * (the process died mid-upload: slot-store.ts `dropAbandoned`). Current avatars are kept whatever their age, and
 * files imported from the legacy services (`sidecars media import`, media-import.ts) are never deleted: they
 * are not in the storage backend, and their rows are left out of the age sweep (store.ts `deleteOlderThan`).
 */

/** Files younger than this are never called orphans: their upload may still be recording its row. */
const ORPHAN_GRACE_MS = 86_400_000;

export function register(program: Command, ctx: CliContext): void {
  const media = program.command("media").description("attachments: pictures, avatars, videos");

  media
    .command("gc")
    .description(
      "delete attachments uploaded before a moment (current avatars stay), partial uploads, files without a row and unfinished XEP-0363 uploads",
    )
    .requiredOption("--older-than <duration>", "age of the attachments to delete: 90d, 12h, 30m, 2w")
    .option("--dry-run", "count what would be deleted, delete nothing")
    .option("--batch <n>", "attachments per delete", "500")
    .action(async (opts: { olderThan: string; dryRun?: boolean; batch: string }) => {
      const age = parseDuration(opts.olderThan);
      const batch = Number(opts.batch);
      if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
        throw new CliError(`--batch: "${opts.batch}" is not a whole number from 1 to 10000`, 2);
      }
      const cutoff = cutoffBefore(age);
      const pool = await ctx.pool();
      if (opts.dryRun) {
        ctx.out(
          `would delete ${await countOlderThan(pool, cutoff)} attachment(s) uploaded before ${cutoff.toISOString()} and ${await countAbandoned(pool)} unfinished XEP-0363 upload(s)`,
        );
        return;
      }
      const storage = await createStorage(ctx.config().media.storage);
      try {
        const bar = process.stderr.isTTY
          ? new SingleBar({
              format: "media gc [{bar}] {value}/{total} attachments {eta_formatted} left",
              stream: process.stderr,
              hideCursor: true,
            })
          : undefined;
        bar?.start(await countOlderThan(pool, cutoff), 0);
        let deleted = { attachments: 0, files: 0 };
        try {
          deleted = await deleteOldAttachments(pool, storage, cutoff, {
            batch,
            onBatch(attachments) {
              if (bar && attachments > bar.getTotal()) bar.setTotal(attachments);
              bar?.update(attachments);
            },
          });
        } finally {
          bar?.stop();
        }
        const { attachments, files } = deleted;
        const unfinished = await dropAbandoned(pool);
        await removeFiles(storage, unfinished);
        const partial = await storage.sweepPartial(ORPHAN_GRACE_MS);
        const orphans = await sweepOrphans(storage, pool);
        ctx.out(
          `deleted ${attachments} attachment(s) (${files} file(s) with thumbnails) uploaded before ${cutoff.toISOString()}; removed ${orphans} file(s) without a row, ${partial} partial upload(s) and ${unfinished.length} unfinished XEP-0363 upload(s)`,
        );
      } finally {
        await storage.close();
      }
    });

  registerImport(media, ctx);
}

/** Files older than the grace period that no row names. */
async function sweepOrphans(storage: Storage, pool: Parameters<typeof knownNames>[0]): Promise<number> {
  const cutoff = Date.now() - ORPHAN_GRACE_MS;
  let removed = 0;
  let pending: string[] = [];
  const flush = async () => {
    const known = await knownNames(pool, pending);
    const orphans = pending.filter((n) => !known.has(n));
    await removeFiles(storage, orphans);
    removed += orphans.length;
    pending = [];
  };
  for await (const object of storage.list()) {
    if (object.modified.getTime() >= cutoff) continue;
    pending.push(object.key);
    if (pending.length >= 1000) await flush();
  }
  if (pending.length > 0) await flush();
  return removed;
}
