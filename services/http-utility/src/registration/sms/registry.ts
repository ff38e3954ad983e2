import type { Config } from "#common/config/schema.ts";
import type { Logger } from "#common/logger.ts";
import { ProblemCollector } from "#common/plugins/problems.ts";
import { createRegistry } from "#common/plugins/registry.ts";
import http from "./http-sender.ts";
import log from "./log-sender.ts";
import type { SmsSender, SmsSenders } from "./sender.ts";
import { smsSenderPoint } from "./sender.ts";
import twilio from "./twilio-sender.ts";

/** The SMS senders by kind (`domains.<d>.registration.sms.kind`): the one list of them. */
export const smsSenderKinds = createRegistry(smsSenderPoint, [log, http, twilio]);

/**
 * One sender per domain with registration enabled (the options of the others are not read). Every problem
 * of every domain (an unknown kind, bad options, a missing secret file) is in the one StartupProblems thrown
 * before the service listens, each naming its key under `domains.<d>.registration.sms`.
 */
export function createSmsSenders(
  domains: Config["domains"],
  deps: { log: Logger; env: Config["env"] },
): SmsSenders {
  const senders = new Map<string, SmsSender>();
  const problems = new ProblemCollector();
  for (const [domain, d] of Object.entries(domains)) {
    if (!d.registration.enabled) continue;
    try {
      senders.set(
        domain,
        smsSenderKinds.create(`domains.${domain}.registration.sms`, d.registration.sms, {
          domain,
          env: deps.env,
          log: deps.log.child({ domain }),
        }),
      );
    } catch (err) {
      problems.add(err);
    }
  }
  problems.throwIfAny();
  return senders;
}
