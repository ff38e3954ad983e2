import { z } from "zod";
import { parseJid } from "#common/users/jid.ts";

/** The app sessions' requests and answers (docs/api.md "Sessions"). */

const MAX_PASSWORD_BYTES = 4096;

export const loginBody = z
  .object({
    jid: z
      .string({ error: "jid must be a string" })
      .trim()
      .min(1, "jid is required")
      .max(3071, "jid is too long")
      .transform((text, ctx) => {
        try {
          return parseJid(text);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: (err as Error).message });
          return z.NEVER;
        }
      })
      .meta({
        description: "the user's JID, `node@domain` (case-insensitive)",
        example: "306900000001@oyo.example.org",
      }),
    password: z
      .string({ error: "password must be a string" })
      .min(1, "password is required")
      .refine(
        (p) => Buffer.byteLength(p) <= MAX_PASSWORD_BYTES,
        `password is longer than ${MAX_PASSWORD_BYTES} bytes`,
      )
      .meta({
        description:
          "the XMPP password (on a domain whose authenticator is `jwt`, the SSO token): checked as HTTP Basic would be",
      }),
  })
  .meta({ id: "SessionLogin" });

export const refreshBody = z
  .object({
    refreshToken: z
      .string({ error: "refreshToken must be a string" })
      .min(1, "refreshToken is required")
      .max(200, "refreshToken is too long")
      .meta({ description: "the refresh token of the last answer (`rt_…`): it works once" }),
  })
  .meta({ id: "SessionRefresh" });

export const sessionParams = z.object({
  id: z.string().meta({ description: "a session's `id`, as `GET /api/v1/sessions` lists it" }),
});

export const tokensAnswer = z
  .object({
    accessToken: z.string().meta({ description: "send as `Authorization: Bearer <accessToken>`" }),
    tokenType: z.literal("Bearer"),
    expiresIn: z.number().int().meta({ description: "seconds the access token lives" }),
    refreshToken: z.string().meta({
      description: "for `POST /api/v1/sessions/refresh`, once; keep it in the device's secure storage",
    }),
    refreshExpiresIn: z.number().int().meta({ description: "seconds the refresh token lives if not used" }),
    sessionId: z.string().meta({ description: "this session's id (`GET /api/v1/sessions`)" }),
  })
  .meta({ id: "SessionTokens" });
export type TokensAnswer = z.infer<typeof tokensAnswer>;

const session = z
  .object({
    id: z.string(),
    createdAt: z.string().meta({ description: "the login, ISO 8601 UTC" }),
    lastUsedAt: z.string().meta({ description: "the login or the last refresh, ISO 8601 UTC" }),
    expiresAt: z.string().meta({ description: "when it ends unless refreshed, ISO 8601 UTC" }),
    address: z.string().nullable().meta({ description: "the client address it logged in from" }),
    app: z.object({
      name: z.string().nullable(),
      version: z.string().nullable(),
      platform: z.string().nullable(),
    }),
    current: z.boolean().meta({ description: "true for the session of the access token of this request" }),
  })
  .meta({ id: "AppSession" });

export const sessionsAnswer = z.object({
  sessions: z.array(session).meta({ description: "most recently used first" }),
});
export type SessionsAnswer = z.infer<typeof sessionsAnswer>;

export const revokedAnswer = z.object({ revoked: z.number().int().meta({ description: "sessions ended" }) });
