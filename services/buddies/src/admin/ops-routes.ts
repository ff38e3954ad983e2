import { Router } from "express";
import { z } from "zod";
import { loginFailureSummary, loginFailuresOf } from "#auth";
import { retentionMs } from "#common/config/retention-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { validated } from "#common/http/validate.ts";
import { lastRetentionRuns } from "#common/retention-runs.ts";
import { parseJid } from "#common/users/jid.ts";
import { errors } from "../errors.ts";

/**
 * The operator console's lockouts and retention status (docs/operations.md "Operator console"), behind the
 * admin keys of the rest of the admin API (mounted after `requireAdmin` and `sameOrigin` in app.ts).
 * Lockouts: the failure counters in force (services/auth/src/core/brute-force-guard.ts: hashes, never names
 * or addresses), overall and for one user. Retention: what each kind of data keeps, the schedule, and the
 * last runs (migrations/1764680000060_retention-runs.sql).
 */

const jidParams = z.object({ jid: z.string().min(3).max(1100) });

export function opsRouter(deps: { config: Config; pool: Pool }): Router {
  const { pool, config } = deps;
  const router = Router();

  router.get("/api/lockouts", async (_req, res) => {
    const guard = config.services.auth.guard;
    res.json({
      lockouts: await loginFailureSummary(pool, guard),
      guard: {
        maxFailures: guard.maxFailures,
        maxFailuresPerAddress: guard.maxFailuresPerAddress,
        windowSeconds: guard.windowSeconds,
        lockSeconds: guard.lockSeconds,
      },
    });
  });

  router.get(
    "/api/lockouts/:jid",
    validated({ params: jidParams }, async ({ params }, _req, res) => {
      let jid: ReturnType<typeof parseJid>;
      try {
        jid = parseJid(params.jid);
      } catch (err) {
        throw errors.invalidUserJid((err as Error).message);
      }
      res.json({
        jid: `${jid.node}@${jid.domain}`,
        ...(await loginFailuresOf(pool, jid, config.services.auth.guard)),
      });
    }),
  );

  router.get("/api/retention", async (_req, res) => {
    const { schedule, ...kinds } = config.retention;
    res.json({
      schedule,
      kinds: Object.entries(kinds).map(([kind, value]) => ({
        kind,
        keep: String(value),
        forever: retentionMs(value) === undefined,
      })),
      runs: await lastRetentionRuns(pool, 20),
    });
  });

  return router;
}
