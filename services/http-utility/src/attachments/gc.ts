import type { Pool } from "#common/db/pool.ts";
import type { Storage } from "#common/media/storage.ts";
import { deleteOlderThan } from "./store.ts";

/**
 * Attachments past their age, rows then files: shared by `sidecars media gc` and the retention purge
 * (services/http-utility/src/retention/purge.ts). Rows go first, in batches, so a rerun resumes; a file
 * whose delete failed is left for gc's orphan sweep.
 */

/** Attachments per batch: each batch deletes its files before the next, so it stays small. */
export const GC_BATCH = 500;

export async function deleteOldAttachments(
  pool: Pool,
  storage: Storage,
  cutoff: Date,
  o: { batch?: number; onBatch?: (attachments: number) => void } = {},
): Promise<{ attachments: number; files: number }> {
  let attachments = 0;
  let files = 0;
  for (;;) {
    const { originals, names } = await deleteOlderThan(pool, cutoff, o.batch ?? GC_BATCH);
    if (names.length === 0) return { attachments, files };
    await removeFiles(storage, names);
    files += names.length;
    attachments += originals;
    o.onBatch?.(attachments);
  }
}

export async function removeFiles(storage: Storage, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(names.slice(i, i + 16).map((n) => storage.delete(n)));
  }
}
