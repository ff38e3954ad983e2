import { randomBytes } from "node:crypto";
import { type RequestHandler, Router } from "express";
import type { PoolClient } from "pg";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import type { RateLimit } from "#common/http/rate-limit.ts";
import { validated } from "#common/http/validate.ts";
import type { Logger } from "#common/logger.ts";
import type { Jid } from "#common/users/jid.ts";
import { addUser, findUser, type NewSecret, setPassword } from "#common/users/web-users.ts";
import {
  compareVersions,
  isBelow,
  minimumVersion,
  overridesOf,
  resolveMinimum,
} from "../app-version/versions.ts";
import { checkCode, claimSend, clearEndedRetries, commitSend, newCode, releaseSend } from "./challenges.ts";
import { clientOf } from "./client-address.ts";
import type { RegistrationDeps } from "./deps.ts";
import { countryAllowed, normaliseNumber } from "./phone.ts";
import { type AuthorizeAnswer, authorizeBody, type RegisterAnswer, registerBody } from "./schema.ts";
import type { SmsSender } from "./sms/sender.ts";

/**
 * Registration by phone number (legacy-api.md "Users, locations, app version"), both public and rate-limited
 * per address, per number and per (number, address) through PostgreSQL: POST / sends a code by SMS through the
 * domain's sender, within the daily SMS budgets (sms-budget.ts); POST /authorize checks it, consumes it and
 * answers the account's JID and a fresh XMPP password, stored as SCRAM data in web_users. Sessions and their
 * limits: challenges.ts; the policy: docs/registration.md and docs/security.md. The code, the token and the
 * nonce never reach a log (but the code with the `log` sender).
 */

/** Both routes are public: no callers. The senders, budget and limits: `createRegistrationDeps`. */
export interface UsersDeps extends RegistrationDeps {
  config: Pick<Config, "domains" | "apps">;
  log: Logger;
  pool: Pool;
}

const REGISTER = "POST /api/v1/users";
const retryAfter = (s: number) => ({ "retry-after": String(s) });

const errors = {
  unknownDomain: (d: string) =>
    new HttpError(404, "unknown_domain", `No XMPP domain "${d}" is served here: check domain.`),
  registrationDisabled: (d: string) =>
    new HttpError(
      400,
      "registration_disabled",
      `The domain "${d}" does not accept registration by phone number.`,
    ),
  unknownApp: (app: string) =>
    new HttpError(
      400,
      "unknown_app",
      `No app "${app}" is configured: check appName (names are case-sensitive).`,
    ),
  invalidNumber: (message: string) => new HttpError(400, "invalid_number", message),
  countryNotAllowed: (country: string | undefined, d: string, allowed: readonly string[]) =>
    new HttpError(
      400,
      "country_not_allowed",
      `node: numbers of ${country ?? "that calling code"} cannot register in "${d}" (allowed: ${allowed.join(", ")}).`,
    ),
  resendTooSoon: (s: number) =>
    new HttpError(
      429,
      "resend_too_soon",
      `A code was sent to this number a moment ago: enter it, or ask for another one in ${s} s.`,
      retryAfter(s),
    ),
  tooManyCodes: (s: number) =>
    new HttpError(
      429,
      "too_many_codes",
      `No more codes for this number now: enter the last one received, or ask again in ${s} s.`,
      retryAfter(s),
    ),
  smsBudgetExhausted: (scope: "global" | "prefix", prefix: string, s: number) =>
    new HttpError(
      503,
      "sms_budget_exhausted",
      `No registration codes can be sent ${scope === "global" ? "" : `to ${prefix} numbers `}right now: retry in ${s} s.`,
      retryAfter(s),
    ),
  codeUsed: () =>
    new HttpError(
      410,
      "code_used",
      `This code has been used already and works only once: ask for a new code (${REGISTER}).`,
    ),
  smsFailed: () =>
    new HttpError(502, "sms_failed", "The SMS could not be sent; retry in a minute.", retryAfter(60)),
  claimLost: () =>
    new HttpError(
      409,
      "registration_conflict",
      "Another request for this number got in the way; ask for a new code.",
    ),
  noChallenge: () =>
    new HttpError(
      404,
      "no_challenge",
      `No code was sent to this number in this domain: ask for one first (${REGISTER}).`,
    ),
  challengeExpired: () =>
    new HttpError(410, "challenge_expired", `The code has expired: ask for a new one (${REGISTER}).`),
  wrongCode: (left: number) =>
    new HttpError(
      400,
      "wrong_code",
      `challengecode: wrong code; ${left} attempt${left === 1 ? "" : "s"} left before it stops working.`,
    ),
  tooManyAttempts: (s: number) =>
    new HttpError(
      429,
      "too_many_attempts",
      `Too many wrong codes: this code no longer works. Request a new code (${REGISTER}) in ${s} s.`,
      retryAfter(s),
    ),
  accountDisabled: () =>
    new HttpError(403, "account_disabled", "This account is disabled; contact the service's support."),
  noRegistration: () =>
    new HttpError(400, "registration_disabled", "No domain accepts registration by phone number here."),
  domainRequired: () =>
    new HttpError(
      400,
      "invalid_request",
      "domain: required (this server accepts registration in several domains)",
    ),
};

