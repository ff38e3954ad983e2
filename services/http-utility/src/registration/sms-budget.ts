import { Counter, type Registry } from "prom-client";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";

/**
 * The SMS budgets of registration (docs/registration.md, "SMS budgets"): at most `global.points` codes sent per
 * window (a UTC day by default) by the whole cluster, and `perPrefix.points` to the numbers of one calling
 * code (+30, +1…). They bound the operator's bill when someone pumps SMS to premium ranges (toll fraud), which
 * per-number and per-address limits cannot: such an attacker uses many numbers and many addresses.
 *
 * Counted in `sms_budgets` with one conditional upsert per scope, so every process of every machine shares
 * them exactly. A window starts at a multiple of its length since the epoch: 86400 s windows are UTC days.
 */

export interface Budget {
  points: number;
  seconds: number;
}

export type Take =
  | { ok: true; scopes: string[] }
  | { ok: false; scope: "global" | "prefix"; prefix: string; retryAfterS: number };

export interface SmsBudget {
  /** Takes one SMS from the number's prefix budget and the global one, or says which is spent and until when. */
  take(prefix: string): Promise<Take>;
  /** Gives back what `take` took (the SMS did not go out). */
  giveBack(scopes: string[]): Promise<void>;
}

/** The start of the current window of `p` seconds (a parameter's placeholder). */
const windowStart = (p: string) => `to_timestamp(floor(extract(epoch FROM now()) / ${p}::int) * ${p}::int)`;
const WINDOW = windowStart("$2");

const known = new WeakMap<Registry, Counter<"scope">>();

/** The refusals counter in `registry`, made once per registry. */
function refusals(registry: Registry): Counter<"scope"> {
  const existing = known.get(registry);
  if (existing) return existing;
  const counter = new Counter({
    name: "registration_sms_budget_refusals_total",
    help: "Registration codes refused because an SMS budget was spent, by budget (global, or the calling code)",
    labelNames: ["scope"] as const,
    registers: [registry],
  });
  known.set(registry, counter);
  return counter;
}

export function createSmsBudget(deps: {
  pool: Pool;
  log: Logger;
  metrics: Registry;
  global: Budget;
  perPrefix: Budget;
}): SmsBudget {
  const { pool, log } = deps;
  const counter = refusals(deps.metrics);
  const budgetOf = (scope: string) => (scope === "global" ? deps.global : deps.perPrefix);

  /** One more SMS in `scope`'s current window, if its budget allows. */
  async function bump(scope: string): Promise<boolean> {
    const b = budgetOf(scope);
    const r = await pool.query(
      `INSERT INTO sms_budgets AS b (scope, window_start, sent) VALUES ($1, ${WINDOW}, 1)
       ON CONFLICT (scope, window_start) DO UPDATE SET sent = b.sent + 1 WHERE b.sent < $3
       RETURNING b.sent`,
      [scope, b.seconds, b.points],
    );
    return r.rowCount === 1;
  }

  async function unbump(scope: string): Promise<void> {
    await pool.query(
      `UPDATE sms_budgets SET sent = GREATEST(sent - 1, 0) WHERE scope = $1 AND window_start = ${WINDOW}`,
      [scope, budgetOf(scope).seconds],
    );
  }

  /** Counts the refusal; the first one of a window in the whole cluster logs a warning. */
  async function refused(scope: string): Promise<number> {
    const b = budgetOf(scope);
    counter.inc({ scope });
    const first = await pool.query(
      `UPDATE sms_budgets SET reached_at = now()
        WHERE scope = $1 AND window_start = ${WINDOW} AND reached_at IS NULL RETURNING 1`,
      [scope, b.seconds],
    );
    if (first.rowCount === 1) {
      log.warn(
        {
          budget: scope === "global" ? "smsPerDay" : "smsPerPrefixPerDay",
          scope,
          limit: b.points,
          seconds: b.seconds,
        },
        "registration SMS budget reached: no more codes until the window ends (raise services.httpUtility.rateLimits if legitimate)",
      );
    }
    const left = await pool.query<{ s: string }>(
      `SELECT EXTRACT(EPOCH FROM ${windowStart("$1")} + make_interval(secs => $1::int) - now()) AS s`,
      [b.seconds],
    );
    return Math.max(1, Math.ceil(Number(left.rows[0]?.s ?? 1)));
  }

  return {
    async take(prefix) {
      // the prefix first: a refusal there leaves the global budget untouched
      if (!(await bump(prefix))) {
        return { ok: false, scope: "prefix", prefix, retryAfterS: await refused(prefix) };
      }
      if (!(await bump("global"))) {
        await unbump(prefix);
        return { ok: false, scope: "global", prefix, retryAfterS: await refused("global") };
      }
      return { ok: true, scopes: [prefix, "global"] };
    },
    async giveBack(scopes) {
      for (const scope of scopes) await unbump(scope);
    },
  };
}
