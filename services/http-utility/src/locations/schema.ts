import { z } from "zod";
import type { Config } from "#common/config/schema.ts";
import { validateNode } from "#common/users/jid.ts";

/** POST /api/v1/locations and its reads (docs/locations-and-versions.md "Location reports"). */

type Limits = Config["services"]["httpUtility"]["locations"];

/** Reports dated before this are refused: epoch seconds sent as milliseconds land in January 1970. */
const EARLIEST = Date.UTC(2000, 0, 1);
const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** A number, or a numeric string (forms send only strings), within [min, max]. */
const coordinate = (min: number, max: number, what: string) =>
  z
    .union([z.number(), z.string().trim().regex(NUMERIC, `${what} must be a number`).transform(Number)], {
      error: `${what} must be a number`,
    })
    .pipe(
      z
        .number({ error: `${what} must be between ${min} and ${max}` })
        .min(min, `${what} must be between ${min} and ${max}`)
        .max(max, `${what} must be between ${min} and ${max}`),
    )
    .meta({ description: `${what}, ${min} to ${max} (a number, or a numeric string in a form)` });

/** ISO 8601 with a time zone (`2024-05-01T12:00:00Z`, `…+03:00`) or epoch milliseconds (number or digits). */
const instant = z
  .union(
    [
      z.number().int(),
      z.string().trim().regex(/^\d+$/).transform(Number),
      z.iso.datetime({ offset: true }).transform((s) => new Date(s)),
    ],
    {
      error: "must be ISO 8601 with a time zone (2024-05-01T12:00:00Z) or epoch milliseconds (1714564800000)",
    },
  )
  .transform((v) => (v instanceof Date ? v : new Date(v)))
  .pipe(
    z
      // digits beyond Date's range make an Invalid Date: out of range, like any date past the max below
      .date({ error: "is out of range" })
      .min(new Date(EARLIEST), "is before 2000: send epoch milliseconds, not seconds")
      .max(new Date(8.64e15), "is out of range"),
  )
  .meta({ description: "ISO 8601 with a time zone, or epoch milliseconds", example: "2024-05-01T12:00:00Z" });

const appField = (what: string) =>
  z
    .union([z.string(), z.number().transform(String)], { error: `${what} must be a string` })
    .pipe(z.string().trim().min(1, `${what} is required`).max(64, `${what} is longer than 64 characters`));

/** The user part of the reporter's JID: an msisdn, with or without its leading `+`. */
const msisdnText = z
  .string()
  .trim()
  .toLowerCase()
  .superRefine((v, ctx) => {
    const problem = validateNode(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem.replace("the user part", "msisdn") });
  })
  .meta({ description: "the user's msisdn: the node of their JID, with or without a leading +" });

/** In a body an msisdn may come as a JSON number too. */
const msisdn = z
  .union([z.string(), z.number().int().nonnegative().transform(String)], { error: "msisdn must be a string" })
  .pipe(msisdnText)
  .meta({ description: "the caller's own msisdn: the node of their JID, with or without a leading +" });

/** The fields of one report, as documented; `locationReport` adds the check of `date` against the clock. */
export const reportFields = z
  .object({
    msisdn,
    latitude: coordinate(-90, 90, "latitude"),
    longitude: coordinate(-180, 180, "longitude"),
    date: instant,
    app_type: appField("app_type"),
    app_version: appField("app_version"),
  })
  .meta({ id: "LocationReport" });

/** One report; `date` may be at most `futureSkewSeconds` ahead of this server's clock. */
export function locationReport(limits: Limits, now: () => number = Date.now) {
  return reportFields.extend({
    date: instant.refine((d) => d.getTime() <= now() + limits.futureSkewSeconds * 1000, {
      message: `is in the future (more than ${limits.futureSkewSeconds} s ahead of the server's clock)`,
    }),
  });
}
export type LocationReport = z.output<typeof reportFields>;

/**
 * The body: one report, a JSON array of reports, or `{ locations: [...] }`. Each shape is checked by its own
 * schema, so a problem is named by its place ("3.latitude: …", "locations.3.latitude: …", "latitude: …")
 * rather than as a failed union.
 */
