import xml from "@xmpp/xml";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { defineKind } from "./kind.ts";
import { createFakeEntity } from "./testing/fake-entity.ts";

/** The bot under every kind: routing, rooms, fallback and failures, seen from the wire. */

const ROOM = "ops@conference.example.com";
const ALICE = "alice@example.com/phone";

const seen: string[] = [];
let stopped = 0;
const testKind = defineKind({
  kind: "test",
  summary: "a kind for tests",
  options: z.object({ greeting: z.string().default("hello") }).strict(),
  create(o, ctx) {
    ctx.command("greet", "greets whoever you name", (args) => `${o.greeting} ${args || "you"}`);
    ctx.command("boom", "fails", () => {
      throw new Error("kaboom");
    });
    ctx.hook("poke", () => ({ body: { poked: true } }));
    ctx.use(async (c, next) => {
      seen.push(c.message.body);
      if (c.message.body === "psst") return c.reply("heard you");
      return next();
    });
    return () => {
      stopped++;
    };
  },
});

const buddy = (options: unknown = {}) =>
  createFakeEntity({
    kind: testKind,
    options,
    identity: { jid: "bot@example.com", username: "bot", kind: "test", nick: "bot", rooms: [ROOM] },
  });

describe("createBot", () => {
  it("answers help with its kind and every command, in a chat to the sender's full JID", async () => {
    const b = await buddy();
    await b.chat(ALICE, "help");
    expect(b.take()).toEqual([
      {
        to: ALICE,
        type: "chat",
        body: "bot (test: a kind for tests). Commands:\n  help: this list\n  greet: greets whoever you name\n  boom: fails",
      },
    ]);
    expect(b.errors).toEqual([]);
  });

  it("routes the first word case-insensitively and passes the rest, with options parsed by the kind's schema", async () => {
    const b = await buddy({ greeting: "hi" });
    await b.chat(ALICE, "  GREET   bob  the builder ");
    expect(b.take()).toEqual([{ to: ALICE, type: "chat", body: "hi bob the builder" }]);
  });

  it("refuses options its kind's schema refuses", async () => {
    await expect(buddy({ greting: "typo" })).rejects.toThrow(/greting/);
  });

  it("in a room answers `nick: cmd`, `nick, cmd` and `!cmd` to the room, and stays silent otherwise", async () => {
    const b = await buddy();
    await b.groupchat(ROOM, "alice", "bot: greet everyone");
    await b.groupchat(ROOM, "alice", "Bot, greet carol");
    await b.groupchat(ROOM, "alice", "!greet dave");
    await b.groupchat(ROOM, "alice", "greet nobody, not addressed");
    await b.groupchat(ROOM, "alice", "dance");
    expect(b.take()).toEqual([
      { to: ROOM, type: "groupchat", body: "hello everyone" },
      { to: ROOM, type: "groupchat", body: "hello carol" },
      { to: ROOM, type: "groupchat", body: "hello dave" },
    ]);
  });

  it("ignores room history (delayed delivery) and its own messages reflected by the room", async () => {
    const b = await buddy();
    const delay = xml("delay", { xmlns: "urn:xmpp:delay", from: ROOM, stamp: "2024-01-01T00:00:00Z" });
    await b.groupchat(ROOM, "alice", "!greet history", delay);
    await b.groupchat(ROOM, "bot", "!greet myself");
    await b.chat("bot@example.com/other", "greet me");
    await b.groupchat(ROOM, "alice", "!greet live");
    expect(b.take()).toEqual([{ to: ROOM, type: "groupchat", body: "hello live" }]);
  });

  it("answers a private message from a room occupant to that occupant, who is known by nick", async () => {
    const b = await buddy();
    await b.chat(`${ROOM}/carol`, "greet me");
    expect(b.take()).toEqual([{ to: `${ROOM}/carol`, type: "chat", body: "hello me" }]);
    await b.chat(`${ROOM}/bot`, "greet me"); // its own private echo
    expect(b.take()).toEqual([]);
  });

  it("ignores chats from other buddies, so two bots never answer each other forever", async () => {
    const b = await createFakeEntity({
      kind: testKind,
      identity: { jid: "bot@example.com", username: "bot", kind: "test", nick: "bot", rooms: [ROOM] },
      isPeer: (jid) => jid === "echo@example.com",
    });
    await b.chat("echo@example.com/buddy", "nonsense");
    expect(b.take()).toEqual([]);
    await b.chat(ALICE, "nonsense");
    expect(b.take()).toEqual([
      { to: ALICE, type: "chat", body: 'I don\'t know "nonsense". Say help for what I can do.' },
    ]);
  });

  it("ignores what is not a message with a body: presence, iq, errors, empty bodies", async () => {
    const b = await buddy();
    await b.receive(xml("presence", { from: ALICE }));
    await b.receive(
      xml("iq", { from: ALICE, type: "get", id: "1" }, xml("ping", { xmlns: "urn:xmpp:ping" })),
    );
    await b.receive(xml("message", { from: ALICE, type: "error" }, xml("body", {}, "greet")));
    await b.receive(xml("message", { from: ALICE, type: "chat" }, xml("body", {}, "   ")));
    await b.receive(xml("message", { from: ALICE }, xml("body", {}, "greet normal")));
    // a message without a type is "normal" and answered like a chat
    expect(b.take()).toEqual([{ to: ALICE, type: "chat", body: "hello normal" }]);
  });

  it("runs the kind's middleware after the router, for what no command took", async () => {
    const b = await buddy();
    seen.length = 0;
    await b.chat(ALICE, "psst");
    await b.chat(ALICE, "greet x");
    expect(seen).toEqual(["psst"]);
    expect(b.take().map((m) => m.body)).toEqual(["heard you", "hello x"]);
  });

  it("hints at help in a chat for an unknown word, quoting it, escaped on the wire", async () => {
    const b = await buddy();
    await b.chat(ALICE, "<b>dance</b> & then");
    expect(b.take()).toEqual([
      { to: ALICE, type: "chat", body: `I don't know "<b>dance</b>". Say help for what I can do.` },
    ]);
    expect(b.socket.written.at(-1)).toContain("&lt;b&gt;dance&lt;/b&gt;");
  });

  it("answers a failing command with an error in a chat, logs it, stays silent in a room, and keeps working", async () => {
    const b = await buddy();
    await b.chat(ALICE, "boom");
    await b.groupchat(ROOM, "alice", "!boom");
    await b.chat(ALICE, "greet again");
    expect(b.take()).toEqual([
      { to: ALICE, type: "chat", body: "Something went wrong handling that; it is in my log." },
      { to: ALICE, type: "chat", body: "hello again" },
    ]);
    const failures = b.logLines.filter((l) => l.msg === "message handling failed");
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatchObject({ from: "alice@example.com", err: { message: "kaboom" } });
    expect(b.errors).toEqual([]);
  });

  it("exposes the kind's hooks and runs its cleanup on stop", async () => {
    const b = await buddy();
    expect(await b.hook("poke", {})).toEqual({ body: { poked: true } });
    expect([...b.bot.commands.keys()]).toEqual(["help", "greet", "boom"]);
    const before = stopped;
    await b.stop();
    expect(stopped).toBe(before + 1);
  });
});
