import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { Pool } from "../db/pool.ts";
import { commonErrors } from "../http/common-errors.ts";
import type { Jid } from "../users/jid.ts";

/**
 * The bytes a user may upload in 24 hours (`media.dailyUploadBytes`), kept or later deleted: the storage
 * quota alone lets a user upload, delete and upload again without end (and a new avatar deletes the old
 * one by itself). Counted in the rate-limit table every process shares (rate-limit.ts, migration
 * `rate-limits`), in KiB because its counter is a 32-bit integer. The window starts with the day's first
 * upload and lasts 24 hours.
 */

const DAY_S = 24 * 60 * 60;
const KiB = 1024;

export interface UploadBudget {
  /** Bytes the owner may still upload now, and when the window restarts (undefined: no upload yet). */
  left(owner: Jid): Promise<{ bytes: number; resetsAt: Date | undefined }>;
  /** Takes `bytes` from the owner's budget; 429 `upload_budget_exceeded` (and nothing taken) when over. */
  charge(owner: Jid, bytes: number): Promise<void>;
  /** Gives back what `charge` took (the upload was refused after all). */
  refund(owner: Jid, bytes: number): Promise<void>;
}

const keyOf = (owner: Jid) => `${owner.node}@${owner.domain}`;
const kib = (bytes: number) => Math.max(1, Math.ceil(bytes / KiB));

/** A budget of `dailyBytes` per owner; 0 is no budget (everything passes, nothing is counted). */
export function createUploadBudget(pool: Pool, dailyBytes: number): UploadBudget {
  if (dailyBytes <= 0) {
    return {
      left: async () => ({ bytes: Number.POSITIVE_INFINITY, resetsAt: undefined }),
      charge: async () => {},
      refund: async () => {},
    };
  }
  const points = Math.floor(dailyBytes / KiB);
  const limiter = new RateLimiterPostgres({
    storeClient: pool,
    storeType: "pool",
    tableName: "rate_limits",
    tableCreated: true,
    keyPrefix: "uploadBytesPerDay",
    points,
    duration: DAY_S,
  });
  return {
    async left(owner) {
      const res = await limiter.get(keyOf(owner));
      if (!res) return { bytes: dailyBytes, resetsAt: undefined };
      return {
        bytes: Math.max(0, res.remainingPoints) * KiB,
        resetsAt: new Date(Date.now() + res.msBeforeNext),
      };
    },
    async charge(owner, bytes) {
      try {
        await limiter.consume(keyOf(owner), kib(bytes));
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        // a refused consume has been counted all the same: give it back, the upload is not kept
        await limiter.reward(keyOf(owner), kib(bytes));
        const used = Math.max(0, err.consumedPoints - kib(bytes)) * KiB;
        throw commonErrors.uploadBudgetExceeded(
          dailyBytes,
          used,
          bytes,
          new Date(Date.now() + err.msBeforeNext),
        );
      }
    },
    async refund(owner, bytes) {
      await limiter.reward(keyOf(owner), kib(bytes));
    },
  };
}
