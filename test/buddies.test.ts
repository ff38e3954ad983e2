import { mkdir } from "node:fs/promises";
import path from "node:path";
import xml from "@xmpp/xml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "./support/browser.ts";
import {
  ADMIN_KEY,
  adminAuth,
  type BuddiesProcess,
  buddiesOf,
  connectedUsers,
  HOOK_KEY,
} from "./support/buddies.ts";
import { type Stack, startStack } from "./support/buddies-stack.ts";
import { eventually } from "./support/eventually.ts";
import { ROOT } from "./support/processes.ts";
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
        return l.find((b) => b.jid === "broken@localhost")?.lastError ? l : undefined;
      },
      20_000,
      "broken@localhost has an error",
    );
    const broken = list.find((b) => b.jid === "broken@localhost");
    expect(broken?.state).toMatch(/backoff|connecting/);
    expect(broken?.lastError).toMatch(/not-authorized/);
    await allOnline(ONLINE);
  });

  it("admin API: credentials, stop, start, restart, a buddy added and removed at runtime, its log", async () => {
    await allOnline(ONLINE);
    const anonymous = await fetch(`${runner.url}/api/buddies`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    const hookKeyOnApi = await fetch(`${runner.url}/api/buddies`, {
      headers: { authorization: `Bearer ${HOOK_KEY}` },
    });
    expect(hookKeyOnApi.status).toBe(401);
    const crossOrigin = await admin("/api/buddies/echo@second.test/stop", {
      method: "POST",
      headers: { origin: "http://evil.test" },
    });
    expect(crossOrigin.status).toBe(403);
    expect((await admin("/api/buddies/echo@localhost", { method: "DELETE" })).status).toBe(409); // defined in config
    const connected = async (jid: string) =>
      (await connectedUsers(stack.ej.ctl)).filter((c) => c.startsWith(`${jid}/`)).length;
    const state = async (jid: string) => (await buddiesOf(runner.url)).find((b) => b.jid === jid);
    const bob = await stack.user("bob", "second.test", "bob-pw");
    await bob.join(SECOND_LOBBY, "bob");
    await bob.waitFor(inRoom(SECOND_LOBBY, "echo"), 10_000, "echo in the lobby");

    // stop: the operator's wish is kept, the buddy leaves the room and ejabberd
    const stop = await admin("/api/buddies/echo@second.test/stop", { method: "POST" });
    expect(stop.status, await stop.clone().text()).toBe(202);
    await bob.waitFor(
      (s) => s.is("presence") && s.attrs.from === `${SECOND_LOBBY}/echo` && s.attrs.type === "unavailable",
      10_000,
      "echo leaving the lobby",
    );
    await eventually(async () => (await state("echo@second.test"))?.state === "stopped", 10_000, "stopped");
    await eventually(
      async () => (await connected("echo@second.test")) === 0,
      10_000,
      "echo@second.test offline",
    );
    expect((await state("echo@second.test"))?.stopped).toBe(true);

    // start: back online, once
    bob.clear();
    expect((await admin("/api/buddies/echo@second.test/start", { method: "POST" })).status).toBe(202);
    await bob.waitFor(inRoom(SECOND_LOBBY, "echo"), 15_000, "echo back in the lobby");
    const started = await allOnline(["echo@second.test"]);
    expect(await connected("echo@second.test")).toBe(1);
    const since = started.find((b) => b.jid === "echo@second.test")?.connectedSince;

    // restart: a new connection
    expect((await admin("/api/buddies/echo@second.test/restart", { method: "POST" })).status).toBe(202);
    await eventually(
      async () => {
        const b = await state("echo@second.test");
        return b?.state === "online" && b.connectedSince !== since;
      },
      15_000,
      "echo@second.test reconnected",
    );
    expect(await connected("echo@second.test")).toBe(1);

    // a buddy added at runtime comes online without a restart, and answers
    await stack.addUser("extra", "localhost", "extra-pw");
    const file = await stack.passwordFile("extra@localhost", "extra-pw");
    const put = await admin("/api/buddies/extra@localhost", {
      method: "PUT",
      body: JSON.stringify({ kind: "echo", password: { file }, options: { prefix: "extra: " } }),
    });
    expect(put.status, await put.clone().text()).toBe(201);
    await allOnline(["extra@localhost"]);
    const alice = await stack.user("alice", "localhost", "alice-pw");
    await alice.chat("extra@localhost", "are you there?");
    await alice.waitFor(messageFrom("extra@localhost/", "extra: are you there?"), 10_000, "extra's echo");

    const logs = await admin("/api/buddies/extra@localhost/logs");
    expect(logs.status).toBe(200);
    const { lines } = (await logs.json()) as { lines: { msg: string }[] };
    expect(lines.map((l) => l.msg)).toContain("online");

    // removed: offline, and gone from the list
    expect((await admin("/api/buddies/extra@localhost", { method: "DELETE" })).status).toBe(204);
    await eventually(
      async () => (await connected("extra@localhost")) === 0,
      10_000,
      "extra@localhost offline",
    );
    expect(await state("extra@localhost")).toBeUndefined();
  });

  it("admin page in Chromium: lists the buddies and restarts one", async () => {
    const browser = await launchBrowser();
    try {
      await allOnline(ONLINE);
      const context = await browser.newContext({ httpCredentials: { username: "ops", password: ADMIN_KEY } });
      const page = await context.newPage();
      await page.goto(`${runner.url}/`);
      const row = (jid: string) => page.locator(`tr[data-jid="${jid}"]`);
      for (const jid of ONLINE)
        await expect.poll(() => row(jid).locator(".state").textContent(), { timeout: 10_000 }).toBe("online");
      await expect
        .poll(() => row("broken@localhost").locator(".state").textContent())
        .toMatch(/backoff|connecting/);
      expect(await row("broken@localhost").textContent()).toContain("not-authorized");

      const before = (await buddiesOf(runner.url)).find((b) => b.jid === "echo@localhost");
      await row("echo@localhost").getByRole("button", { name: "Restart" }).click();
      await eventually(
        async () => {
          const b = (await buddiesOf(runner.url)).find((x) => x.jid === "echo@localhost");
          return b?.state === "online" && b.connectedSince !== before?.connectedSince;
        },
        15_000,
        "echo@localhost restarted",
      );
      await expect
        .poll(() => row("echo@localhost").locator(".state").textContent(), { timeout: 10_000 })
        .toBe("online");
      await mkdir(path.join(ROOT, "test-artifacts"), { recursive: true });
      await page.screenshot({
        path: path.join(ROOT, "test-artifacts/buddies-admin-e2e.png"),
        fullPage: true,
      });
    } finally {
      await browser.close();
    }
  });

  it("after ejabberd restarts, every buddy is back online and back in its rooms", async () => {
    const before = await allOnline(ONLINE);
    const restartedAt = Date.now();
    await stack.ej.restart();
    const after = await eventually(
      async () => {
        const list = await buddiesOf(runner.url);
        return (
          ONLINE.every((jid) => {
            const b = list.find((x) => x.jid === jid);
            return b?.state === "online" && Date.parse(b.connectedSince ?? "") > restartedAt;
          }) && list
        );
      },
      30_000,
      "every buddy online again",
    );
    console.info(`buddies back online ${Date.now() - restartedAt} ms after the restart began`);
    for (const jid of ONLINE) {
      const was = before.find((b) => b.jid === jid)?.reconnects ?? 0;
      expect(after.find((b) => b.jid === jid)?.reconnects).toBeGreaterThan(was);
    }
    const alice = await stack.user("alice", "localhost", "alice-pw");
    await alice.join(LOBBY, "alice");
    await alice.waitFor(inRoom(LOBBY, "echo"), 10_000, "echo in the lobby");
    await alice.waitFor(inRoom(LOBBY, "notify"), 10_000, "notify in the lobby");
    await alice.send(xml("message", { to: LOBBY, type: "groupchat" }, xml("body", {}, "!help")));
    await alice.waitFor(messageFrom(`${LOBBY}/echo`, "Commands"), 10_000, "echo's help in the room");
    const bob = await stack.user("bob", "second.test", "bob-pw");
    await bob.join(SECOND_LOBBY, "bob");
    await bob.waitFor(inRoom(SECOND_LOBBY, "echo"), 10_000, "echo in the second lobby");
    await bob.send(
      xml("message", { to: SECOND_LOBBY, type: "groupchat" }, xml("body", {}, "echo: still there?")),
    );
    await bob.waitFor(
      messageFrom(`${SECOND_LOBBY}/echo`, "still there?"),
      10_000,
      "echo in the second lobby",
    );
  });
});
