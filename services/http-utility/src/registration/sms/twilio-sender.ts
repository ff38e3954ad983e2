import { readFileSync } from "node:fs";
import { z } from "zod";
import { createOutboundPolicy } from "#common/http/outbound-address.ts";
import { fromRoot } from "#common/paths.ts";
import { OptionError } from "#common/plugins/problems.ts";
import { describeAnswer, SmsError, timeoutMsOption } from "./gateway.ts";
import { allowTargetsOption, callGuardedProvider } from "./http-sender.ts";
import { defineSmsSender } from "./sender.ts";

/**
 * Twilio's Programmable Messaging: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, a form with `To`,
 * `Body` and `From` or `MessagingServiceSid`, HTTP Basic with the account SID and auth token; 201 means queued
 * (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
 * Plain fetch, not the `twilio` SDK: sending is one form POST, and the SDK would pull axios and dozens of
 * other packages into a service that needs none of them.
 */
export const twilioSenderOptions = z
  .object({
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, "an account SID: AC and 32 hex digits"),
    authToken: z.string().min(1).optional().describe("the auth token (or authTokenFile)"),
    authTokenFile: z.string().min(1).optional().describe("a file holding the auth token"),
    from: z
      .string()
      .regex(/^\+[1-9]\d{4,14}$|^[A-Za-z0-9 ]{1,11}$/, "a number in E.164 (+…) or an alphanumeric sender ID")
      .optional(),
    messagingServiceSid: z
      .string()
      .regex(/^MG[0-9a-fA-F]{32}$/, "MG and 32 hex digits")
      .optional(),
    baseUrl: z.url({ protocol: /^https?$/ }).default("https://api.twilio.com"),
    timeoutMs: timeoutMsOption,
    allowTargets: allowTargetsOption.describe(
      "for a `baseUrl` on a private or loopback address (a test double): hosts, addresses or CIDR blocks",
    ),
  })
  .strict()
  .refine((o) => (o.authToken === undefined) !== (o.authTokenFile === undefined), {
    message: "set one of authToken, authTokenFile",
  })
  .refine((o) => (o.from === undefined) !== (o.messagingServiceSid === undefined), {
    message: "set one of from, messagingServiceSid",
  });

export default defineSmsSender({
  kind: "twilio",
  summary: "Twilio's Programmable Messaging API",
  options: twilioSenderOptions,
  create(o, deps) {
    const policy = createOutboundPolicy(
      o.allowTargets,
      `domains.${deps.domain}.registration.sms.options.allowTargets`,
    );
    let token = o.authToken;
    if (o.authTokenFile !== undefined) {
      try {
        token = readFileSync(fromRoot(o.authTokenFile), "utf8").trim();
      } catch (err) {
        throw new OptionError(
          "authTokenFile",
          `cannot read ${o.authTokenFile} (${(err as NodeJS.ErrnoException).code}): fix the path or the file's permissions`,
        );
      }
      if (!token)
        throw new OptionError("authTokenFile", `${o.authTokenFile} is empty: put the auth token in it`);
    }
    const url = `${o.baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${o.accountSid}/Messages.json`;
    const authorization = `Basic ${Buffer.from(`${o.accountSid}:${token}`).toString("base64")}`;

    return {
      kind: "twilio",
      async send(to, text, code) {
        const form = new URLSearchParams({ To: to, Body: text });
        if (o.messagingServiceSid) form.set("MessagingServiceSid", o.messagingServiceSid);
        else if (o.from) form.set("From", o.from);
        const answer = await callGuardedProvider(
          "Twilio",
          url,
          {
            method: "POST",
            headers: {
              authorization,
              "content-type": "application/x-www-form-urlencoded",
              accept: "application/json",
            },
            body: form.toString(),
          },
          o.timeoutMs,
          policy,
        );
        if (answer.status >= 200 && answer.status <= 299) return;
        // Twilio's errors: { "code": 21211, "message": "The 'To' number … is not a valid phone number.", … }
        let why = describeAnswer(answer.body, code);
        try {
          const e = JSON.parse(answer.body) as { code?: unknown; message?: unknown };
          if (e.code !== undefined || e.message !== undefined) {
            why = describeAnswer(`error ${String(e.code)}: ${String(e.message)}`, code);
          }
        } catch {}
        throw new SmsError(`Twilio answered ${answer.status}: ${why}`);
      },
    };
  },
});
