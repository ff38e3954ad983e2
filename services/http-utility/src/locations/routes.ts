import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import type { Jid } from "#common/users/jid.ts";
import { type Caller, type CallerPolicy, caller, serverDomain } from "../callers.ts";
import { errors } from "../errors.ts";
import {
  documentedBody,
  type HistoryAnswer,
  historyAnswer,
  historyQuery,
  latestAnswer,
  latestQuery,
  locationsBody,
  readParams,
  reportFields,
  storedAnswer,
} from "./schema.ts";
import { latestLocation, locationHistory, ownersOf, storeLocations } from "./store.ts";

/**
 * Location reports (docs/locations-and-versions.md; docs/security.md "Who can call what"): an
 * app user reports and reads only their own; a server key with the scope `locations:read` reads anyone's.
 */

/** An msisdn is the node of its owner's JID; apps write it with or without the leading `+`. */
const bare = (msisdn: string) => msisdn.replace(/^\+/, "");
const sameNumber = (a: string, b: string) => bare(a) === bare(b);

const reader = caller.appOrServer("locations:read");
const readErrors = [
  errors.msisdnNotYours,
  errors.locationsOfOtherDomain,
  errors.ambiguousMsisdn,
  errors.noLocations,
];

export function locationsRoutes(deps: {
  config: Pick<Config, "domains" | "services">;
  pool: Pool;
}): Route<CallerPolicy>[] {
  const { pool } = deps;
  const limits = deps.config.services.httpUtility.locations;

  /** Whose locations a read is about: the app user themself, or the one account a server key names. */
  async function ownerFor(who: Caller, msisdn: string, domain: string | undefined): Promise<Jid | undefined> {
    if (who.kind === "app") {
      if (!sameNumber(msisdn, who.jid.node)) throw errors.msisdnNotYours(msisdn);
      if (domain !== undefined && domain !== who.jid.domain) throw errors.locationsOfOtherDomain();
      return who.jid;
    }
    const named = serverDomain(who, domain);
    const domains = named !== undefined ? [named] : Object.keys(deps.config.domains);
    const owners = await ownersOf(pool, domains, [msisdn]);
    // `+30…` and `30…` are two accounts only if both exist; then the msisdn as written picks one
    const exact = owners.filter((o) => o.node === msisdn);
    const candidates = exact.length > 0 ? exact : owners;
    if (candidates.length > 1) {
      throw errors.ambiguousMsisdn(
        msisdn,
        candidates.map((o) => o.domain),
      );
    }
    return candidates[0];
  }

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/locations",
      summary: "Report the caller's location(s)",
      description:
        'One report, a JSON array of reports, or `{ "locations": [...] }`, at most ' +
        "`services.httpUtility.locations.maxBatch` (500 by default) in one request. Every msisdn must be the " +
        "caller's own; a batch is stored whole or not at all. A `date` may be at most " +
        "`services.httpUtility.locations.futureSkewSeconds` (300 by default) ahead of the server's clock. A " +
        "report with the same date as one already stored (a retried batch) is kept once.",
      caller: caller.appOrLegacy("locations", (req) => {
        // a report or a batch of them: the first report's msisdn (the handler refuses a batch naming others)
        const body = req.body as unknown;
        const first = Array.isArray(body) ? body[0] : body;
        return (first as { msisdn?: unknown } | undefined)?.msisdn;
      }),
      request: {
        body: locationsBody(limits),
        documentedBody: {
          "application/json": documentedBody,
          "application/x-www-form-urlencoded": reportFields,
        },
      },
      responses: {
        201: {
          description: "Stored: `stored` is the number of reports in the request",
          schema: storedAnswer,
        },
      },
      errors: [errors.msisdnNotYours],
      async handler({ body: reports, caller: who, res }) {
        // every report is checked before any is stored: a batch with one stranger's number stores nothing
        const stranger = reports.find((r) => !sameNumber(r.msisdn, who.jid.node));
        if (stranger) throw errors.msisdnNotYours(stranger.msisdn);
        await storeLocations(pool, who.jid, reports);
        res.status(201).json({ stored: reports.length });
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/locations/{msisdn}/latest",
      summary: "The latest location of a user",
      description:
        "An app user reads their own; a server key needs the scope `locations:read` (and `domain` when the msisdn has locations in several domains).",
      caller: reader,
      request: { params: readParams, query: latestQuery },
      responses: { 200: { description: "The report with the newest date", schema: latestAnswer } },
      errors: readErrors,
      async handler({ params, query, caller: who, res }) {
        const owner = await ownerFor(who, params.msisdn, query.domain);
        const location = owner && (await latestLocation(pool, owner));
        if (!owner || !location) throw errors.noLocations(params.msisdn, owner?.domain ?? query.domain);
        res.json({ msisdn: owner.node, domain: owner.domain, location });
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/locations/{msisdn}",
      summary: "A user's locations in a time range, newest first, a page at a time",
      description:
        "Pass the answer's `next` as `before` (with the same `from`, `to`, `limit`) for the next, older page; `next` is null on the last page.",
      caller: reader,
      request: { params: readParams, query: historyQuery },
      responses: { 200: { description: "One page", schema: historyAnswer } },
      errors: readErrors,
      async handler({ params, query, caller: who, res }) {
        const owner = await ownerFor(who, params.msisdn, query.domain);
        if (!owner) throw errors.noLocations(params.msisdn, query.domain);
        const page = await locationHistory(pool, owner, query);
        const answer: HistoryAnswer = {
          msisdn: owner.node,
          domain: owner.domain,
          locations: page.locations,
          next: page.next ?? null,
        };
        res.json(answer);
      },
    }),
  ];
}
