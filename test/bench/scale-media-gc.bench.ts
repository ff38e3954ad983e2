import type pg from "pg";
import type { Storage } from "#common/media/storage.ts";
import { deleteOldAttachments, GC_BATCH } from "../../services/http-utility/src/attachments/gc.ts";
import type { Benchmark, Side } from "./frame.ts";
import { GC_AGE_DAYS, gcCutoff, oldAttachmentsOnly, restoreOldAttachments } from "./scale-data.ts";
import { scaleDatabases, scalePools } from "./scale-support.ts";

class Stop extends Error {}

/**
 * `sidecars media gc`'s deletion (gc.ts `deleteOldAttachments`, its default batch) for the round's duration,
 * timed; the files are deleted by a storage that only counts them (the rows are what grows with the data:
 * a file's delete costs the same whatever the table holds). The rows it deleted are written back and the table
 * vacuumed before the next round, outside the timed part. Figure: rows deleted (originals and their variants) per second.
 */
function gcSide(label: string, pool: pg.Pool, base: Date): Side {
  const cutoff = gcCutoff(base);
  return {
    label,
    async measure(durationS) {
      await restoreOldAttachments(pool, base);
      // as autovacuum would have by the next gc: the last round's dead rows are not this one's work
      await pool.query("VACUUM attachments");
      let rows = 0;
      const storage = {
        async delete() {
          rows++;
        },
      } as unknown as Storage;
      const t0 = performance.now();
      const until = t0 + durationS * 1000;
      try {
        await deleteOldAttachments(pool, storage, cutoff, {
          onBatch() {
            if (performance.now() > until) throw new Stop();
          },
        });
      } catch (err) {
        if (!(err instanceof Stop)) throw err;
      }
      const elapsedS = (performance.now() - t0) / 1000;
      if (rows === 0) throw new Error(`${label}: gc found nothing to delete`);
      return { value: rows / elapsedS };
    },
  };
}

export const benchmark: Benchmark = {
  name: "scale-media-gc",
  figure: "rows/s",
  description:
    `sidecars media gc --older-than ${GC_AGE_DAYS}d (deleteOldAttachments, batch ${GC_BATCH}, file deletes ` +
    "counted only) for the round's duration: among 1000000 attachment rows (about 9 % old enough, old current " +
    "avatars kept) vs a database holding only the old ones; goal ratio >= 0.8",
  async start(ctx) {
    const dbs = await scaleDatabases(ctx);
    const pools = scalePools(ctx, dbs);
    await oldAttachmentsOnly(pools.empty, dbs.base);
    await pools.empty.query("VACUUM ANALYZE attachments, avatars");
    ctx.defer(() => restoreOldAttachments(pools.big, dbs.base));
    return {
      project: gcSide("1M attachment rows", pools.big, dbs.base),
      baseline: gcSide("old rows only", pools.empty, dbs.base),
    };
  },
};
