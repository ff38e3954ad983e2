import { createHash } from "node:crypto";
import { z } from "zod";
import { validateNode } from "#common/users/jid.ts";
import type { PushMessage } from "../senders/sender.ts";

/**
 * What MongooseIM sends us (docs/push.md "MongooseIM") and what it means as a PushMessage: the chat-message
 * hook of `mod_http_notification` (2.1.0) / `mod_event_pusher_http` (6.x,
 * https://esl.github.io/MongooseDocs/latest/modules/mod_event_pusher_http/), and the JSON body of the
 * MongoosePush API (https://esl.github.io/MongoosePush/v2.3.0/http_api.html) that
 * `mod_push_service_mongoosepush` calls (https://esl.github.io/MongooseDocs/latest/modules/mod_push_service_mongoosepush/).
 */

// ---------------------------------------------------------------------------------------------------------
// The chat-message hook: `author=<localpart>&server=<domain>&receiver=<localpart>&message=<body>`

export interface ChatHook {
  author: string;
  server: string;
  receiver: string;
  message: string;
}

const MESSAGE = "&message=";
/**
 * What a form encoder leaves as it is (RFC 3986 unreserved and sub-delimiters but `&` and `=`), plus `+`
 * (a space) and `%`. A message holding anything else (a space, `&`, `=`, a line break, a non-ASCII letter)
 * was not encoded: 6.x (cowlib's `cow_qs:qs`) never sends those bare, 2.1.0 sends everything bare.
 */
const ENCODED_ALPHABET = /^[A-Za-z0-9\-._~!$'()*,;:@/?+%]*$/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;

/** Percent-decoded when it decodes cleanly (valid escapes, valid UTF-8), else as sent. */
function decodeClean(text: string): string | undefined {
  if (!text.includes("%")) return text;
  if (BAD_ESCAPE.test(text)) return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined; // the escapes are not UTF-8: a 2.1.0 message that happens to hold `%` and hex digits
  }
}

/**
 * A localpart or domain: percent-decoded when clean. `+` stays `+`: neither can hold a space, so a `+`
 * is a real one (a 2.1.0 `+306…` number), and 6.x encodes a real one as `%2B`.
 */
const decodeField = (text: string) => decodeClean(text) ?? text;

/**
 * The message: decoded (`+` as a space) only when it looks encoded as a whole: written in the encoder's
 * alphabet and decoding cleanly. A 2.1.0 message that is one word of that alphabet with a `+` or `%xx` in
 * it ("c++") is read as encoded: the two versions cannot be told apart there, and 6.x sends every
 * multi-word message that way ("see+you").
 */
function decodeMessage(text: string): string {
  if (!ENCODED_ALPHABET.test(text)) return text;
  return decodeClean(text.replaceAll("+", " ")) ?? text;
}

const nodeProblem = (field: string, node: string) => {
  const problem = validateNode(node);
  return problem && `${field}: ${problem.replace(/^the user part /, "")}`;
};

/**
 * Reads the hook's raw body leniently: the leading `author`, `server` and `receiver` are split at `&` (a
 * localpart or a domain cannot hold `&`), and everything after the first `&message=` is the message, which
 * 2.1.0 sends unencoded (`&` and `=` included). A string when the body is unusable: what is wrong.
 */
export function parseChatHook(raw: string): ChatHook | string {
  const at = raw.indexOf(MESSAGE);
  if (at < 0) return "no message: the body must end with &message=<body>";
  const fields = new Map<string, string>();
  for (const pair of raw.slice(0, at).split("&")) {
    const eq = pair.indexOf("=");
    if (eq > 0) fields.set(pair.slice(0, eq), decodeField(pair.slice(eq + 1)));
  }
  const author = fields.get("author")?.toLowerCase() ?? "";
  const server = fields.get("server")?.toLowerCase() ?? "";
  const receiver = fields.get("receiver")?.toLowerCase() ?? "";
  const problem =
    nodeProblem("receiver", receiver) ??
    nodeProblem("author", author) ??
    (/^[^\s@/]+$/.test(server) ? undefined : "server: is not a domain");
  if (problem) return problem;
  return { author, server, receiver, message: decodeMessage(raw.slice(at + MESSAGE.length)) };
}

/** The raw body (express.text) as a ChatHook; a bad one fails with the problem ("receiver: is empty"). */
export const chatHookBody = z
  .string({ error: "send author=…&server=…&receiver=…&message=… as the body" })
  .transform((raw, ctx): ChatHook => {
    const hook = parseChatHook(raw);
    if (typeof hook === "string") {
      ctx.addIssue({ code: "custom", message: hook });
      return z.NEVER;
    }
    return hook;
  });

/** The hook as documented (OpenAPI): an ordinary form. */
export const documentedChatHook = z.object({
  author: z.string().meta({ description: "the sender's user part" }),
  server: z.string().meta({ description: "the sender's domain (the receiver's too)" }),
  receiver: z.string().meta({ description: "the receiver's user part" }),
  message: z.string().meta({ description: "the body; 2.1.0 sends it unencoded, always last" }),
});

export const CHAT_BODY_LENGTH = 200;

