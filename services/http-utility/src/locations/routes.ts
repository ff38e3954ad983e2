import { type Response, Router } from "express";
import { HttpError } from "#common/errors.ts";
import { validated } from "#common/http/validate.ts";
import type { Jid } from "#common/users/jid.ts";
import type { AppDeps } from "../app.ts";
import { type Callers, callerOf } from "../callers.ts";
import { type HistoryAnswer, historyQuery, latestQuery, locationsBody, readParams } from "./schema.ts";
import { latestLocation, locationHistory, ownersOf, storeLocations } from "./store.ts";

/**
 * Location reports (legacy-api.md "Users, locations, app version"; architecture.md "Security model"): an
 * app user reports and reads only their own; a server key with the scope `locations:read` reads anyone's.
 */

/** An msisdn is the node of its owner's JID; apps write it with or without the leading `+`. */
const bare = (msisdn: string) => msisdn.replace(/^\+/, "");
const sameNumber = (a: string, b: string) => bare(a) === bare(b);

const notYours = (msisdn: string) =>
  new HttpError(
    403,
    "forbidden",
    `msisdn ${msisdn} is not yours: report and read the locations of your own account (the user part of your JID) only.`,
  );
const otherDomain = () =>
  new HttpError(403, "forbidden", "You may read the locations of your own domain only: drop ?domain=.");
const noLocations = (msisdn: string, domain: string | undefined) =>
  new HttpError(
    404,
    "not_found",
    `No locations are stored for ${msisdn}${domain ? ` in ${domain}` : ""}: check the msisdn${domain ? " and the domain" : ""}.`,
  );
const ambiguous = (msisdn: string, owners: Jid[]) =>
  new HttpError(
    400,
    "ambiguous_msisdn",
    `${msisdn} has locations in several domains (${owners.map((o) => o.domain).join(", ")}): add ?domain= naming one.`,
  );

export function locationsRouter(deps: Pick<AppDeps, "config" | "pool"> & { callers: Callers }): Router {
  const { pool, callers } = deps;
  const body = locationsBody(deps.config.services.httpUtility.locations);
  const router = Router();

  router.post(
    "/",
    callers.app,
    validated({ body }, async ({ body: reports }, _req, res) => {
      const caller = callerOf(res);
      if (caller.kind !== "app") throw new Error("locations: POST reached without an app caller");
      // every report is checked before any is stored: a batch with one stranger's number stores nothing
      const stranger = reports.find((r) => !sameNumber(r.msisdn, caller.jid.node));
      if (stranger) throw notYours(stranger.msisdn);
      await storeLocations(pool, caller.jid, reports);
      res.status(201).json({ stored: reports.length });
    }),
  );

  /** Whose locations a read is about: the app user themself, or the one account a server key names. */
  async function ownerFor(
    res: Response,
    msisdn: string,
    domain: string | undefined,
  ): Promise<Jid | undefined> {
    const caller = callerOf(res);
    if (caller.kind === "app") {
      if (!sameNumber(msisdn, caller.jid.node)) throw notYours(msisdn);
      if (domain !== undefined && domain !== caller.jid.domain) throw otherDomain();
      return caller.jid;
    }
    const domains = domain !== undefined ? [domain] : Object.keys(deps.config.domains);
    const owners = await ownersOf(pool, domains, [msisdn]);
    // `+30…` and `30…` are two accounts only if both exist; then the msisdn as written picks one
    const exact = owners.filter((o) => o.node === msisdn);
    const candidates = exact.length > 0 ? exact : owners;
    if (candidates.length > 1) throw ambiguous(msisdn, candidates);
    return candidates[0];
  }

  const reader = callers.appOrServer("locations:read");

  router.get(
    "/:msisdn/latest",
    reader,
    validated({ params: readParams, query: latestQuery }, async ({ params, query }, _req, res) => {
      const owner = await ownerFor(res, params.msisdn, query.domain);
      const location = owner && (await latestLocation(pool, owner));
      if (!owner || !location) throw noLocations(params.msisdn, owner?.domain ?? query.domain);
      res.json({ msisdn: owner.node, domain: owner.domain, location });
    }),
  );

  router.get(
    "/:msisdn",
    reader,
    validated({ params: readParams, query: historyQuery }, async ({ params, query }, _req, res) => {
      const owner = await ownerFor(res, params.msisdn, query.domain);
      if (!owner) throw noLocations(params.msisdn, query.domain);
      const page = await locationHistory(pool, owner, query);
      const answer: HistoryAnswer = {
        msisdn: owner.node,
        domain: owner.domain,
        locations: page.locations,
        next: page.next ?? null,
      };
      res.json(answer);
    }),
  );

  return router;
}
