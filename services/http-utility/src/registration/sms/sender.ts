import { ZodError } from "zod";
import type { Config } from "#common/config/schema.ts";
import { StartupError } from "#common/errors.ts";
import type { Logger } from "#common/logger.ts";
import { createHttpSender } from "./http-sender.ts";
import { createLogSender } from "./log-sender.ts";
import { createTwilioSender } from "./twilio-sender.ts";

/**
 * How a registration code reaches a phone: one sender per domain (`domains.<d>.registration.sms`), chosen by
 * `kind`. `send` resolves once the provider accepted the message and throws an `SmsError` otherwise; the
 * error's message is for the operator's log and never contains the code.
 */
export interface SmsSender {
  kind: SmsKind;
  /** `to` in E.164 (`+306912345678`); `text` is the whole message; `code` for gateways that want it apart. */
  send(to: string, text: string, code: string): Promise<void>;
}

export type SmsKind = Config["domains"][string]["registration"]["sms"]["kind"];

export interface SmsSenderDeps {
  domain: string;
  log: Logger;
  env: Config["env"];
}

export type SmsSenderFactory = (options: Record<string, unknown>, deps: SmsSenderDeps) => SmsSender;

const FACTORIES: Record<SmsKind, SmsSenderFactory> = {
  log: createLogSender,
  http: createHttpSender,
  twilio: createTwilioSender,
};

/** By domain: the domains that accept registration. */
export type SmsSenders = ReadonlyMap<string, SmsSender>;

/**
 * One sender per domain with registration enabled; throws a StartupError naming the domain and the fix on
 * bad options (or a missing secret file), before the service listens.
 */
export function buildSmsSenders(
  domains: Config["domains"],
  deps: { log: Logger; env: Config["env"] },
): SmsSenders {
  const senders = new Map<string, SmsSender>();
  for (const [domain, d] of Object.entries(domains)) {
    if (!d.registration.enabled) continue;
    const { kind, options } = d.registration.sms;
    try {
      senders.set(
        domain,
        FACTORIES[kind](options, { domain, env: deps.env, log: deps.log.child({ domain }) }),
      );
    } catch (err) {
      const why =
        err instanceof ZodError
          ? err.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ")
          : (err as Error).message;
      throw new StartupError(
        `domains.${domain}.registration.sms (${kind}): ${why}; fix the options in config (docs/registration.md)`,
      );
    }
  }
  return senders;
}
