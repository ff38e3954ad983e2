import { describe, expect, it } from "vitest";
import { pushSchema } from "#common/config/push-schema.ts";
import { guessApp, reasonOf } from "./routes.ts";
import {
  apnsPayloadBytes,
  chatNotification,
  mongoosePushBody,
  mongoosePushMessage,
  parseChatHook,
  truncate,
} from "./schema.ts";

/**
 * What MongooseIM sends, read without HTTP: the 2.1.0 (unencoded) and 6.x (form-encoded) chat hook bodies,
 * the MongoosePush bodies of both versions, the app of a device we never stored, and the answers.
 */

/** A message with everything that breaks an unencoded form: `&`, `=`, `%`, `+`, UTF-8, even `&message=`. */
const TRICKY = 'Tom & Jerry: x=1, 50% off + "free" ünïcödé 😀 &message=again%zz';

/** What 2.1.0 sends: the values as they are. */
const raw21 = (f: { author: string; server: string; receiver: string; message: string }) =>
  `author=${f.author}&server=${f.server}&receiver=${f.receiver}&message=${f.message}`;
/** What 6.x sends: `cow_qs:qs`, spaces as `+`, everything else not alphanumeric as %XX (as URLSearchParams). */
const encoded6 = (f: { author: string; server: string; receiver: string; message: string }) =>
  new URLSearchParams(f).toString();

describe("parseChatHook", () => {
  const fields = { author: "306900000001", server: "oyo.test", receiver: "306900000002", message: TRICKY };

  it("reads a 2.1.0 body: everything after the first &message= is the message, as it is", () => {
    expect(parseChatHook(raw21(fields))).toEqual(fields);
  });

  it("reads a 6.x body: the message and fields decoded, + as a space", () => {
    const body = encoded6({ ...fields, author: "+306900000001" });
    expect(body).toContain("author=%2B306900000001");
    expect(parseChatHook(body)).toEqual({ ...fields, author: "+306900000001" });
    expect(parseChatHook(encoded6({ ...fields, message: "see you at 5" }))).toMatchObject({
      message: "see you at 5",
    });
  });

  it("keeps a 2.1.0 + in a user part, and a 2.1.0 message that does not decode cleanly as sent", () => {
    const plus = { ...fields, author: "+306900000001", message: "hi" };
    expect(parseChatHook(raw21(plus))).toEqual(plus);
    for (const message of ["100%", "50%+off", "%E2%82", "a%2", "1+1=2", "x y+z", "ok", ""]) {
      expect(parseChatHook(raw21({ ...fields, message })), message).toMatchObject({ message });
    }
  });

  it("decodes a one-word 2.1.0 message of the encoder's alphabet (the versions cannot be told apart there)", () => {
    expect(parseChatHook(raw21({ ...fields, message: "see+you" }))).toMatchObject({ message: "see you" });
    expect(parseChatHook(raw21({ ...fields, message: "caf%C3%A9" }))).toMatchObject({ message: "café" });
  });

  it("lower-cases the JID parts, and says what is wrong with a body it cannot use", () => {
    expect(parseChatHook(raw21({ ...fields, server: "OYO.test", receiver: "Bob" }))).toMatchObject({
      server: "oyo.test",
      receiver: "bob",
    });
    expect(parseChatHook("author=a&server=oyo.test&message=hi")).toBe("receiver: is empty");
    expect(parseChatHook("author=a&server=oyo.test&receiver=b")).toMatch(/^no message/);
    expect(parseChatHook("server=oyo.test&receiver=b&message=hi")).toBe("author: is empty");
    expect(parseChatHook("author=a&receiver=b&message=hi")).toBe("server: is not a domain");
    expect(parseChatHook("author=a&server=oyo.test&receiver=b%20c&message=hi")).toMatch(/^receiver: may not/);
    expect(parseChatHook("")).toMatch(/^no message/);
  });
});

describe("chatNotification", () => {
  it("is titled by the author, carries the sender, and is grouped per sender", () => {
    expect(
      chatNotification({ author: "306900000001", server: "oyo.test", receiver: "b", message: TRICKY }),
    ).toEqual({
      title: "306900000001",
      body: TRICKY,
      data: { type: "chat", from: "306900000001@oyo.test" },
      collapseKey: "306900000001@oyo.test",
      threadId: "306900000001@oyo.test",
    });
  });

  it("cuts the body to 200 characters as people count them, and a long sender's collapse key to 64 bytes", () => {
    const long = chatNotification({
      author: "a".repeat(80),
      server: "oyo.test",
      receiver: "b",
      message: "x",
    });
    expect(long.collapseKey).toMatch(/^[0-9a-f]{64}$/);
    expect(truncate("x".repeat(200), 200)).toBe("x".repeat(200));
    expect(truncate("x".repeat(201), 200)).toBe(`${"x".repeat(199)}…`);
    const family = "👨‍👩‍👧‍👦"; // one grapheme, 11 code units
    expect(truncate(family.repeat(201), 200)).toBe(`${family.repeat(199)}…`);
  });
});

