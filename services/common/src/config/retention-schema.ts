import { z } from "zod";
import { DURATION_FORMS, durationMs } from "../durations.ts";

/**
 * The `retention` section (docs/operations.md "Retention"): how long each kind of row that grows with use is
 * kept. Each is a duration in the format of the CLI's `--older-than` (`30d`, `12h`); `0` or `"off"` keeps
 * the rows for ever. http-utility purges on `schedule`; `sidecars purge` does the same by hand.
 */

const retention = (fallback: string) =>
  z
    .union([z.literal(0), z.literal("0"), z.literal("off"), z.string()])
    .default(fallback)
    .refine((v) => keepsForEver(v) || durationMs(String(v)) !== undefined, {
      message: `is not a duration: ${DURATION_FORMS}, or 0 (keep for ever)`,
    });

function keepsForEver(v: string | number): boolean {
  return v === 0 || v === "0" || v === "off";
}

/** A configured retention in milliseconds, or undefined when the rows are kept for ever. */
export function retentionMs(value: string | number): number | undefined {
  return keepsForEver(value) ? undefined : durationMs(String(value));
}

export const retentionSchema = z
  .object({
    schedule: z
      .string()
      .min(9)
      .default("17 * * * *")
      .describe("cron expression (UTC) of http-utility's purge: pg-boss runs it once in the cluster"),
    pushNotifications: retention("30d").describe(
      "sent notifications' origins (`push_notifications`), by age: a reply to an older one is refused",
    ),
    broadcasts: retention("30d").describe(
      "channel broadcasts finished that long ago, with their per-token deliveries (`push_broadcasts`, `push_broadcast_deliveries`)",
    ),
    registrationChallenges: retention("7d").describe(
      "phone-registration sessions whose code (and retry window) ended that long ago (`registration_challenges`)",
    ),
    rateLimits: retention("1d").describe(
      "rate-limit and failed-login counters expired that long ago (`rate_limits`)",
    ),
    smsBudgets: retention("30d").describe("SMS budget windows started that long ago (`sms_budgets`)"),
    locations: retention("0").describe(
      "location reports dated that long ago (`locations`); as `sidecars locations purge --older-than`",
    ),
    media: retention("0").describe(
      "attachments uploaded that long ago, rows and files, current avatars kept; as `sidecars media gc --older-than`",
    ),
    jobs: retention("7d").describe(
      "finished pg-boss jobs (broadcasts, reply relays): the queues' `deleteAfterSeconds`, applied by pg-boss",
    ),
  })
  .strict()
  .prefault({})
  .describe('how long rows that grow with use are kept (docs/operations.md "Retention")');

export type RetentionConfig = z.infer<typeof retentionSchema>;