/** At most `max` characters as people count them (graphemes: an emoji with its modifiers is one). */
export function truncate(text: string, max: number): string {
  const graphemes = [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)];
  if (graphemes.length <= max) return text;
  return `${graphemes
    .slice(0, max - 1)
    .map((g) => g.segment)
    .join("")}…`;
}

/** APNs takes a collapse id of at most 64 bytes. */
const collapseKeyOf = (from: string) =>
  Buffer.byteLength(from) <= 64 ? from : createHash("sha256").update(from).digest("hex");

/** "New message" to the receiver: grouped (and replaced) per sender. */
export function chatNotification(hook: ChatHook): PushMessage {
  const from = `${hook.author}@${hook.server}`;
  return {
    title: hook.author,
    body: truncate(hook.message, CHAT_BODY_LENGTH),
    data: { type: "chat", from },
    collapseKey: collapseKeyOf(from),
    threadId: from,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The MongoosePush v2/v3 body. 2.1.0 sends `null` for what it lacks, 6.x some numbers and booleans as
// strings: null is read as absent, numeric and "true"/"false" strings as what they say.

const absent = <T extends z.ZodType>(schema: T) =>
  schema.nullish().transform((v): z.output<T> | undefined => (v === null ? undefined : v));
// as digits too (MongooseIM 2.1.0 sends form fields); at most 15 of them, or a string of hundreds of digits
// would become Infinity (found by test/security/fuzz.test.ts)
const count = z.union([
  z.number().int().min(0),
  z
    .string()
    .trim()
    .regex(/^\d{1,15}$/, "a whole number of at most 15 digits")
    .transform(Number),
]);
const flag = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);
const text = z.string().transform((s) => (s === "" ? undefined : s));

const alert = z.object({
  title: z.string(),
  body: z.string(),
  badge: absent(count),
  click_action: absent(text),
  tag: absent(text),
  sound: absent(text),
});

export const mongoosePushBody = z
  .object({
    service: z.enum(["fcm", "apns"]),
    mode: absent(z.enum(["prod", "dev"])),
    priority: absent(z.enum(["normal", "high"])),
    time_to_live: absent(count),
    mutable_content: absent(flag),
    topic: absent(text),
    tags: absent(z.array(z.string())),
    alert: absent(alert),
    data: absent(z.record(z.string(), z.unknown())),
  })
  .refine((b) => b.alert !== undefined || b.data !== undefined, {
    message: "give alert, data or both",
    path: ["alert"],
  });
export type MongoosePushBody = z.output<typeof mongoosePushBody>;

export const deviceParams = z.object({ deviceId: z.string().min(1).max(4096) });

/** Data values as strings (FCM takes nothing else): numbers and booleans written out, objects as JSON. */
function stringValues(data: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(data)) {
    if (value === null || value === undefined) continue;
    out[key] =
      typeof value === "string" ? value : typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return out;
}

/** The body as a PushMessage; `mode: "prod"` says nothing (the app's `apns.production` decides). */
export function mongoosePushMessage(b: MongoosePushBody): PushMessage {
  const m: PushMessage = {};
  if (b.alert) {
    m.title = b.alert.title;
    m.body = b.alert.body;
    if (b.alert.badge !== undefined) m.badge = b.alert.badge;
    if (b.alert.sound !== undefined) m.sound = b.alert.sound;
    if (b.alert.click_action !== undefined) m.category = b.alert.click_action;
    if (b.alert.tag !== undefined) m.threadId = b.alert.tag;
  } else {
    m.silent = true;
  }
  if (b.data) m.data = stringValues(b.data);
  if (b.mode === "dev") m.sandbox = true;
  if (b.topic !== undefined) m.topic = b.topic;
  if (b.time_to_live !== undefined) m.ttlSeconds = b.time_to_live;
  if (b.priority !== undefined) m.priority = b.priority;
  if (b.mutable_content !== undefined) m.mutableContent = b.mutable_content;
  return m;
}

/** APNs refuses a payload over 4 KB (5 KB for VoIP) with PayloadTooLarge. */
export const APNS_PAYLOAD_LIMIT = { apns: 4096, "apns-voip": 5120 } as const;

/** The size of the APNs payload the sender builds from `m` (push/senders/apns.ts), near enough to refuse early. */
export function apnsPayloadBytes(m: PushMessage): number {
  const aps: Record<string, unknown> = m.silent
    ? { "content-available": 1 }
    : {
        alert: { title: m.title, body: m.body },
        badge: m.badge,
        sound: m.sound,
        "thread-id": m.threadId,
        category: m.category,
        "mutable-content": m.mutableContent ? 1 : undefined,
      };
  return Buffer.byteLength(JSON.stringify({ ...m.data, aps }));
}

/** The answers of MongoosePush: 200 `null`, or an error status with `{ reason }` only. */
export const REASONS = [
  "invalid_request",
  "unregistered",
  "payload_too_large",
  "too_many_requests",
  "unable_to_connect",
  "internal_error",
] as const;
export type Reason = (typeof REASONS)[number];
export const reasonAnswer = z.object({ reason: z.enum(REASONS) });
