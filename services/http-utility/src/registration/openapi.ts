import type { ZodOpenApiPathsObject } from "zod-openapi";
import { errorResponse, security } from "../openapi/components.ts";
import { appTooOldAnswer, authorizeAnswer, authorizeBody, registerAnswer, registerBody } from "./schema.ts";

/** The OpenAPI paths of the users group (routes.ts), from the schemas its routes validate with. */

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/users": {
    post: {
      summary: "Start a registration: send a code by SMS",
      description:
        "Checks the app and its version, normalises the phone number to E.164 and sends a 6-digit code through " +
        "the domain's SMS sender. Asking again for the same number sends a new code (the previous one stops " +
        "working) once `resendAfter` seconds have passed, a few times per session; a session ends when its " +
        "last code expires. Public, rate-limited per address, per (number, address) and per number, within " +
        "daily SMS budgets (global and per calling code).",
      security: security.public,
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: registerBody },
          "application/x-www-form-urlencoded": { schema: registerBody },
        },
      },
      responses: {
        "201": {
          description: "The first code of a session was sent",
          content: { "application/json": { schema: registerAnswer } },
        },
        "200": {
          description: "Another code of the session was sent",
          content: { "application/json": { schema: registerAnswer } },
        },
        "400": errorResponse(
          "invalid_request: a field is missing or malformed; invalid_number: not a phone number in international format; country_not_allowed: the domain does not accept numbers of that country; unknown_app: appName is not configured; registration_disabled: the domain does not accept registration",
        ),
        "404": errorResponse("unknown_domain: no such XMPP domain"),
        "409": errorResponse(
          "registration_conflict: another request for the number got in the way; ask again",
        ),
        "426": {
          description: "app_version_too_old: the app must be updated to `minimumVersion` or later",
          content: { "application/json": { schema: appTooOldAnswer } },
        },
        "429": errorResponse(
          "resend_too_soon: a code went out a moment ago; too_many_codes: the session has had all its codes; rate_limited: too many requests from this address, or codes to this number (from this address, or from all). Each comes with `Retry-After` (seconds)",
        ),
        "502": errorResponse(
          "sms_failed: the SMS provider did not take the message; nothing was counted, retry",
        ),
        "503": errorResponse(
          "sms_budget_exhausted: the service's daily SMS budget (all numbers, or the numbers of this calling code) is spent; retry after `Retry-After` (seconds)",
        ),
      },
    },
  },
  "/api/v1/users/authorize": {
    post: {
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
      security: security.public,
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: authorizeBody },
          "application/x-www-form-urlencoded": { schema: authorizeBody },
        },
      },
      responses: {
        "200": {
          description: "The account and its new XMPP password",
          content: { "application/json": { schema: authorizeAnswer } },
        },
        "400": errorResponse(
          "invalid_request: a field is missing or malformed (also `domain` when several domains accept registration); invalid_number; wrong_code: the message says how many attempts are left; registration_disabled",
        ),
        "403": errorResponse("account_disabled: the account exists and is disabled"),
        "404": errorResponse("unknown_domain; no_challenge: no code was sent to this number in this domain"),
        "410": errorResponse(
          "challenge_expired: the code has expired; code_used: the code has been used already (and this is not a retry with its nonce within the window); ask for a new one",
        ),
        "429": errorResponse(
          "too_many_attempts: too many wrong codes from this address (or for this number), this one no longer works (ask for a new one after `Retry-After`); rate_limited: too many checks from this address, for this number from this address, or for this number. Both come with `Retry-After` (seconds)",
        ),
      },
    },
  },
};
