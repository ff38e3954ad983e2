import type { Config } from "#common/config/schema.ts";
import type { Logger } from "#common/logger.ts";
import { pluginDefiner } from "#common/plugins/definition.ts";
import type { PluginPoint } from "#common/plugins/registry.ts";

/**
 * How a registration code reaches a phone: one sender per domain (`domains.<d>.registration.sms`), of the
 * `kind` chosen there among the definitions of registry.ts (log-sender.ts, http-sender.ts,
 * twilio-sender.ts). `send` resolves once the provider accepted the message and throws an `SmsError`
 * otherwise; the error's message is for the operator's log and never contains the code. This file is the
 * contract only: it imports no sender.
 */
export interface SmsSender {
  readonly kind: string;
  /** `to` in E.164 (`+306912345678`); `text` is the whole message; `code` for gateways that want it apart. */
  send(to: string, text: string, code: string): Promise<void>;
}

export interface SmsSenderDeps {
  domain: string;
  log: Logger;
  env: Config["env"];
}

export const smsSenderPoint: PluginPoint<SmsSender> = {
  name: "SMS sender",
  docs: "docs/registration.md",
};

/** Senders are made at start, synchronously: reading a secret file is all the I/O they do then. */
export const defineSmsSender = pluginDefiner<SmsSenderDeps, SmsSender>();

/** By domain: the domains that accept registration. */
export type SmsSenders = ReadonlyMap<string, SmsSender>;
