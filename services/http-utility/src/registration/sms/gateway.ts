import { z } from "zod";

/**
 * What the senders that call a provider over HTTP share: the call (fetch, bounded by a timeout, redirects
 * refused), templates with placeholders, and errors that never carry the code.
 */

export class SmsError extends Error {
  override name = "SmsError";
}

/** Longest wait for a provider that a sender may be configured with: the app's request waits for it. */
export const MAX_SEND_TIMEOUT_MS = 30_000;

export const timeoutMsOption = z
  .number()
  .int()
  .min(100)
  .max(MAX_SEND_TIMEOUT_MS)
  .default(10_000)
  .describe("give up on the provider after this long (ms)");

export interface ProviderAnswer {
  status: number;
  body: string;
}

/** One request; throws SmsError when no answer came (refused, reset, timeout). */
export async function callProvider(
  name: string,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string | undefined },
  timeoutMs: number,
): Promise<ProviderAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === "TimeoutError") throw new SmsError(`${name} did not answer within ${timeoutMs} ms`);
    throw new SmsError(`${name} unreachable: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
  }
  const body = await res.text().catch(() => "");
  return { status: res.status, body };
}

/** `{to}` (+E.164), `{msisdn}` (without +), `{text}`, `{code}`. */
export const PLACEHOLDERS = ["to", "msisdn", "text", "code"] as const;
export type TemplateValues = Record<(typeof PLACEHOLDERS)[number], string>;

/** Each placeholder replaced once, in one pass: a value that contains `{code}` is never read again. */
export function fillTemplate(
  template: string,
  values: TemplateValues,
  encode: (value: string) => string = (v) => v,
): string {
  return template.replace(/\{(to|msisdn|text|code)\}/g, (_, name: keyof TemplateValues) =>
    encode(values[name]),
  );
}

/** A template's unknown `{name}`s: a typo would otherwise go out to the gateway as it is. */
export function unknownPlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([A-Za-z_]+)\}/g)]
    .map((m) => m[1] as string)
    .filter((n) => !(PLACEHOLDERS as readonly string[]).includes(n));
}

/** A provider's answer for the log: short, and without the code (a gateway may echo the message back). */
export function describeAnswer(body: string, code: string): string {
  const text = body.replaceAll(code, "[code]").replace(/\s+/g, " ").trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
