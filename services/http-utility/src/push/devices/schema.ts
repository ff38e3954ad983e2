import { z } from "zod";
import { parseJid, validateNode } from "#common/users/jid.ts";
import { PUSH_SERVICES } from "../senders/sender.ts";

/**
 * The app's device endpoints under /api/v1/notifications (docs/push.md "App endpoints"): bodies as JSON or
 * as a form, so every field may come as a string, and an msisdn as a JSON number too.
 */

/** A field's problem when it is missing or of another type; the error middleware prefixes its name. */
const mustBe =
  (what: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? "is required" : `must be ${what}`;

/** The caller's own user part: legacy apps send their msisdn, with or without its leading `+`. */
export const node = z
  .union([z.string(), z.number().int().nonnegative().transform(String)], { error: mustBe("a string") })
  .pipe(
    z
      .string()
      .trim()
      .toLowerCase()
      .superRefine((v, ctx) => {
        const problem = validateNode(v);
        if (problem) ctx.addIssue({ code: "custom", message: problem.replace(/^the user part /, "") });
      }),
  )
  .meta({
    description: "the caller's own user part (the node of their JID): their msisdn, with or without +",
  });

const MAX_TOKEN = 4096;

/**
 * A device token as the provider gave it. FCM registration tokens and APNs device tokens are printable ASCII;
 * anything else (whitespace, a newline a form added, control characters) is a client's mistake.
 */
export const token = z
  .string({ error: mustBe("a string") })
  .min(1, "is required")
  .max(MAX_TOKEN, `is longer than ${MAX_TOKEN} characters`)
  .regex(/^[\x21-\x7e]+$/, "may contain printable ASCII only: no whitespace or control characters")
  .meta({
    description: `the device token the provider gave the app: 1 to ${MAX_TOKEN} printable ASCII characters`,
  });

export const service = z
  .enum(PUSH_SERVICES, { error: mustBe(`one of ${PUSH_SERVICES.join(", ")}`) })
  .meta({ description: "`fcm` (Android, or iOS through Firebase), `apns`, `apns-voip` (PushKit)" });

/** The same pattern as the names of `push.apps` (config/push-schema.ts). */
const app = z
  .string({ error: mustBe("a string") })
  .trim()
  .regex(/^[\w.-]{1,100}$/, "is a name such as OyoChat: 1 to 100 letters, digits, _ . -")
  .meta({
    description: "the app the token belongs to, one of `push.apps` (default: `push.domains.<domain>.app`)",
  });

/** A broadcast channel's name; the broadcast routes may reuse it. */
export const channel = z
  .string({ error: mustBe("a string") })
  .trim()
  .min(1, "is required")
  .max(200, "is longer than 200 characters")
  .regex(/^[A-Za-z0-9._:/-]+$/, "may contain letters, digits and . _ - : / only")
  .meta({ description: "the channel's name: 1 to 200 letters, digits, . _ - : /", example: "news/sports" });

const domain = z
  .string({ error: mustBe("a string") })
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9.-]+$/, "may contain letters, digits, dots and dashes only")
  .meta({ description: "the caller's own XMPP domain (default: that domain)" });

/**
 * The proof that a registration comes from the device a token was registered from (docs/push.md "Tokens"):
 * a random value the app makes once per install and keeps in its private storage. Stored as its SHA-256.
 */
export const deviceSecret = z
  .string({ error: mustBe("a string") })
  .min(
    16,
    "is shorter than 16 characters: send a random value of at least 128 bits (e.g. 32 random bytes, base64url)",
  )
  .max(200, "is longer than 200 characters")
  .regex(/^[\x21-\x7e]+$/, "may contain printable ASCII only")
  .meta({
    description:
      "a random secret this app install made once and sends with every registration (at least 16 characters); lets the token move to another account registered from the same install",
  });

export const storeTokenBody = z.object({
  node,
  token,
  service,
  app: app.optional(),
  deviceSecret: deviceSecret.optional(),
});
export const deleteTokenBody = z.object({ node, token });
export const deleteAllTokensBody = z.object({ node });
export const resetBadgeBody = z.object({
  token,
  node: node.optional().meta({ description: "the caller's own user part; checked when given" }),
});
export const channelBody = z.object({ node, channel, domain: domain.optional() });

/** A chat's other party: a bare JID, as MongooseIM's hook names the author (`author@server`). */
const peer = z
  .string({ error: mustBe("a string") })
  .trim()
  .max(3071)
  .transform((v, ctx) => {
    try {
      const jid = parseJid(v);
      return `${jid.node}@${jid.domain}`;
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `must be a JID (node@domain): ${(err as Error).message}` });
      return z.NEVER;
    }
  })
  .meta({ description: "the chat's other party: a bare JID `node@domain`" });

const MAX_MUTE_MINUTES = 5 * 366 * 24 * 60;
export const muteBody = z.object({
  peer,
  minutes: z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^\d{1,7}$/, "must be whole minutes")
          .transform(Number),
      ],
      {
        error: mustBe("a number of minutes"),
      },
    )
    .pipe(z.number().int("must be whole minutes").min(1).max(MAX_MUTE_MINUTES))
    .optional()
    .meta({
      description: `for this many minutes (at most ${MAX_MUTE_MINUTES}, 5 years); until unmuted without it`,
    }),
});
export const unmuteBody = z.object({ peer });
export const muteAnswer = z.object({
  peer: z.string(),
  until: z.iso.datetime().nullable().meta({ description: "when the mute ends; null: until unmuted" }),
});
export const unmutedAnswer = z.object({
  unmuted: z.boolean().meta({ description: "true when the chat was muted before" }),
});
export const mutesAnswer = z.object({ mutes: z.array(muteAnswer) });

export const storeTokenAnswer = z.object({
  stored: z.literal(true),
  outcome: z.enum(["new", "refreshed"]).meta({
    description:
      "`refreshed`: the caller's already (registered again: now their most recent device); `new`: the caller's from now on. Whether the token was anybody's before is never told",
  }),
  app: z.string().meta({ description: "the app the token is stored under" }),
  evicted: z.number().int().meta({
    description:
      "the caller's devices of that app forgotten to stay within `push.maxTokensPerUser`, least recently registered first",
  }),
});

export const deletedAnswer = z.object({
  deleted: z.number().int().meta({ description: "tokens forgotten; 0 when the caller had none such" }),
});

export const tokenResult = z.object({
  service: z.enum(PUSH_SERVICES),
  token: z.string(),
  status: z.enum(["sent", "dead_token", "failed", "gave_up", "no_sender"]).meta({
    description:
      "`sent`; `dead_token`: the provider no longer knows the device (the token is forgotten); `failed`, `gave_up` (after retries), `no_sender` (the app has no APNs credentials)",
  }),
  reason: z.string().optional(),
  id: z.string().optional().meta({ description: "the provider's message id when sent" }),
});

export const resetBadgeAnswer = z.object({
  reset: z.literal(true),
  update: tokenResult.nullable().meta({
    description:
      "the silent APNs update that sets the icon's badge to 0 (`apns` tokens); null for the others",
  }),
});

export const subscribedAnswer = z.object({
  subscribed: z.boolean().meta({ description: "true when the caller was not subscribed before" }),
});
export const unsubscribedAnswer = z.object({
  unsubscribed: z.boolean().meta({ description: "true when the caller was subscribed before" }),
});

export type StoreTokenAnswer = z.infer<typeof storeTokenAnswer>;
export type ResetBadgeAnswer = z.infer<typeof resetBadgeAnswer>;
