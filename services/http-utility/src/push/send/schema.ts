import { z } from "zod";
import { parseJid } from "#common/users/jid.ts";
import { channel, node as deviceNode } from "../devices/schema.ts";
import type { Origin } from "../mongooseim/relay.ts";
import { PUSH_SERVICES, type PushMessage } from "../senders/sender.ts";

/**
 * Bodies of `send`, `channel_broadcast`, `replies` and `resolves` (docs/push.md "Server endpoints", "App
 * endpoints"), as JSON or as a form: in a form every value is a string, so numbers, booleans and `data` (a
 * JSON object) are also accepted as text.
 */

const MAX_DATA_KEYS = 100;
/** FCM keeps a message 4 weeks at most. */
const MAX_TTL_SECONDS = 28 * 86_400;

const text = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .max(max, `${what} is longer than ${max} characters`)
    .meta({ description: `${what}, at most ${max} characters` });

const nonEmpty = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} is empty`)
    .max(max, `${what} is longer than ${max} characters`);

/** A whole number in [min, max], or its digits (forms). */
const integer = (what: string, min: number, max: number) =>
  z
    .union(
      [z.number(), z.string().trim().regex(/^\d+$/, `${what} must be a whole number`).transform(Number)],
      {
        error: `${what} must be a whole number`,
      },
    )
    .pipe(
      z
        .number()
        .int(`${what} must be a whole number`)
        .min(min, `${what} must be between ${min} and ${max}`)
        .max(max, `${what} must be between ${min} and ${max}`),
    );

const flag = (what: string) =>
  z
    .union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")], {
      error: `${what} must be true or false`,
    })
    .meta({ description: `${what}: true or false ("true"/"false"/"1"/"0" in a form)` });

const dataValues = z
  .record(
    z.string().min(1, "a data key is empty").max(256),
    z
      .union([z.string(), z.number(), z.boolean()], { error: "data values must be strings" })
      .transform(String),
  )
  .refine((d) => Object.keys(d).length <= MAX_DATA_KEYS, `at most ${MAX_DATA_KEYS} data keys`);

/** Custom data: an object of strings (numbers and booleans become strings), or that object as JSON text. */
const data = z
  .union([z.record(z.string(), z.unknown()), z.string()], { error: "data must be an object of strings" })
  .transform((v, ctx): unknown => {
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v);
    } catch {
      ctx.addIssue({ code: "custom", message: "data must be a JSON object of strings" });
      return z.NEVER;
    }
  })
  .pipe(
    z.custom<unknown>((v) => typeof v === "object" && v !== null && !Array.isArray(v), {
      message: "data must be an object of strings",
    }),
  )
  .pipe(dataValues)
  .meta({
    description:
      'custom data delivered to the app, string values (`{"chat":"42"}`); in a form, that object as JSON text. `notificationId` is added',
  });

const domain = z
  .string({ error: "domain must be a string" })
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9.-]+$/, "a domain is lower-case letters, digits, dots, dashes")
  .meta({ description: "the XMPP domain; may be left out when the server serves one domain" });

/** The user part of a JID: an msisdn, as the user registered it (the app endpoints' own rule). */
const node = deviceNode.meta({
  description: "the user: the user part of their JID (their msisdn)",
  example: "306900000001",
});

/** What a notification says and how it is delivered: the fields `send` and `channel_broadcast` share. */
const messageFields = {
  title: text("title", 1024).optional(),
  body: text("body", 4096).optional(),
  data: data.optional(),
  badge: integer("badge", 0, 99_999).optional().meta({
    description: "the app icon's count; left out, an alert shows one more than the last (per device)",
  }),
  sound: nonEmpty("sound", 256).optional().meta({ description: "a sound file of the app, or `default`" }),
  silent: flag("silent").optional(),
  collapseKey: nonEmpty("collapseKey", 64)
    .optional()
    .meta({ description: "notifications with the same key replace each other on the device" }),
  threadId: nonEmpty("threadId", 256).optional().meta({ description: "groups notifications on the device" }),
  ttl: integer("ttl", 0, MAX_TTL_SECONDS)
    .optional()
    .meta({ description: "seconds the provider keeps it for an offline device (0: now or never)" }),
  priority: z
    .enum(["normal", "high"], { error: 'priority must be "normal" or "high"' })
    .optional()
    .meta({ description: "delivery priority (high by default for alerts)" }),
  category: nonEmpty("category", 256)
    .optional()
    .meta({ description: "which actions the notification offers (APNs category, FCM click_action)" }),
};

const messageObject = z.object(messageFields);
type MessageInput = z.output<typeof messageObject>;

const hasContent = (m: MessageInput) =>
  m.silent === true || m.title !== undefined || m.body !== undefined || m.data !== undefined;
const CONTENT = "give a title, a body or data (or silent: true)";

/** The provider-neutral message of validated fields. */
export function pushMessage(m: MessageInput): PushMessage {
  const message: PushMessage = {};
  if (m.title !== undefined) message.title = m.title;
  if (m.body !== undefined) message.body = m.body;
  if (m.data !== undefined) message.data = m.data;
  if (m.badge !== undefined) message.badge = m.badge;
  if (m.sound !== undefined) message.sound = m.sound;
  if (m.silent !== undefined) message.silent = m.silent;
  if (m.collapseKey !== undefined) message.collapseKey = m.collapseKey;
  if (m.threadId !== undefined) message.threadId = m.threadId;
  if (m.ttl !== undefined) message.ttlSeconds = m.ttl;
  if (m.priority !== undefined) message.priority = m.priority;
  if (m.category !== undefined) message.category = m.category;
  return message;
}

const callbackUrl = z
  .url({ protocol: /^https?$/, error: "callbackUrl must be an http or https URL" })
  .max(2048, "callbackUrl is longer than 2048 characters")
  .meta({ description: "replies and resolves typed into the notification are POSTed here (JSON)" });

const buddy = z
  .string({ error: "buddy must be a JID" })
  .trim()
  .transform((s, ctx) => {
    try {
      const jid = parseJid(s);
      return `${jid.node}@${jid.domain}`;
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `buddy: ${(err as Error).message}` });
      return z.NEVER;
    }
  })
  .meta({
    description: "the buddy (`name@domain`) the replies and resolves go to (its notification-action hook)",
  });

export const sendBody = z
  .object({
    node,
    domain: domain.optional(),
    token: nonEmpty("token", 4096)
      .optional()
      .meta({ description: "push to this one device of the user only" }),
    ...messageFields,
    callbackUrl: callbackUrl.optional(),
    buddy: buddy.optional(),
  })
  .refine(hasContent, { message: CONTENT })
  .refine((b) => b.callbackUrl === undefined || b.buddy === undefined, {
    message: "give callbackUrl or buddy, not both",
    path: ["buddy"],
  })
  .meta({ id: "SendNotification" });
export type SendBody = z.output<typeof sendBody>;

export function originOf(b: SendBody): Origin | null {
  if (b.callbackUrl !== undefined) return { kind: "url", url: b.callbackUrl };
  if (b.buddy !== undefined) return { kind: "buddy", jid: b.buddy };
  return null;
}

export const broadcastBody = z
  .object({
    domain: domain.optional(),
    channel: channel.meta({ description: "the channel whose subscribers' devices are pushed to" }),
    ...messageFields,
  })
  .refine(hasContent, { message: CONTENT })
  .meta({ id: "ChannelBroadcast" });

export const broadcastParams = z.object({
  id: z.uuid({ error: "id must be a broadcast id (a UUID)" }),
});

const notificationId = z.uuid({ error: "must be a notification id (a UUID)" });

/** `id` or, as some apps name it, `notificationId`. */
const actionFields = {
  id: notificationId.optional().meta({ description: "the notification's id (its data's `notificationId`)" }),
  notificationId: notificationId.optional().meta({ description: "the same as `id`" }),
};
const withId = <T extends { id?: string | undefined; notificationId?: string | undefined }>(b: T) =>
  b.id !== undefined || b.notificationId !== undefined;

export const replyBody = z
  .object({
    ...actionFields,
    text: z
      .string({ error: "text must be a string" })
      .max(4000, "text is longer than 4000 characters")
      .refine((t) => t.trim().length > 0, "text is empty"),
  })
  .refine(withId, { message: "id is required (the notification's id)", path: ["id"] })
  .transform(({ id, notificationId, text }) => ({ id: (id ?? notificationId) as string, text }))
  .meta({ id: "NotificationReply" });

export const resolveBody = z
  .object(actionFields)
  .refine(withId, { message: "id is required (the notification's id)", path: ["id"] })
  .transform(({ id, notificationId }) => ({ id: (id ?? notificationId) as string }))
  .meta({ id: "NotificationResolve" });

// ---- answers ----

const tokenResult = z
  .object({
    service: z.enum(PUSH_SERVICES),
    token: z.string(),
    status: z.enum(["sent", "dead_token", "failed", "gave_up", "no_sender"]).meta({
      description:
        "sent; dead_token: the provider says the device is gone, the token was forgotten; failed: refused for good; gave_up: the provider stayed busy through the retries (or asked to wait too long); no_sender: no credentials for the token's app",
    }),
    reason: z.string().optional().meta({ description: "the provider's reason, when not sent" }),
    id: z.string().optional().meta({ description: "the provider's message id, when sent" }),
  })
  .meta({ id: "PushTokenResult" });

export const sendAnswer = z.object({
  id: z.uuid().meta({ description: "the notification's id, also in its data as `notificationId`" }),
  results: z.array(tokenResult).meta({ description: "one per device token of the user" }),
});

export const broadcastQueued = z.object({
  id: z.uuid().meta({ description: "the broadcast's id: read its progress at GET …/channel_broadcast/{id}" }),
  status: z.literal("queued"),
});

export const broadcastProgress = z
  .object({
    id: z.uuid(),
    domain: z.string(),
    channel: z.string(),
    state: z.enum(["queued", "running", "done", "failed"]),
    total: z
      .number()
      .int()
      .nullable()
      .meta({ description: "devices to push: counted when it starts; once done, the devices pushed to" }),
    sent: z.number().int(),
    dead: z.number().int().meta({ description: "devices found gone (their tokens were forgotten)" }),
    failed: z.number().int(),
    createdAt: z.string().meta({ description: "ISO 8601, UTC" }),
    finishedAt: z.string().nullable().meta({ description: "ISO 8601, UTC; null until done or failed" }),
  })
  .meta({ id: "ChannelBroadcastProgress" });

export const relayQueued = z.object({ relayed: z.literal("queued") });
