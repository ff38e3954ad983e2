import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import { errors } from "../errors.ts";
import { leavesReserve } from "./upload-policy.ts";

/**
 * `media.freeSpaceReserveBytes` for backends that know their free space (fs: statfs of the storage root).
 * A full disk would fail every write of every service on the machine (PostgreSQL's too, when it shares the
 * disk): uploads stop first, with 507, while the reserve is still there.
 */
export type FreeSpaceCheck = (coming: number) => Promise<void>;

/**
 * How long one reading of the free space stands. A statfs per upload waited behind the fsyncs of the uploads
 * in flight on libuv's 4 threads (5 ms of every XEP-0363 PUT at 16 in flight); within the second, what this
 * process accepted since is taken off the reading, so only other writers' bytes of that second go unseen.
 */
const READING_MS = 1000;

export function createFreeSpaceCheck(storage: Storage, reserve: number, log: Logger): FreeSpaceCheck {
  let lastWarning = 0;
  let reading: { free: number; at: number; promised: number } | undefined;
  let reads: Promise<void> | undefined;
  const read = async (freeBytes: () => Promise<number>) => {
    const at = Date.now();
    const free = await freeBytes();
    reading = { free, at, promised: 0 };
  };
  return async (coming) => {
    if (reserve <= 0 || !storage.freeBytes) return;
    if (!reading || Date.now() - reading.at >= READING_MS) {
      // uploads arriving together share one statfs
      reads ??= read(storage.freeBytes.bind(storage)).finally(() => {
        reads = undefined;
      });
      await reads;
    }
    const r = reading as NonNullable<typeof reading>;
    const free = r.free - r.promised;
    if (leavesReserve(free, coming, reserve)) {
      r.promised += coming;
      return;
    }
    // the operator must hear of it, but an upload loop must not flood the log: a line a minute at most
    if (Date.now() - lastWarning > 60_000) {
      lastWarning = Date.now();
      log.warn({ free, reserve, coming }, "uploads refused: media storage is below its free-space reserve");
    }
    throw errors.insufficientStorage();
  };
}
