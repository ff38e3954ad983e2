import { randomBytes } from "node:crypto";
import type { RequestHandler } from "express";
import type { PoolClient } from "pg";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { RateLimit } from "#common/http/rate-limit.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
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
import { type CallerPolicy, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import { checkCode, claimSend, clearEndedRetries, commitSend, newCode, releaseSend } from "./challenges.ts";
import { clientOf } from "./client-address.ts";
import type { RegistrationDeps } from "./deps.ts";
import { countryAllowed, normaliseNumber } from "./phone.ts";
import {
  type AuthorizeAnswer,
  appTooOldAnswer,
  authorizeAnswer,
  authorizeBody,
  type RegisterAnswer,
  registerAnswer,
  registerBody,
} from "./schema.ts";
import type { SmsSender } from "./sms/sender.ts";

/**
 * Registration by phone number (docs/registration.md "What the app sees"), both public and rate-limited
 * per address, per number and per (number, address) through PostgreSQL: POST /api/v1/users sends a code by
 * SMS through the domain's sender, within the daily SMS budgets (sms-budget.ts); POST /api/v1/users/authorize
 * checks it, consumes it and answers the account's JID and a fresh XMPP password, stored as SCRAM data in
 * web_users. Sessions and their limits: challenges.ts; the policy: docs/registration.md and
 * docs/security.md. The code, the token and the nonce never reach a log (but the code with the `log` sender).
 */

/** Both routes are public: no callers. The senders, budget and limits: `createRegistrationDeps`. */
export interface RegistrationRoutesDeps extends RegistrationDeps {
  config: Pick<Config, "domains" | "apps">;
  log: Logger;
  pool: Pool;
}

/** A fresh XMPP password: 24 random bytes, base64url (32 characters). */
const newPassword = () => randomBytes(24).toString("base64url");

/** "Your {app} code is {code}": each placeholder replaced once. */
const message = (template: string, values: { app: string; code: string }) =>
  template.replace(/\{(app|code)\}/g, (_, k: "app" | "code") => values[k]);

export function registrationRoutes(deps: RegistrationRoutesDeps): Route<CallerPolicy>[] {
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
    if (found.reason === "unknown_app") throw errors.unknownRegistrationApp(appName);
    // no entry for this platform and no `default`: the lowest configured applies
    const overrides = await overridesOf(pool, appName);
    return found.known
      .flatMap((p) => {
        const m = resolveMinimum(config.apps, overrides, appName, p);
        return m.ok ? [m.minimumVersion] : [];
      })
      .sort(compareVersions)[0];
  }

  /** Creates or updates the account; a concurrent creation of the same account ends as an update. */
  async function saveUser(tx: PoolClient, jid: Jid, secret: NewSecret, d: DomainConfig): Promise<void> {
    // web-users.ts only runs `query`, which a transaction's client has with the pool's signature
    const db = tx as unknown as Pool;
    if (await setPassword(db, jid, secret, d)) return;
    if (await addUser(db, jid, secret, d)) return;
    if (!(await setPassword(db, jid, secret, d))) throw new Error("web_users row vanished while registering");
  }

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/users",
      summary: "Start a registration: send a code by SMS",
      description:
        "Checks the app and its version, normalises the phone number to E.164 and sends a 6-digit code through " +
        "the domain's SMS sender. Asking again for the same number sends a new code (the previous one stops " +
        "working) once `resendAfter` seconds have passed, a few times per session; a session ends when its " +
        "last code expires. Public, rate-limited per address, per (number, address) and per number, within " +
        "daily SMS budgets (global and per calling code).",
      caller: caller.public,
      // counted before the body is read: malformed requests spend the address's budget too
      use: [clearRetries, perIp(registerPerIp)],
      request: { body: registerBody },
      responses: {
        201: { description: "The first code of a session was sent", schema: registerAnswer },
        200: { description: "Another code of the session was sent", schema: registerAnswer },
        426: {
          description: "The app is older than the minimum version of its platform",
          schema: appTooOldAnswer,
        },
      },
      errors: [
        errors.invalidNumber,
        errors.countryNotAllowed,
        errors.unknownRegistrationApp,
        errors.registrationDisabled,
        errors.unknownDomain,
        errors.registrationConflict,
        errors.appVersionTooOld,
        errors.resendTooSoon,
        errors.tooManyCodes,
        errors.rateLimited,
        errors.smsFailed,
        errors.smsBudgetExhausted,
      ],
      async handler({ body, req, res }) {
        const domain = registrationDomain(body.domain);
        const minimum = await requiredMinimum(body.appName, body.platform);
        if (minimum !== undefined && isBelow(body.appVersionCode, minimum)) {
          throw errors.appVersionTooOld(body.appName, body.appVersionCode, minimum);
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
        if (!sent) throw errors.registrationConflict();
        log.info({ domain: jid.domain, node: jid.node, sends: sent.sends }, "registration code sent");
        const answer: RegisterAnswer = {
          node: jid.node,
          domain: jid.domain,
          expiresIn: sent.expiresInS,
          resendAfter: sent.resendAfterS,
        };
        res.status(sent.sends === 1 ? 201 : 200).json(answer);
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/users/authorize",
      summary: "Check the code; create or update the account",
      description:
        "The right code creates the account (or gives an existing one a new password) and answers its JID and " +
        "XMPP password (`token`). A code works once: sent again after its success it answers 410 `code_used`, " +
        "from any address.\n\n" +
        "**Retrying a lost answer.** Make a `nonce` (at least 128 random bits, e.g. 22 base64url characters) " +
        "once per registration, keep it in memory, and send it with the authorize request. When the answer is " +
        "lost (timeout, connection cut), send the very same request again (same `node`, `challengecode`, " +
        "`domain` and `nonce`) within `retryWindowSeconds` (30 s by default): it answers the same `token`. " +
        "Without the nonce, with another one, or later, it answers 410 `code_used`: ask for a new code.\n\n" +
        "Wrong codes count per client address: after `maxChecks` (5) from one address the code stops working " +
        "for that address, after `maxChecksPerNumber` (15) from all addresses together for everyone.",
      caller: caller.public,
      use: [clearRetries, perIp(authorizePerIp)],
      request: { body: authorizeBody },
      responses: { 200: { description: "The account and its new XMPP password", schema: authorizeAnswer } },
      errors: [
        errors.invalidRequest,
        errors.invalidNumber,
        errors.wrongCode,
        errors.registrationDisabled,
        errors.noRegistration,
        errors.accountDisabled,
        errors.unknownDomain,
        errors.noChallenge,
        errors.challengeExpired,
        errors.codeUsed,
        errors.tooManyAttempts,
        errors.rateLimited,
      ],
      async handler({ body, req, res }) {
        let name = body.domain;
        if (name === undefined) {
          if (enabledDomains.length > 1) {
            throw errors.invalidRequest(
              "domain",
              "required (this server accepts registration in several domains)",
            );
          }
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
      },
    }),
  ];
}
