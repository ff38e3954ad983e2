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
        "last code expires. Public, rate-limited per address and per number.",
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
          "resend_too_soon: a code went out a moment ago; too_many_codes: the session has had all its codes; rate_limited: too many requests from this address or codes to this number. Each comes with `Retry-After` (seconds)",
        ),
        "502": errorResponse(
          "sms_failed: the SMS provider did not take the message; nothing was counted, retry",
        ),
      },
    },
  },
  "/api/v1/users/authorize": {
    post: {
      summary: "Check the code; create or update the account",
      description:
        "The right code creates the account (or gives an existing one a new password) and answers its JID and " +
        "XMPP password (`token`). The same code may be sent again while it is valid: each success answers a new " +
        "password. Wrong codes count: after `maxChecks` (5) of them the code stops working.",
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
        "410": errorResponse("challenge_expired: the code has expired; ask for a new one"),
        "429": errorResponse(
          "too_many_attempts: too many wrong codes, this one no longer works (ask for a new one after `Retry-After`); rate_limited: too many checks from this address or for this number. Both come with `Retry-After` (seconds)",
        ),
      },
    },
  },
};
