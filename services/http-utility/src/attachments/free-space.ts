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

export function createFreeSpaceCheck(storage: Storage, reserve: number, log: Logger): FreeSpaceCheck {
  let lastWarning = 0;
  return async (coming) => {
    if (reserve <= 0 || !storage.freeBytes) return;
    const free = await storage.freeBytes();
    if (leavesReserve(free, coming, reserve)) return;
    // the operator must hear of it, but an upload loop must not flood the log: a line a minute at most
    if (Date.now() - lastWarning > 60_000) {
      lastWarning = Date.now();
      log.warn({ free, reserve, coming }, "uploads refused: media storage is below its free-space reserve");
    }
    throw errors.insufficientStorage();
  };
}
