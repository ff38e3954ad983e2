import { z } from "zod";
import { platformField } from "../app-version/schema.ts";
import { isVersion } from "../app-version/versions.ts";

/**
 * POST /api/v1/users and /api/v1/users/authorize (docs/registration.md "What the app sees"), as JSON or
 * form fields. Legacy apps send numbers where strings are meant (the msisdn, the code, `0.1`): both are taken.
 * The phone number is only shaped here; phone.ts decides whether it is one (400 invalid_number).
 */

/** A string, or a JSON number written as its decimal text. */
const text = (what: string) =>
  z
    .union([z.string(), z.number().nonnegative()], { error: `required: ${what}` })
    .transform((v) => String(v).trim());

const msisdn = z
  .union([z.string(), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)], {
    error: "required: the phone number in international format, e.g. +306912345678",
  })
  .transform((v) => String(v).trim())
  .pipe(z.string().min(1, "required: the phone number in international format, e.g. +306912345678").max(40))
  .meta({
    description:
      "The phone number (msisdn): `+` or `00` and the country code, or the digits with the country code and no `+`. Becomes the user part of the JID: E.164 digits without `+`.",
    example: "+306912345678",
  });

const domain = z
  .string({ error: "required: the XMPP domain to register in" })
  .trim()
  .toLowerCase()
  .min(1, "required: the XMPP domain to register in")
  .max(255)
  .meta({ description: "The XMPP domain", example: "oyo" });

export const registerBody = z.object({
  appName: z
    .string({ error: "required: the app's name, as configured under `apps` (e.g. OyoChat)" })
    .trim()
    .min(1, "required: the app's name, as configured under `apps` (e.g. OyoChat)")
    .max(100)
    .meta({ description: "The app, as named under `apps` in the config", example: "OyoChat" }),
  appVersionCode: text("the app's version, e.g. 1.10.2")
    .pipe(z.string().refine(isVersion, "a version such as 1.10.2, 2.0.0-beta or a build number"))
    .meta({
      description: "The app's version: dotted numbers, a pre-release (`2.0.0-beta`) or a build number",
      example: "1.10.2",
    }),
  domain,
  node: msisdn,
  platform: platformField(
    "android, ios…: whose minimum version applies (without it, or for a platform with no entry: `default`, else the lowest configured)",
  ),
});
export type RegisterBody = z.output<typeof registerBody>;

export const authorizeBody = z.object({
  node: msisdn,
  challengecode: z
    .union([z.string(), z.number().int().nonnegative().max(999_999)], {
      error: "required: the 6-digit code received by SMS",
    })
    // a code sent as a JSON number has lost its leading zeros
    .transform((v) => (typeof v === "number" ? String(v).padStart(6, "0") : v.replace(/\s/g, "")))
    .pipe(z.string().regex(/^\d{6}$/, "the 6-digit code received by SMS"))
    .meta({ description: "The code received by SMS", example: "042917" }),
  domain: domain.optional().meta({
    description: "The XMPP domain; may be left out when only one domain accepts registration",
    example: "oyo",
  }),
  nonce: z
    .string({ error: "the app's session nonce: 16 to 128 printable ASCII characters" })
    .regex(/^[\x21-\x7e]{16,128}$/, "the app's session nonce: 16 to 128 printable ASCII characters")
    .optional()
    .meta({
      description:
        "The app's session nonce: at least 128 random bits (e.g. 22+ base64url characters), made once per registration and sent with every attempt of the same authorize request. A retry whose answer was lost gets the same token back within `retryWindowSeconds` (30 s) only with it; never logged, never stored in clear.",
      example: "k3Jd9xQ0vT7mZ2pL5sWb8A",
    }),
});
export type AuthorizeBody = z.output<typeof authorizeBody>;

export const registerAnswer = z.object({
  node: z
    .string()
    .meta({ description: "The msisdn as stored: E.164 digits without `+`", example: "306912345678" }),
  domain: z.string().meta({ example: "oyo" }),
  expiresIn: z.number().int().meta({ description: "Seconds the code is valid", example: 600 }),
  resendAfter: z.number().int().meta({
    description:
      "Seconds before another code may be asked for (after the last code of a session: until the session ends)",
    example: 60,
  }),
});
export type RegisterAnswer = z.infer<typeof registerAnswer>;

export const authorizeAnswer = z.object({
  jid: z.string().meta({ example: "306912345678@oyo" }),
  node: z.string().meta({ example: "306912345678" }),
  domain: z.string().meta({ example: "oyo" }),
  token: z.string().meta({
    description:
      "The XMPP password: log in to XMPP with jid and token, and use them as HTTP Basic credentials of the app API. A new one for every code; the previous password stops working.",
    example: "q3Jx0m4s1bKc9YzP7wT2hVnE5rAa8LdG",
  }),
});
export type AuthorizeAnswer = z.infer<typeof authorizeAnswer>;

export const appTooOldAnswer = z
  .object({
    error: z.object({
      code: z.literal("app_version_too_old"),
      message: z.string(),
      minimumVersion: z.string().meta({ description: "The lowest version accepted", example: "1.10.2" }),
    }),
  })
  .meta({ description: "The common error body, with the minimum version the app must update to" });
