import type pg from "pg";
import { purgeBatch } from "../../services/http-utility/src/locations/store.ts";
import type { Benchmark, Side } from "./frame.ts";
import { LOCATIONS, PURGE_AGE_DAYS, purgeCutoff, restoreOldLocations } from "./scale-data.ts";
import { scaleDatabases, scalePools } from "./scale-support.ts";

/** `sidecars locations purge`'s default --batch (services/cli/src/commands/locations.ts). */
const BATCH = 5000;

/**
 * The purge's loop (services/cli/src/commands/locations.ts: `purgeBatch` until none is left) for the round's
 * duration, timed; the reports it deleted are written back (scale-data.ts) and the table vacuumed before the
 * next round, outside the timed part.
 */
function purgeSide(label: string, pool: pg.Pool, base: Date): Side {
  const cutoff = purgeCutoff(base);
  return {
    label,
    async measure(durationS) {
      await restoreOldLocations(pool, base);
      // as autovacuum would have by the next purge: the last round's dead rows are not this one's work
      await pool.query("VACUUM locations");
      let deleted = 0;
      const t0 = performance.now();
      const until = t0 + durationS * 1000;
      while (performance.now() < until) {
        const n = await purgeBatch(pool, cutoff, BATCH);
        deleted += n;
        if (n === 0) break;
      }
      const elapsedS = (performance.now() - t0) / 1000;
      if (deleted === 0) throw new Error(`${label}: the purge found nothing to delete`);
      return { value: deleted / elapsedS };
    },
  };
}

export const benchmark: Benchmark = {
  name: "scale-locations-purge",
  figure: "rows/s",
  description:
    `sidecars locations purge --older-than ${PURGE_AGE_DAYS}d (purgeBatch, batch ${BATCH}) for the round's ` +
    `duration: among ${LOCATIONS} location reports (a tenth of them old enough) vs a database holding only ` +
    "those old reports; goal ratio >= 0.8",
  async start(ctx) {
    const dbs = await scaleDatabases(ctx);
    const pools = scalePools(ctx, dbs);
    await restoreOldLocations(pools.empty, dbs.base);
    await pools.empty.query("VACUUM ANALYZE locations");
    // the big database keeps its row counts for the next run
    ctx.defer(() => restoreOldLocations(pools.big, dbs.base));
    return {
      project: purgeSide("10M reports", pools.big, dbs.base),
      baseline: purgeSide("old reports only", pools.empty, dbs.base),
    };
  },
};
