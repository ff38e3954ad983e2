import { describe, expect, it } from "vitest";
import echo from "./echo.ts";
import { createFakeEntity } from "./testing/fake-entity.ts";

const ROOM = "lab@conference.example.com";
const ALICE = "alice@example.com/laptop";

const buddy = (options: unknown = {}) =>
  createFakeEntity({
    kind: echo,
    options,
    identity: { jid: "echo@example.com", username: "echo", kind: "echo", nick: "echo", rooms: [ROOM] },
  });

describe("the echo kind", () => {
  it("answers a chat with exactly the same body, lines and markup included", async () => {
    const b = await buddy();
    await b.chat(ALICE, "hello there");
    await b.chat(ALICE, "two\nlines <b>&</b> ünïcode");
    expect(b.take()).toEqual([
      { to: ALICE, type: "chat", body: "hello there" },
      { to: ALICE, type: "chat", body: "two\nlines <b>&</b> ünïcode" },
    ]);
  });

  it("puts its prefix before every echo", async () => {
    const b = await buddy({ prefix: "echo: " });
    await b.chat(ALICE, "ping?");
    expect(b.take()).toEqual([{ to: ALICE, type: "chat", body: "echo: ping?" }]);
  });

  it("in a room echoes only what is addressed to it, without the address, to the room", async () => {
    const b = await buddy();
    await b.groupchat(ROOM, "alice", "echo: testing 1 2 3");
    await b.groupchat(ROOM, "alice", "Echo, again");
    await b.groupchat(ROOM, "alice", "just chatting with the room");
    await b.groupchat(ROOM, "alice", "echo:");
    expect(b.take()).toEqual([
      { to: ROOM, type: "groupchat", body: "testing 1 2 3" },
      { to: ROOM, type: "groupchat", body: "again" },
    ]);
  });

  it("still answers help rather than echoing it", async () => {
    const b = await buddy();
    await b.chat(ALICE, "help");
    expect(b.take()).toEqual([
      {
        to: ALICE,
        type: "chat",
        body: "echo (echo: diagnostics: answers a message with the same text). Commands:\n  help: this list",
      },
    ]);
  });

  it("refuses options it does not know", async () => {
    await expect(buddy({ prefx: "x" })).rejects.toThrow(/prefx/);
  });
});
