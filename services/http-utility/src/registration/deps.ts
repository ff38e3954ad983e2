import { Registry } from "prom-client";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { createRateLimit, type RateLimit } from "#common/http/rate-limit.ts";
import type { Logger } from "#common/logger.ts";
import { createSmsSenders } from "./sms/registry.ts";
import type { SmsSenders } from "./sms/sender.ts";
import { createSmsBudget, type SmsBudget } from "./sms-budget.ts";

/**
 * What registration by phone number needs beyond config, built once per process at the composition root
 * (as `createPushDeps` is for notifications): each domain's SMS sender, checked before the service listens,
 * the daily SMS budgets and the per-address and per-number limits (docs/registration.md, docs/security.md).
 */
export interface RegistrationDeps {
  /** By domain: those that accept registration. */
  senders: SmsSenders;
  budget: SmsBudget;
  limits: RegistrationLimits;
}

/** `services.httpUtility.rateLimits` of the two routes: each a PostgreSQL-backed limiter shared by every worker. */
export interface RegistrationLimits {
  registerPerIp: RateLimit;
  registerPerNumber: RateLimit;
  registerPerNumberIp: RateLimit;
  authorizePerIp: RateLimit;
  authorizePerNumber: RateLimit;
  authorizePerNumberIp: RateLimit;
}

export function createRegistrationDeps(
  ctx: { config: Pick<Config, "domains" | "env" | "services">; log: Logger; pool: Pool },
  o: { metrics?: Registry } = {},
): RegistrationDeps {
  const { config, log, pool } = ctx;
  const senders = createSmsSenders(config.domains, { log, env: config.env });
  for (const [name, d] of Object.entries(config.domains)) {
    if (d.registration.enabled && d.authenticator.kind !== "web_users") {
      log.warn(
        { domain: name, authenticator: d.authenticator.kind },
        "registration writes web_users, but this domain's logins are checked by another authenticator",
      );
    }
  }

  const rateLimits = config.services.httpUtility.rateLimits;
  const budget = createSmsBudget({
    pool,
    log,
    metrics: o.metrics ?? new Registry(),
    global: rateLimits.smsPerDay,
    perPrefix: rateLimits.smsPerPrefixPerDay,
  });
  const limit = (name: keyof RegistrationLimits, what: string) =>
    createRateLimit(pool, name, rateLimits[name], (s) => `Too many ${what}; retry in ${s} s.`);
  return {
    senders,
    budget,
    limits: {
      registerPerIp: limit("registerPerIp", "registrations from your address"),
      registerPerNumber: limit("registerPerNumber", "codes sent to this number"),
      registerPerNumberIp: limit("registerPerNumberIp", "codes sent to this number from your address"),
      authorizePerIp: limit("authorizePerIp", "code checks from your address"),
      authorizePerNumber: limit("authorizePerNumber", "code checks for this number"),
      authorizePerNumberIp: limit("authorizePerNumberIp", "code checks for this number from your address"),
    },
  };
}