describe("the MongoosePush body", () => {
  const parse = (body: unknown) => mongoosePushMessage(mongoosePushBody.parse(body));

  it("maps a 2.1.0 body (nulls, numbers) to the PushMessage", () => {
    expect(
      parse({
        service: "apns",
        mode: "dev",
        topic: null,
        alert: {
          title: "alice",
          body: "hi",
          badge: 3,
          tag: "alice@oyo.test",
          click_action: null,
          sound: null,
        },
      }),
    ).toEqual({ title: "alice", body: "hi", badge: 3, threadId: "alice@oyo.test", sandbox: true });
  });

  it("maps a 6.x body (numbers and booleans as strings) to the PushMessage", () => {
    expect(
      parse({
        service: "apns",
        mode: "prod",
        priority: "high",
        time_to_live: "3600",
        mutable_content: "true",
        topic: "com.oyo.chat",
        tags: ["OyoChat"],
        alert: { title: "alice", body: "hi", badge: "2", click_action: "REPLY", tag: "t", sound: "default" },
        data: { "message-count": 2, nested: { a: 1 }, flag: true, none: null, text: "x" },
      }),
    ).toEqual({
      title: "alice",
      body: "hi",
      badge: 2,
      sound: "default",
      category: "REPLY",
      threadId: "t",
      data: { "message-count": "2", nested: '{"a":1}', flag: "true", text: "x" },
      topic: "com.oyo.chat",
      ttlSeconds: 3600,
      priority: "high",
      mutableContent: true,
    });
  });

  it("is silent without an alert", () => {
    expect(
      parse({ service: "fcm", data: { "last-message-body": "hi" }, time_to_live: 0, mutable_content: false }),
    ).toEqual({ silent: true, data: { "last-message-body": "hi" }, ttlSeconds: 0, mutableContent: false });
  });

  it("refuses what MongoosePush refuses", () => {
    const ok = { service: "fcm", data: {} };
    for (const bad of [
      {},
      { service: "fcm" },
      { ...ok, service: "gcm" },
      { ...ok, mode: "test" },
      { ...ok, priority: "urgent" },
      { ...ok, time_to_live: "soon" },
      { ...ok, time_to_live: -1 },
      { ...ok, time_to_live: "9".repeat(400) }, // Infinity, once a number
      { service: "fcm", alert: { title: "t", body: "b", badge: "9".repeat(16) } },
      { ...ok, mutable_content: "yes" },
      { ...ok, tags: "OyoChat" },
      { service: "fcm", alert: { title: "no body" } },
      { ...ok, data: "text" },
    ]) {
      expect(mongoosePushBody.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("measures the APNs payload as the sender builds it", () => {
    const m = { title: "t", body: "b", badge: 1, data: { k: "v" } };
    expect(apnsPayloadBytes(m)).toBe(
      JSON.stringify({ k: "v", aps: { alert: { title: "t", body: "b" }, badge: 1 } }).length,
    );
    expect(apnsPayloadBytes({ title: "t", body: "é".repeat(3000) })).toBeGreaterThan(6000);
  });
});

describe("guessApp (a device MongooseIM knows and we never stored)", () => {
  const push = pushSchema.parse({
    apps: {
      OyoChat: {
        fcm: { serviceAccountFile: "oyo.json" },
        apns: { bundleId: "com.oyo.chat", keyFile: "k.p8", keyId: "K", teamId: "T" },
      },
      Other: { apns: { bundleId: "com.other.app", keyFile: "k.p8", keyId: "K", teamId: "T" } },
    },
  });

  it("takes the app whose bundle id is the topic, .voip meaning PushKit", () => {
    expect(guessApp(push, { service: "apns", topic: "com.other.app", tags: ["OyoChat"] })).toEqual({
      app: "Other",
      service: "apns",
    });
    expect(guessApp(push, { service: "apns", topic: "com.oyo.chat.voip" })).toEqual({
      app: "OyoChat",
      service: "apns-voip",
    });
  });

  it("else an app named in tags that has credentials for the service, else the only such app", () => {
    expect(guessApp(push, { service: "apns", topic: "com.unknown", tags: ["x", "Other"] })).toEqual({
      app: "Other",
      service: "apns",
    });
    expect(guessApp(push, { service: "fcm", tags: ["Other"] })).toEqual({ app: "OyoChat", service: "fcm" });
    expect(guessApp(push, { service: "apns" })).toBeUndefined();
    expect(guessApp(push, { service: "apns", tags: ["__proto__", "toString"] })).toBeUndefined();
    expect(guessApp(pushSchema.parse({}), { service: "fcm" })).toBeUndefined();
  });
});

describe("reasonOf (a TokenResult as MongoosePush answers it)", () => {
  it("maps each status, and reads size and throttling in the reason", () => {
    expect(reasonOf({ status: "sent" })).toBeUndefined();
    expect(reasonOf({ status: "dead_token", reason: "Unregistered" })).toBe("unregistered");
    expect(reasonOf({ status: "failed", reason: "PayloadTooLarge" })).toBe("payload_too_large");
    expect(reasonOf({ status: "failed", reason: "INVALID_ARGUMENT: Android message is too big" })).toBe(
      "payload_too_large",
    );
    expect(reasonOf({ status: "failed", reason: "BadTopic" })).toBe("internal_error");
    expect(reasonOf({ status: "gave_up", reason: "TooManyRequests" })).toBe("too_many_requests");
    expect(reasonOf({ status: "gave_up", reason: "QUOTA_EXCEEDED" })).toBe("too_many_requests");
    expect(reasonOf({ status: "gave_up", reason: "InternalServerError" })).toBe("unable_to_connect");
    expect(reasonOf({ status: "gave_up", reason: "network: ECONNRESET" })).toBe("unable_to_connect");
    expect(reasonOf({ status: "no_sender" })).toBe("unable_to_connect");
  });
});
