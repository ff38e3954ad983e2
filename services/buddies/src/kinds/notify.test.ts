import { describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { HttpError } from "#common/errors.ts";
import { InvalidOptionsError } from "#common/plugins/problems.ts";
import notify from "./notify.ts";
import { createFakeEntity } from "./testing/fake-entity.ts";

const ROOM = "ops@conference.example.com";

const buddy = (options: unknown = {}) =>
  createFakeEntity({
    kind: notify,
    options,
    identity: {
      jid: "notify@example.com",
      username: "notify",
      kind: "notify",
      nick: "notify",
      rooms: [ROOM],
    },
  });

/** The error a hook threw, for asserting what the HTTP caller gets. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the hook to fail");
}

describe("the notify kind's send hook", () => {
  it("sends the message to a user as a chat and says where it went", async () => {
    const b = await buddy();
    const res = await b.hook("send", { to: "Bob@Example.com", message: "deploy 42 done\nall green" });
    expect(res).toEqual({ body: { sent: [{ to: "bob@example.com", type: "chat" }] } });
    expect(b.take()).toEqual([{ to: "bob@example.com", type: "chat", body: "deploy 42 done\nall green" }]);
  });

  it("sends to a room it is in as groupchat, with or without an explicit type", async () => {
    const b = await buddy();
    await b.hook("send", { to: ROOM, message: "first" });
    await b.hook("send", { to: ROOM, message: "second", type: "groupchat" });
    expect(b.take()).toEqual([
      { to: ROOM, type: "groupchat", body: "first" },
      { to: ROOM, type: "groupchat", body: "second" },
    ]);
  });

  it("takes a message of 10000 characters and refuses 10001, a bad JID, a blank message or an unknown field", async () => {
    const b = await buddy();
    await b.hook("send", { to: "bob@example.com", message: "x".repeat(10_000) });
    expect(b.take()[0]?.body).toHaveLength(10_000);

    const cases: Array<[unknown, string]> = [
      [{ to: "bob@example.com", message: "x".repeat(10_001) }, "message"],
      [{ to: "bob", message: "hi" }, "to"],
      [{ to: "bob@example.com/phone", message: "hi" }, "to"],
      [{ to: "bob@example.com", message: "  \n " }, "message"],
      [{ to: "bob@example.com", message: "hi", type: "headline" }, "type"],
      [{ to: "bob@example.com", mesage: "hi" }, "message"],
      ["not json object", ""],
    ];
    for (const [body, field] of cases) {
      const err = await failure(b.hook("send", body));
      expect(err, JSON.stringify(body)).toBeInstanceOf(ZodError);
      expect((err as ZodError).issues.map((i) => i.path.join("."))).toContain(field);
    }
    expect(b.take()).toEqual([]);
  });

  it("refuses with 409 not_in_room a groupchat or a room JID of a room it is not in, sending nothing", async () => {
    const b = await buddy();
    for (const body of [
      { to: "dev@conference.example.com", message: "hi" },
      { to: "dev@conference.example.com", message: "hi", type: "groupchat" },
      { to: "bob@example.com", message: "hi", type: "groupchat" },
    ]) {
      const err = await failure(b.hook("send", body));
      expect(err).toBeInstanceOf(HttpError);
      expect(err).toMatchObject({ status: 409, code: "not_in_room" });
    }
    const err = (await failure(b.hook("send", { to: "dev@conference.example.com", message: "x" }))) as Error;
    expect(err.message).toBe(
      "notify@example.com is not in the room dev@conference.example.com (it is in ops@conference.example.com): add the room to the buddy's rooms, or send to a user",
    );
    expect(b.take()).toEqual([]);
  });

  it("refuses a chat to a room it is in with 400, naming the fix", async () => {
    const b = await buddy();
    const err = await failure(b.hook("send", { to: ROOM, message: "hi", type: "chat" }));
    expect(err).toMatchObject({
      status: 400,
      code: "invalid_request",
      message: `type: ${ROOM} is a room; send it as groupchat or leave type out`,
    });
  });

  it("has only the send and notification-action hooks and help without a preset, and refuses preset options without the preset", async () => {
    const b = await buddy();
    expect([...b.bot.hooks.keys()]).toEqual(["send", "notification-action"]);
    expect([...b.bot.commands.keys()]).toEqual(["help"]);
    const err = await failure(buddy({ to: ["alice@example.com"] }));
    expect((err as InvalidOptionsError).issues).toMatchObject([
      { path: ["to"], message: 'is an option of preset "zabbix": add preset: "zabbix"' },
    ]);
    expect((err as Error).message).toBe('options.to: is an option of preset "zabbix": add preset: "zabbix"');
    await expect(buddy({ preset: "nagios" })).rejects.toBeInstanceOf(InvalidOptionsError);
  });
});

describe("the notify kind's notification-action hook", () => {
  it("tells actionsTo of a reply and of a resolve relayed from a push notification", async () => {
    const b = await buddy({ actionsTo: ["alice@example.com", ROOM] });
    const reply = {
      notificationId: "n-1",
      action: "reply",
      text: "on it",
      from: "bob@example.com",
      at: "2026-11-30T06:00:00Z",
    };
    expect(await b.hook("notification-action", reply)).toEqual({
      body: {
        sent: [
          { to: "alice@example.com", type: "chat" },
          { to: ROOM, type: "groupchat" },
        ],
      },
    });
    expect(b.take()).toEqual([
      { to: "alice@example.com", type: "chat", body: "bob@example.com replied to notification n-1: on it" },
      { to: ROOM, type: "groupchat", body: "bob@example.com replied to notification n-1: on it" },
    ]);
    await b.hook("notification-action", {
      notificationId: "n-1",
      action: "resolve",
      from: "bob@example.com",
    });
    expect(b.take().map((m) => m.body)).toEqual([
      "bob@example.com resolved notification n-1",
      "bob@example.com resolved notification n-1",
    ]);
  });

  it("answers 409 when nobody is configured, 400 for a body that is not an action", async () => {
    const b = await buddy();
    const err = await failure(
      b.hook("notification-action", { notificationId: "n", action: "resolve", from: "x@y" }),
    );
    expect(err).toBeInstanceOf(HttpError);
    expect(err).toMatchObject({ status: 409, code: "no_recipient" });
    const bad = await failure(
      (await buddy({ actionsTo: ["a@example.com"] })).hook("notification-action", { action: "delete" }),
    );
    expect(bad).toBeInstanceOf(ZodError);
    expect(b.take()).toEqual([]);
  });
});
