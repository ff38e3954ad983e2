import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  createOutboundPolicy,
  OutboundError,
  type OutboundPolicy,
  outboundRequest,
} from "#common/http/outbound-address.ts";
import { fromRoot } from "#common/paths.ts";
import { OptionError } from "#common/plugins/problems.ts";
import {
  describeAnswer,
  fillTemplate,
  type ProviderAnswer,
  SmsError,
  type TemplateValues,
  timeoutMsOption,
  unknownPlaceholders,
} from "./gateway.ts";
import { defineSmsSender } from "./sender.ts";

/**
 * Any SMS gateway with an HTTP API: a URL, a method, headers, and a body built from a template with `{to}`,
 * `{msisdn}`, `{text}` and `{code}`. A 2xx answer means sent; anything else (or no answer within
 * `timeoutMs`) is a failure. Placeholders are encoded for where they stand: URL-encoded in `url`, JSON-escaped
 * in `json`, form-encoded in `form`; `body` is a raw template, sent as it is. The gateway must be on a public
 * address unless `allowTargets` lists it: the address connected to is checked, after DNS (outbound-address.ts).
 */
/** Shared with twilio-sender.ts: the same option, the same meaning. */
export const allowTargetsOption = z
  .array(z.string().min(1))
  .default([])
  .describe("hosts, IP addresses or CIDR blocks allowed although loopback, private or link-local");

const SAMPLE: TemplateValues = { to: "+306912345678", msisdn: "306912345678", text: "t", code: "123456" };

export const httpSenderOptions = z
  .object({
    url: z
      .string()
      .refine((u) => {
        try {
          return /^https?:$/.test(new URL(fillTemplate(u, SAMPLE, encodeURIComponent)).protocol);
        } catch {
          return false;
        }
      }, "must be an http:// or https:// URL (placeholders allowed)")
      .describe("where messages go; placeholders are URL-encoded"),
    method: z.enum(["GET", "POST", "PUT"]).default("POST"),
    headers: z.record(z.string(), z.string()).default({}).describe("sent as they are (an API key…)"),
    headerFiles: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe("headers whose value is read from a file at start (secrets kept out of config)"),
    json: z.record(z.string(), z.unknown()).optional().describe("a JSON body: placeholders in its strings"),
    form: z.record(z.string(), z.string()).optional().describe("a form body (x-www-form-urlencoded)"),
    body: z.string().optional().describe("a raw body template; set its content-type in headers"),
    timeoutMs: timeoutMsOption,
    allowTargets: allowTargetsOption,
  })
  .strict()
  .refine((o) => [o.json, o.form, o.body].filter((b) => b !== undefined).length <= 1, {
    message: "set at most one of json, form, body",
  })
  .refine((o) => o.method !== "GET" || (o.json ?? o.form ?? o.body) === undefined, {
    path: ["method"],
    message: "GET sends no body: put the placeholders in url, or use POST",
  });

export type HttpSenderOptions = z.infer<typeof httpSenderOptions>;

/**
 * gateway.ts's `callProvider`, through an outbound policy: a refused target fails like an unreachable one,
 * with the reason and the option that would allow it in the operator's log.
 */
export async function callGuardedProvider(
  name: string,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string | undefined },
  timeoutMs: number,
  policy: OutboundPolicy,
): Promise<ProviderAnswer> {
  try {
    return await outboundRequest(url, { ...init, timeoutMs, policy });
  } catch (err) {
    if (err instanceof OutboundError && err.reason === "timeout") {
      throw new SmsError(`${name} did not answer within ${timeoutMs} ms`);
    }
    if (err instanceof OutboundError && err.reason === "refused") {
      throw new SmsError(`${name} refused: ${err.message}`);
    }
    throw new SmsError(`${name} unreachable: ${(err as Error).message}`);
  }
}

/** Every string of a JSON template (keys excluded), depth first. */
function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === "object") return Object.values(value).flatMap(strings);
  return [];
}

function fillJson(value: unknown, values: TemplateValues): unknown {
  if (typeof value === "string") return fillTemplate(value, values);
  if (Array.isArray(value)) return value.map((v) => fillJson(v, values));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillJson(v, values)]));
  }
  return value;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

export default defineSmsSender({
  kind: "http",
  summary: "any SMS gateway with an HTTP API: a URL, a method, headers and a body template",
  options: httpSenderOptions,
  create(o, deps) {
    const policy = createOutboundPolicy(
      o.allowTargets,
      `domains.${deps.domain}.registration.sms.options.allowTargets`,
    );
    const templates = [o.url, ...strings(o.json), ...Object.values(o.form ?? {}), o.body ?? ""];
    const unknown = [...new Set(templates.flatMap(unknownPlaceholders))];
    if (unknown.length > 0) {
      throw new OptionError(
        "",
        `unknown placeholder(s) ${unknown.map((n) => `{${n}}`).join(", ")}: use {to}, {msisdn}, {text}, {code}`,
      );
    }
    const headers: Record<string, string> = { ...o.headers };
    for (const [name, file] of Object.entries(o.headerFiles)) {
      try {
        headers[name] = readFileSync(fromRoot(file), "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        throw new OptionError(
          `headerFiles.${name}`,
          `cannot read ${file} (${(err as NodeJS.ErrnoException).code}): fix the path or the file's permissions`,
        );
      }
    }
    const contentType = o.json
      ? "application/json"
      : o.form
        ? "application/x-www-form-urlencoded"
        : undefined;
    if (contentType && !hasHeader(headers, "content-type")) headers["content-type"] = contentType;

    return {
      kind: "http",
      async send(to, text, code) {
        const values: TemplateValues = { to, msisdn: to.replace(/^\+/, ""), text, code };
        let body: string | undefined;
        if (o.json) body = JSON.stringify(fillJson(o.json, values));
        else if (o.form) {
          body = new URLSearchParams(
            Object.entries(o.form).map(([k, v]): [string, string] => [k, fillTemplate(v, values)]),
          ).toString();
        } else if (o.body !== undefined) body = fillTemplate(o.body, values);
        const url = fillTemplate(o.url, values, encodeURIComponent);
        const answer = await callGuardedProvider(
          "SMS gateway",
          url,
          { method: o.method, headers, body },
          o.timeoutMs,
          policy,
        );
        if (answer.status < 200 || answer.status > 299) {
          throw new SmsError(`SMS gateway answered ${answer.status}: ${describeAnswer(answer.body, code)}`);
        }
      },
    };
  },
});