export function locationsBody(limits: Limits, now?: () => number) {
  const report = locationReport(limits, now);
  const batch = z
    .array(report)
    .min(1, "no reports: send at least one")
    .max(limits.maxBatch, `at most ${limits.maxBatch} reports per request`);
  const wrapped = z.object({ locations: batch });
  return z.unknown().transform((body, ctx): LocationReport[] => {
    if (Array.isArray(body)) return take(batch.safeParse(body), (r) => r);
    if (typeof body === "object" && body !== null && "locations" in body) {
      return take(wrapped.safeParse(body), (r) => r.locations);
    }
    return take(report.safeParse(body), (r) => [r]);

    function take<T>(r: z.ZodSafeParseResult<T>, pick: (data: T) => LocationReport[]) {
      if (r.success) return pick(r.data);
      ctx.issues.push(...(r.error.issues as typeof ctx.issues));
      return z.NEVER;
    }
  });
}

/** The body as documented (OpenAPI): the three shapes `locationsBody` accepts. */
export const documentedBody = z.union([
  reportFields,
  z.array(reportFields).min(1),
  z.object({ locations: z.array(reportFields).min(1) }),
]);

/**
 * The instants a query may name: years 0001 to 9999, what ISO 8601's four-digit years write and PostgreSQL's
 * timestamptz reads back. Beyond them `Date#toISOString` throws a RangeError (a 500) or writes a six-digit
 * year that PostgreSQL refuses.
 */
const EARLIEST_QUERY = Date.parse("0001-01-01T00:00:00Z");
const LATEST_QUERY = Date.parse("9999-12-31T23:59:59.999Z");
const TIME_QUERY_FORMAT = "must be ISO 8601 with a time zone or epoch milliseconds";
const TIME_QUERY_RANGE = `is out of range: send a date from 0001 to 9999 (epoch milliseconds up to ${LATEST_QUERY})`;

/** A point in time in a query: kept as text for PostgreSQL, which reads microseconds that a Date would lose. */
const timeQuery = z
  .string({ error: TIME_QUERY_FORMAT })
  .trim()
  .transform((s, ctx) => {
    const epoch = /^\d+$/.test(s);
    if (!epoch && !z.iso.datetime({ offset: true }).safeParse(s).success) {
      ctx.addIssue({ code: "custom", message: TIME_QUERY_FORMAT });
      return z.NEVER;
    }
    const ms = epoch ? Number(s) : Date.parse(s);
    if (!(ms >= EARLIEST_QUERY && ms <= LATEST_QUERY)) {
      ctx.addIssue({ code: "custom", message: TIME_QUERY_RANGE });
      return z.NEVER;
    }
    return epoch ? new Date(ms).toISOString() : s;
  });

export const MAX_LIMIT = 1000;

export const readParams = z.object({ msisdn: msisdnText });

export const historyQuery = z.object({
  from: timeQuery.optional().meta({ description: "oldest date included (ISO 8601 or epoch ms)" }),
  to: timeQuery.optional().meta({ description: "newest date included (ISO 8601 or epoch ms)" }),
  before: timeQuery
    .optional()
    .meta({ description: "the `next` cursor of the previous page: only reports dated before it" }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .default(100)
    .meta({ description: `reports per page, 1 to ${MAX_LIMIT}` }),
  domain: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9.-]+$/, "a domain is lower-case letters, digits, dots, dashes")
    .optional()
    .meta({ description: "the user's XMPP domain; needed when the msisdn has locations in several domains" }),
});

export const latestQuery = historyQuery.pick({ domain: true });

const storedLocation = z
  .object({
    latitude: z.number(),
    longitude: z.number(),
    date: z.string().meta({ description: "ISO 8601, UTC" }),
    app_type: z.string(),
    app_version: z.string(),
  })
  .meta({ id: "StoredLocation" });

export const storedAnswer = z.object({ stored: z.number().int() });

export const latestAnswer = z.object({
  msisdn: z.string(),
  domain: z.string(),
  location: storedLocation,
});

export const historyAnswer = z.object({
  msisdn: z.string(),
  domain: z.string(),
  locations: z.array(storedLocation).meta({ description: "newest first" }),
  next: z
    .string()
    .nullable()
    .meta({ description: "pass as `before` for the next (older) page; null on the last page" }),
});
export type HistoryAnswer = z.infer<typeof historyAnswer>;
export type StoredLocation = z.infer<typeof storedLocation>;