/** A fresh XMPP password: 24 random bytes, base64url (32 characters). */
const newPassword = () => randomBytes(24).toString("base64url");

/** "Your {app} code is {code}": each placeholder replaced once. */
const message = (template: string, values: { app: string; code: string }) =>
  template.replace(/\{(app|code)\}/g, (_, k: "app" | "code") => values[k]);

export function usersRouter(deps: UsersDeps): Router {
  const { config, log, pool, senders, budget } = deps;
  const {
    registerPerIp,
    registerPerNumber,
    registerPerNumberIp,
    authorizePerIp,
    authorizePerNumber,
    authorizePerNumberIp,
  } = deps.limits;
  const perIp =
    (rl: RateLimit): RequestHandler =>
    (req, _res, next) => {
      rl.consume(clientOf(req)).then(() => next(), next);
    };

  // sealed retry tokens are cleared once their window has ended: by the requests of any number, at most
  // once per window and process, off the request's path
  const retryWindowS = Math.min(
    ...Object.values(config.domains).map((d) => d.registration.retryWindowSeconds),
    30,
  );
  let lastClear = 0;
  const clearRetries: RequestHandler = (_req, _res, next) => {
    const now = Date.now();
    if (now - lastClear >= retryWindowS * 1000) {
      lastClear = now;
      clearEndedRetries(pool).catch((err: Error) =>
        log.warn({ err: err.message }, "sealed registration retry tokens not cleared"),
      );
    }
    next();
  };

  function registrationDomain(name: string): { config: DomainConfig; sender: SmsSender } {
    const d = Object.hasOwn(config.domains, name) ? config.domains[name] : undefined;
    if (!d) throw errors.unknownDomain(name);
    const sender = senders.get(name);
    if (!d.registration.enabled || !sender) throw errors.registrationDisabled(name);
    return { config: d, sender };
  }

  const enabledDomains = Object.keys(config.domains).filter((n) => senders.has(n));

  /** The minimum version the app must run; undefined when its config names none. */
  async function requiredMinimum(appName: string, platform: string | undefined): Promise<string | undefined> {
    const found = await minimumVersion(pool, config.apps, appName, platform);
    if (found.ok) return found.minimumVersion;
    if (found.reason === "unknown_app") throw errors.unknownApp(appName);
    // no entry for this platform and no `default`: the lowest configured applies
    const overrides = await overridesOf(pool, appName);
    return found.known
      .flatMap((p) => {
        const m = resolveMinimum(config.apps, overrides, appName, p);
        return m.ok ? [m.minimumVersion] : [];
      })
      .sort(compareVersions)[0];
  }

  const router = Router();

  router.use(clearRetries);

  router.post(
    "/",
    perIp(registerPerIp),
    validated({ body: registerBody }, async ({ body }, req, res) => {
      const domain = registrationDomain(body.domain);
      const minimum = await requiredMinimum(body.appName, body.platform);
      if (minimum !== undefined && isBelow(body.appVersionCode, minimum)) {
        res.status(426).json({
          error: {
            code: "app_version_too_old",
            message: `${body.appName} ${body.appVersionCode} is too old: update to ${minimum} or later.`,
            minimumVersion: minimum,
          },
        });
        return;
      }
      const number = normaliseNumber(body.node);
      if (!number.ok) throw errors.invalidNumber(number.message);
      const allowed = domain.config.registration.countries;
      if (!countryAllowed(number.country, allowed)) {
        throw errors.countryNotAllowed(number.country, body.domain, allowed);
      }

      const jid: Jid = { node: number.msisdn, domain: body.domain };
      const rules = domain.config.registration;
      const app = { name: body.appName, version: body.appVersionCode, platform: body.platform };
      const claim = await claimSend(pool, jid, app, rules);
      if (!claim.ok) {
        throw claim.reason === "too_many_codes"
          ? errors.tooManyCodes(claim.retryAfterS)
          : errors.resendTooSoon(claim.retryAfterS);
      }
      const code = newCode();
      try {
        // a point per code that goes out (not per request): a user waiting for a resend loses nothing.
        // Per (number, address) first: a stranger spends that budget, not the number's (the backstop)
        await registerPerNumberIp.consume(`${number.msisdn}/${clientOf(req)}`);
        await registerPerNumber.consume(number.msisdn);
        const took = await budget.take(number.prefix);
        if (!took.ok) throw errors.smsBudgetExhausted(took.scope, took.prefix, took.retryAfterS);
        try {
          await domain.sender.send(number.e164, message(rules.message, { app: body.appName, code }), code);
        } catch (err) {
          await budget.giveBack(took.scopes).catch(() => {});
          log.warn(
            { domain: jid.domain, node: jid.node, err: (err as Error).message },
            "registration SMS not sent",
          );
          throw errors.smsFailed();
        }
      } catch (err) {
        await releaseSend(pool, jid, claim.claimId).catch(() => {}); // else it lapses by itself
        throw err;
      }
      const sent = await commitSend(pool, jid, claim.claimId, code, rules);
      if (!sent) throw errors.claimLost();
      log.info({ domain: jid.domain, node: jid.node, sends: sent.sends }, "registration code sent");
      const answer: RegisterAnswer = {
        node: jid.node,
        domain: jid.domain,
        expiresIn: sent.expiresInS,
        resendAfter: sent.resendAfterS,
      };
      res.status(sent.sends === 1 ? 201 : 200).json(answer);
    }),
  );

  router.post(
    "/authorize",
    perIp(authorizePerIp),
    validated({ body: authorizeBody }, async ({ body }, req, res) => {
      let name = body.domain;
      if (name === undefined) {
        if (enabledDomains.length > 1) throw errors.domainRequired();
        name = enabledDomains[0];
        if (name === undefined) throw errors.noRegistration();
      }
      const domain = registrationDomain(name);
      const number = normaliseNumber(body.node);
      if (!number.ok) throw errors.invalidNumber(number.message);
      const jid: Jid = { node: number.msisdn, domain: name };
      const client = clientOf(req);
      // per (number, address) first: a stranger's checks stop there and leave the number's own budget alone
      await authorizePerNumberIp.consume(`${number.msisdn}/${client}`);
      await authorizePerNumber.consume(number.msisdn);

      let created = false;
      const check = await checkCode(
        pool,
        jid,
        { code: body.challengecode, client, nonce: body.nonce },
        domain.config.registration,
        newPassword(),
        async (tx, token) => {
          // in the transaction that consumes the code: a refusal here leaves the code unspent
          const existing = await findUser(pool, jid);
          if (existing?.disabled) throw errors.accountDisabled();
          created = !existing;
          await saveUser(tx, jid, { cleartext: token }, domain.config);
        },
      );
      if (!check.ok) {
        if (check.reason === "no_challenge") throw errors.noChallenge();
        if (check.reason === "challenge_expired") throw errors.challengeExpired();
        if (check.reason === "code_used") throw errors.codeUsed();
        if (check.reason === "wrong_code") throw errors.wrongCode(check.attemptsLeft);
        throw errors.tooManyAttempts(check.retryAfterS);
      }
      log.info(
        { domain: jid.domain, node: jid.node, created, replayed: check.replayed },
        "registration authorized",
      );
      const answer: AuthorizeAnswer = {
        jid: `${jid.node}@${jid.domain}`,
        node: jid.node,
        domain: jid.domain,
        token: check.token,
      };
      res.json(answer);
    }),
  );

  /** Creates or updates the account; a concurrent creation of the same account ends as an update. */
  async function saveUser(tx: PoolClient, jid: Jid, secret: NewSecret, d: DomainConfig): Promise<void> {
    // web-users.ts only runs `query`, which a transaction's client has with the pool's signature
    const db = tx as unknown as Pool;
    if (await setPassword(db, jid, secret, d)) return;
    if (await addUser(db, jid, secret, d)) return;
    if (!(await setPassword(db, jid, secret, d))) throw new Error("web_users row vanished while registering");
  }

  return router;
}
