import { RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import type { RateLimitName } from "../config/schema.ts";
import type { Pool } from "../db/pool.ts";
import { commonErrors } from "./common-errors.ts";

/**
 * Rate limits shared by every process through PostgreSQL (rate-limiter-flexible, table `rate_limits` from the
 * migrations). `consume` answers 429 with Retry-After once a key has used its points; a database outage
 * propagates as the database error (503 database_unavailable), never as a silent pass.
 */
export interface RateLimit {
  /** Takes one point for `key`; throws 429 `rate_limited` (common-errors.ts) when none is left. */
  consume(key: string, points?: number): Promise<void>;
  /** Forgets `key` (e.g. after a successful login). */
  reset(key: string): Promise<void>;
}

export function createRateLimit(
  pool: Pool,
  name: RateLimitName | string,
  limit: { points: number; seconds: number },
  describe: (retryAfterS: number) => string = (s) => `Too many requests; retry in ${s} s.`,
): RateLimit {
  const limiter = new RateLimiterPostgres({
    storeClient: pool,
    storeType: "pool",
    tableName: "rate_limits",
    tableCreated: true,
    keyPrefix: name,
    points: limit.points,
    duration: limit.seconds,
  });
  return {
    async consume(key, points = 1) {
      try {
        await limiter.consume(key, points);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        const retryAfterS = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
        throw commonErrors.rateLimited(describe(retryAfterS), retryAfterS);
      }
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}
