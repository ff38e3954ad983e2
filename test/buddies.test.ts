import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  adminAuth,
  type BuddiesProcess,
  buddiesOf,
  connectedUsers,
  eventually,
  HOOK_KEY,
} from "./support/buddies.ts";
import { type Stack, startStack } from "./support/buddies-stack.ts";
import { inRoom, messageFrom } from "./support/xmpp-user.ts";

/**
 * Buddies end to end (issue 5): one buddies runner process (its main.ts, as pm2 starts it) logging its bots
 * in to ejabberd 23.01 (Debian) through `sidecars extauth` and web_users, for two domains; users at real
 * XMPP clients chat with them, join their rooms, receive what the notify webhook sends, and see them come
 * back after ejabberd restarts. The admin API and page are checked against the same process.
 */

const LOBBY = "lobby@conference.localhost";
const SECOND_LOBBY = "lobby@conference.second.test";
const ONLINE = ["echo@localhost", "service@localhost", "notify@localhost", "echo@second.test"];

// Not skipped when ejabberd cannot run here: startStack fails and says why.
describe("buddies with ejabberd", () => {
  let stack: Stack;
  let runner: BuddiesProcess;

  beforeAll(async () => {
    stack = await startStack({
      buddies: {
        localhost: {
          echo: { kind: "echo", password: "echo-pw", rooms: [LOBBY] },
          service: { kind: "service", password: "service-pw" },
          notify: { kind: "notify", password: "notify-pw", rooms: [LOBBY] },
          broken: { kind: "echo", password: "right-pw", filePassword: "wrong-pw" },
        },
        "second.test": { echo: { kind: "echo", password: "echo2-pw", rooms: [SECOND_LOBBY] } },
      },
      users: [
        ["alice", "localhost", "alice-pw"],
        ["bob", "second.test", "bob-pw"],
      ],
    });
    runner = await stack.startRunner("runner-1");
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === "fail") console.error(await stack?.logs());
  });

  afterAll(async () => {
    await stack?.close();
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${runner.url}${path}`, {
      ...init,
      headers: { authorization: adminAuth, "content-type": "application/json", ...init.headers },
    });
  const allOnline = (jids: string[]) =>
    eventually(
      async () => {
        const list = await buddiesOf(runner.url);
        return jids.every((j) => list.find((b) => b.jid === j)?.state === "online") && list;
      },
      20_000,
      `${jids.join(", ")} online`,
    );

  it("brings the buddies of both domains online, owned by the runner", async () => {
    const list = await allOnline(ONLINE);
    for (const jid of ONLINE) {
      expect(list.find((b) => b.jid === jid)?.owner).toMatchObject({ pid: runner.pid });
    }
    const connected = await connectedUsers(stack.ej.ctl);
    for (const jid of ONLINE) expect(connected.filter((c) => c.startsWith(`${jid}/`))).toHaveLength(1);
  });

  it("echoes a user's chat message, in each domain", async () => {
    await allOnline(ONLINE);
    const alice = await stack.user("alice", "localhost", "alice-pw");
    const bob = await stack.user("bob", "second.test", "bob-pw");
    await alice.chat("echo@localhost", "hello from alice");
    await bob.chat("echo@second.test", "hello from bob");
    await alice.waitFor(messageFrom("echo@localhost/", "hello from alice"), 10_000, "echo");
    await bob.waitFor(messageFrom("echo@second.test/", "hello from bob"), 10_000, "echo");
  });

  it("answers `status` with the health of the three services", async () => {
    await allOnline(ONLINE);
    const alice = await stack.user("alice", "localhost", "alice-pw");
    await alice.chat("service@localhost", "status");
    const answer = await alice.waitFor(messageFrom("service@localhost/", "services up"), 10_000, "status");
    const text = answer.getChildText("body") ?? "";
    expect(text).toMatch(/^buddies: up/m);
    expect(text).toMatch(/^auth: /m);
    expect(text).toMatch(/^http-utility: /m);
  });

  it("delivers the notify webhook to a user and to a room", async () => {
    await allOnline(ONLINE);
    const alice = await stack.user("alice", "localhost", "alice-pw");
    await alice.join(LOBBY, "alice");
    await alice.waitFor(inRoom(LOBBY, "notify"), 10_000, "notify in the lobby");
    const hook = (body: unknown, key = HOOK_KEY) =>
      fetch(`${runner.url}/hooks/localhost/notify/send`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await hook({ to: "alice@localhost", message: "deploy finished" }, "wrong")).status).toBe(401);
    const toUser = await hook({ to: "alice@localhost", message: "deploy finished" });
    expect(toUser.status, await toUser.clone().text()).toBe(200);
    await alice.waitFor(messageFrom("notify@localhost/", "deploy finished"), 10_000, "notification");
    const toRoom = await hook({ to: LOBBY, message: "disk almost full" });
    expect(toRoom.status, await toRoom.clone().text()).toBe(200);
    const got = await alice.waitFor(
      messageFrom(`${LOBBY}/notify`, "disk almost full"),
      10_000,
      "room notification",
    );
    expect(got.attrs.type).toBe("groupchat");
  });

  it("shows a buddy with a wrong password in backoff, not-authorized, the others online", async () => {
    const list = await eventually(
      async () => {
        const l = await buddiesOf(runner.url);
        return l.find((b) => b.jid === "broken@localhost")?.lastError && l;
      },
      20_000,
      "broken@localhost has an error",
    );
    const broken = list.find((b) => b.jid === "broken@localhost");
    expect(broken?.state).toMatch(/backoff|connecting/);
    expect(broken?.lastError).toMatch(/not-authorized/);
    await allOnline(ONLINE);
  });
});
