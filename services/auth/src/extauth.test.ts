import { PassThrough, Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { Jid } from "#common/users/jid.ts";
import { recordingLogger } from "../../../test/support/recording-logger.ts";
import { type ExtauthApi, FALSE_ANSWER, parseRequest, runExtauth, TRUE_ANSWER } from "./extauth.ts";

/** An in-memory API: `slow@…` never answers, `broken@…` throws (a database that is down). */
function fakeApi(users: Record<string, string>): ExtauthApi & { calls: string[] } {
  const key = (jid: Jid) => `${jid.node}@${jid.domain}`;
  const calls: string[] = [];
  const trouble = (jid: Jid): Promise<never> | undefined => {
    if (jid.node === "slow") return new Promise<never>(() => {});
    if (jid.node === "broken") return Promise.reject(new Error("database unreachable"));
    return undefined;
  };
  return {
    calls,
    checkPassword(jid, password) {
      calls.push(`checkPassword ${key(jid)}`);
      return trouble(jid) ?? Promise.resolve(users[key(jid)] === password);
    },
    userExists(jid) {
      calls.push(`userExists ${key(jid)}`);
      return trouble(jid) ?? Promise.resolve(key(jid) in users);
    },
    async setPassword(jid, pass) {
      calls.push(`setPassword ${key(jid)}`);
      if (!(key(jid) in users)) return "unknown_user";
      users[key(jid)] = pass;
      return "ok";
    },
    async register(jid, pass) {
      calls.push(`register ${key(jid)}`);
      if (key(jid) in users) return "exists";
      users[key(jid)] = pass;
      return "created";
    },
    async removeUser(jid) {
      calls.push(`removeUser ${key(jid)}`);
      if (!(key(jid) in users)) return "unknown_user";
      delete users[key(jid)];
      return "removed";
    },
    async removeUserValidate(jid, pass) {
      calls.push(`removeUserValidate ${key(jid)}`);
      if (!(key(jid) in users)) return "unknown_user";
      if (users[key(jid)] !== pass) return "bad_password";
      delete users[key(jid)];
      return "removed";
    },
  };
}

function frame(text: string | Buffer): Buffer {
  const body = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  const head = Buffer.alloc(2);
  head.writeUInt16BE(body.length);
  return Buffer.concat([head, body]);
}

/** Runs the protocol over in-memory streams: feeds `chunks`, ends the input, returns answers and log lines. */
async function exchange(api: ExtauthApi, chunks: Buffer[], options: { timeoutMs?: number } = {}) {
  const input = new PassThrough();
  const output = new PassThrough();
  const written: Buffer[] = [];
  output.on("data", (c: Buffer) => written.push(c));
  const { log, text } = recordingLogger({ level: "debug" });
  const done = runExtauth({ api, input, output, log, timeoutMs: options.timeoutMs ?? 1000 });
  for (const c of chunks) {
    input.write(c);
    await new Promise((r) => setImmediate(r)); // separate chunks really arrive separately
  }
  input.end();
  await done;
  const all = Buffer.concat(written);
  const answers: boolean[] = [];
  for (let i = 0; i < all.length; i += 4) {
    const a = all.subarray(i, i + 4);
    expect(a.equals(TRUE_ANSWER) || a.equals(FALSE_ANSWER), `answer bytes ${a.toString("hex")}`).toBe(true);
    answers.push(a.equals(TRUE_ANSWER));
  }
  return { answers, log: text() };
}

describe("parseRequest", () => {
  it("splits only the first three separators", () => {
    expect(parseRequest("auth:alice:localhost:a:b::c")).toEqual({
      op: "auth",
      jid: { node: "alice", domain: "localhost" },
      password: "a:b::c",
    });
    expect(parseRequest("auth:alice:localhost:")).toMatchObject({ password: "" });
    expect(parseRequest("isuser:alice:localhost")).toEqual({
      op: "isuser",
      jid: { node: "alice", domain: "localhost" },
    });
  });

  it("refuses unknown ops and wrong field counts", () => {
    for (const text of [
      "",
      "auth",
      "auth:alice:localhost",
      "isuser:alice:localhost:extra",
      "removeuser:alice",
      "isuser::localhost",
      "isuser:alice:",
      "certauth:alice:localhost:cert",
      "AUTH:alice:localhost:pw",
    ]) {
      expect(parseRequest(text), text).toBeUndefined();
    }
  });
});

describe("runExtauth", () => {
  it("maps every op to the API and answers in order", async () => {
    const api = fakeApi({ "alice@localhost": "secret", "bob@localhost": "pw" });
    const { answers } = await exchange(
      api,
      [
        "auth:alice:localhost:secret",
        "auth:alice:localhost:wrong",
        "isuser:alice:localhost",
        "isuser:carol:localhost",
        "setpass:alice:localhost:new",
        "setpass:carol:localhost:new",
        "auth:alice:localhost:new",
        "tryregister:carol:localhost:c",
        "tryregister:carol:localhost:c",
        "removeuser3:bob:localhost:wrong",
        "removeuser3:bob:localhost:pw",
        "removeuser:carol:localhost",
        "removeuser:carol:localhost",
      ].map((t) => frame(t)),
    );
    expect(answers).toEqual([
      true,
      false,
      true,
      false,
      true,
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      false,
    ]);
    expect(api.calls[0]).toBe("checkPassword alice@localhost");
  });

  it("reads frames split across chunks and several frames in one chunk", async () => {
    const api = fakeApi({ "alice@localhost": "secret" });
    const stream = Buffer.concat([
      frame("auth:alice:localhost:secret"),
      frame("auth:alice:localhost:nope"),
      frame("isuser:alice:localhost"),
    ]);
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect((await exchange(api, bytes)).answers).toEqual([true, false, true]);
    expect((await exchange(api, [stream])).answers).toEqual([true, false, true]);
    const cut = [stream.subarray(0, 1), stream.subarray(1, 40), stream.subarray(40)];
    expect((await exchange(api, cut)).answers).toEqual([true, false, true]);
  });

  it("keeps ':' in passwords", async () => {
    const api = fakeApi({ "alice@localhost": "a:b::c:" });
    const { answers } = await exchange(api, [
      frame("auth:alice:localhost:a:b::c:"),
      frame("auth:alice:localhost:a:b"),
    ]);
    expect(answers).toEqual([true, false]);
  });

  it("answers false to unknown ops and malformed frames, and goes on", async () => {
    const api = fakeApi({ "alice@localhost": "secret" });
    const { answers, log } = await exchange(api, [
      frame("certauth:alice:localhost:PEM"),
      frame("hello"),
      frame(""),
      frame("isuser:alice"),
      frame(Buffer.from([0x61, 0x75, 0x74, 0x68, 0x3a, 0xff, 0xfe, 0x3a, 0x78])), // not UTF-8
      frame("auth:alice:localhost:secret"),
    ]);
    expect(answers).toEqual([false, false, false, false, false, true]);
    expect(api.calls).toEqual(["checkPassword alice@localhost"]);
    expect(log).toContain('"op":"certauth"');
    expect(log).not.toContain("hello"); // an unknown first field could be anything: it is not logged
  });

  it("answers false when a decision takes too long, and the next request still in order", async () => {
    const api = fakeApi({ "alice@localhost": "secret" });
    const started = Date.now();
    const { answers, log } = await exchange(
      api,
      [frame("auth:slow:localhost:pw"), frame("auth:alice:localhost:secret"), frame("isuser:slow:localhost")],
      { timeoutMs: 100 },
    );
    expect(answers).toEqual([false, true, false]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(log).toContain("no decision in time");
  });

  it("answers false when the API throws (database down) and keeps running", async () => {
    const api = fakeApi({ "alice@localhost": "secret" });
    const { answers, log } = await exchange(api, [
      frame("auth:broken:localhost:pw"),
      frame("isuser:broken:localhost"),
      frame("auth:alice:localhost:secret"),
    ]);
    expect(answers).toEqual([false, false, true]);
    expect(log).toContain("database unreachable");
  });

  it("a throwing API that throws synchronously is answered false too", async () => {
    const api: ExtauthApi = {
      ...fakeApi({}),
      checkPassword() {
        throw new Error("boom");
      },
    };
    expect((await exchange(api, [frame("auth:a:localhost:pw")])).answers).toEqual([false]);
  });

  it("handles UTF-8 names (length in bytes, not characters)", async () => {
    const api = fakeApi({ "jörg@exämple.test": "pässwörd", "山田@localhost": "秘密:鍵" });
    const { answers } = await exchange(api, [
      frame("auth:jörg:exämple.test:pässwörd"),
      frame("auth:山田:localhost:秘密:鍵"),
      frame("isuser:山田:localhost"),
      frame("auth:山田:localhost:秘密"),
    ]);
    expect(answers).toEqual([true, true, true, false]);
    expect(api.calls).toContain("userExists 山田@localhost");
  });

  it("never logs passwords", async () => {
    const api = fakeApi({ "alice@localhost": "s3cr3t-Pa55" });
    const { log } = await exchange(
      api,
      [
        frame("auth:alice:localhost:s3cr3t-Pa55"),
        frame("auth:broken:localhost:s3cr3t-Pa55"),
        frame("auth:slow:localhost:s3cr3t-Pa55"),
        frame("s3cr3t-Pa55"),
        frame("setpass:alice:localhost:s3cr3t-Pa55:x"),
      ],
      { timeoutMs: 50 },
    );
    expect(log).toContain("alice");
    expect(log).not.toContain("s3cr3t");
  });

  it("ends when the input ends, even inside a frame", async () => {
    const api = fakeApi({ "alice@localhost": "secret" });
    const whole = frame("auth:alice:localhost:secret");
    const { answers, log } = await exchange(api, [whole, frame("isuser:alice:localhost").subarray(0, 5)]);
    expect(answers).toEqual([true]);
    expect(log).toContain("input ended inside a frame");
  });

  it("rejects when the output fails (the XMPP server went away)", async () => {
    const input = new PassThrough();
    const output = new Writable({ write: (_c, _e, cb) => cb(new Error("EPIPE")) });
    const log = pino({ level: "silent" });
    const done = runExtauth({ api: fakeApi({}), input, output, log });
    input.end(frame("isuser:a:localhost"));
    await expect(done).rejects.toThrow("EPIPE");
  });

  it("answers nothing and ends at once on an empty input", async () => {
    expect((await exchange(fakeApi({}), [])).answers).toEqual([]);
  });
});
