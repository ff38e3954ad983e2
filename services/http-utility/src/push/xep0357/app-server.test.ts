import { type Element, type IncomingContext, xml } from "@xmpp/component";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PushConfig } from "#common/config/push-schema.ts";
import { createTestDatabase, type TestDatabase } from "../../../../../test/support/database.ts";
import { ScriptedPushSender, sendersOf } from "../../../../../test/support/scripted-push-sender.ts";
import { createNotifier } from "../notifier.ts";
import { tokensOf } from "../token-store.ts";
import { type AppServer, type AppServerDeps, createAppServer } from "./app-server.ts";
import { xep0357Metrics } from "./metrics.ts";
import { accountHash, secretKey } from "./nodes.ts";
import { discoInfo, discoItems, NS } from "./protocol.ts";

/**
 * One domain's app server against a real database and scripted senders, fed the stanzas ejabberd and Prosody
 * send (the end-to-end path with both servers is test/xep0357-push.test.ts): registration as p2 answers it,
 * who may register and publish, the secret, privacy, dead tokens and a failing provider.
 */

const log = pino({ level: "silent" });
const DOMAIN = "chat.test";
const COMPONENT = "push.chat.test";
const PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";
const PUSH: Pick<PushConfig, "apps" | "maxTokensPerUser" | "tokenMoveAfterDays"> = {
  apps: {
    Chat: {
      fcm: { serviceAccountFile: "unused.json" },
      apns: { bundleId: "com.chat", production: false, keyFile: "k.p8", keyId: "K", teamId: "T" },
    },
    FcmOnly: { fcm: { serviceAccountFile: "unused.json" } },
  },
  maxTokensPerUser: 10,
  tokenMoveAfterDays: 30,
};

let db: TestDatabase;
let fcm: ScriptedPushSender;
let apns: ScriptedPushSender;
let registry: Registry;

function build(o: { private?: boolean; app?: string } = {}): AppServer {
  return createAppServer({ ...baseDeps(), app: o.app ?? "Chat", private: o.private ?? true });
}

const field = (name: string, value: string) => xml("field", { var: name }, xml("value", {}, value));

/** The context @xmpp/component's iq callee hands a handler: the stanza and its one child. */
function iq(from: string, child: Element): IncomingContext {
  const stanza = xml("iq", { type: "set", id: "q1", from, to: COMPONENT }, child);
  return { stanza, element: child, name: "iq", type: "set", id: "q1", from: null };
}

function command(node: string, fields: Record<string, string>): Element {
  return xml(
    "command",
    { xmlns: NS.commands, node, action: "execute" },
    xml("x", { xmlns: NS.data, type: "submit" }, ...Object.entries(fields).map(([k, v]) => field(k, v))),
  );
}

/** A publish as ejabberd's mod_push and Prosody's mod_cloud_notify write it. */
function publish(node: string, secret: string | undefined, summary: Record<string, string> = {}): Element {
  const form = xml(
    "x",
    { xmlns: NS.data, type: "submit" },
    field("FORM_TYPE", "urn:xmpp:push:summary"),
    ...Object.entries(summary).map(([k, v]) => field(k, v)),
  );
  return xml(
    "pubsub",
    { xmlns: NS.pubsub },
    xml("publish", { node }, xml("item", {}, xml("notification", { xmlns: NS.push }, form))),
    ...(secret === undefined
      ? []
      : [
          xml(
            "publish-options",
            {},
            xml(
              "x",
              { xmlns: NS.data, type: "submit" },
              field("FORM_TYPE", PUBLISH_OPTIONS),
              field("secret", secret),
            ),
          ),
        ]),
  );
}

const errorOf = (reply: unknown) => {
  const el = reply as Element;
  if (!el || typeof el !== "object" || el.name !== "error") return undefined;
  const condition = el.getChildElements().find((c) => c.attrs.xmlns === NS.stanzas && c.name !== "text");
  return `${el.attrs.type}/${condition?.name}`;
};

/** Registers and returns the answer form's values. */
async function register(
  server: AppServer,
  user: string,
  token: string,
  deviceId: string,
  service: "fcm" | "apns" = "fcm",
): Promise<{ jid: string; node: string; secret: string }> {
  const reply = await server.command(
    iq(`${user}@${DOMAIN}/phone`, command(`register-push-${service}`, { token, "device-id": deviceId })),
  );
  const el = reply as Element;
  expect(el.attrs.status, el.toString()).toBe("completed");
  const values = Object.fromEntries(
    (el.getChild("x", NS.data)?.getChildren("field") ?? []).map((f) => [
      f.attrs.var,
      f.getChildText("value"),
    ]),
  );
  return values as { jid: string; node: string; secret: string };
}

beforeAll(async () => {
  db = await createTestDatabase();
  fcm = new ScriptedPushSender("fcm");
  apns = new ScriptedPushSender("apns");
});

afterAll(async () => {
  await db?.drop();
});

describe("registration (p2's register-push-*)", () => {
  it("answers the component's jid, a node and a secret, and keeps the token as the user's device", async () => {
    const server = build();
    const answer = await register(server, "alice", "fcm-alice-1", "android-id-a");
    expect(answer.jid).toBe(COMPONENT);
    expect(answer.secret).toMatch(/^[\w-]{24}$/);
    expect(answer.node).toContain(accountHash(`alice@${DOMAIN}`, "android-id-a"));
    expect(await tokensOf(db.pool, { domain: DOMAIN, node: "alice" })).toMatchObject([
      { service: "fcm", token: "fcm-alice-1", app: "Chat" },
    ]);
    // registering again is the same node and secret (Conversations registers at every connection)
    expect(await register(server, "alice", "fcm-alice-1", "android-id-a")).toEqual(answer);
  });

  it("replaces the device's previous token when the provider gave it a new one", async () => {
    const server = build();
    await register(server, "bob", "fcm-bob-old", "android-id-b");
    await register(server, "bob", "fcm-bob-other-device", "android-id-b2");
    await register(server, "bob", "fcm-bob-new", "android-id-b");
    const tokens = (await tokensOf(db.pool, { domain: DOMAIN, node: "bob" })).map((r) => r.token).sort();
    expect(tokens).toEqual(["fcm-bob-new", "fcm-bob-other-device"]);
  });

  it("refuses users of other domains, incomplete forms, group chats and services the app cannot push to", async () => {
    const server = build({ app: "FcmOnly" });
    const ask = (from: string, node: string, fields: Record<string, string>) =>
      server.command(iq(from, command(node, fields))).then(errorOf);
    const ok = { token: "t-1", "device-id": "d-1" };
    expect(await ask("mallory@elsewhere.test/x", "register-push-fcm", ok)).toBe("auth/forbidden");
    expect(await ask(`${DOMAIN}`, "register-push-fcm", ok)).toBe("auth/forbidden");
    expect(await ask(`carol@${DOMAIN}/x`, "register-push-fcm", { token: "t-1" })).toBe("modify/bad-request");
    expect(await ask(`carol@${DOMAIN}/x`, "register-push-fcm", { "device-id": "d" })).toBe(
      "modify/bad-request",
    );
    expect(await ask(`carol@${DOMAIN}/x`, "register-push-fcm", { ...ok, muc: "room@muc.chat.test" })).toBe(
      "cancel/feature-not-implemented",
    );
    expect(await ask(`carol@${DOMAIN}/x`, "register-push-apns", ok)).toBe("cancel/service-unavailable");
    expect(await ask(`carol@${DOMAIN}/x`, "register-push-hms", ok)).toBe("cancel/item-not-found");
    expect(await tokensOf(db.pool, { domain: DOMAIN, node: "carol" })).toEqual([]);
  });

  it("keeps a token another user registered from another device (docs/push.md Tokens)", async () => {
    const server = build();
    await register(server, "dave", "fcm-shared", "dave-device");
    const reply = await server.command(
      iq(
        `erin@${DOMAIN}/x`,
        command("register-push-fcm", { token: "fcm-shared", "device-id": "erin-device" }),
      ),
    );
    expect(errorOf(reply)).toBe("cancel/conflict");
    // the same install (the same device id) under another account: the token moves
    await register(server, "erin", "fcm-shared", "dave-device");
    expect(await tokensOf(db.pool, { domain: DOMAIN, node: "erin" })).toHaveLength(1);
  });
});

describe("publishes", () => {
  it("pushes the device once, data-only on FCM, with nothing of the message in privacy mode", async () => {
    const server = build();
    const { node, secret } = await register(server, "frank", "fcm-frank", "frank-device");
    const reply = await server.publish(
      iq(
        DOMAIN,
        publish(node, secret, {
          "message-count": "1",
          "last-message-sender": `gina@${DOMAIN}/x`,
          "last-message-body": "meet at 5",
        }),
      ),
    );
    expect(reply).toBe(true);
    const pushes = fcm.pushesTo("fcm-frank");
    expect(pushes).toEqual([
      {
        data: {
          type: "xep0357",
          account: accountHash(`frank@${DOMAIN}`, "frank-device"),
          count: "1",
          message: "1",
        },
        silent: true,
        priority: "high",
      },
    ]);
    expect(JSON.stringify(pushes)).not.toMatch(/meet at 5|gina/);
  });

  it("carries the sender and the text when privacy is off; APNs alerts count the badge", async () => {
    const server = build({ private: false });
    const f = await register(server, "hank", "fcm-hank", "hank-device");
    const a = await register(server, "hank", "apns-hank", "hank-ipad", "apns");
    const summary = {
      "message-count": "1",
      // as ejabberd and Prosody send it: the full JID of the client that wrote
      "last-message-sender": `ivy@${DOMAIN}/phone-4f2a`,
      "last-message-body": "hello",
    };
    expect(await server.publish(iq(DOMAIN, publish(f.node, f.secret, summary)))).toBe(true);
    expect(await server.publish(iq(DOMAIN, publish(a.node, a.secret, summary)))).toBe(true);
    expect(await server.publish(iq(DOMAIN, publish(a.node, a.secret, summary)))).toBe(true);
    expect(fcm.pushesTo("fcm-hank")[0]?.data).toMatchObject({
      sender: `ivy@${DOMAIN}/phone-4f2a`,
      body: "hello",
    });
    // the lock screen names the contact and groups by them, not by their client's resource
    expect(apns.pushesTo("apns-hank")).toMatchObject([
      { title: `ivy@${DOMAIN}`, body: "hello", badge: 1, mutableContent: true, threadId: `ivy@${DOMAIN}` },
      { title: `ivy@${DOMAIN}`, body: "hello", badge: 2 },
    ]);
  });

  it("alerts APNs with only the configured title in privacy mode, and wakes silently for what is no message", async () => {
    const server = build();
    const a = await register(server, "jack", "apns-jack", "jack-phone", "apns");
    await server.publish(
      iq(
        DOMAIN,
        publish(a.node, a.secret, {
          "message-count": "1",
          "last-message-body": "New Message!",
          "last-message-sender": "x@y",
        }),
      ),
    );
    await server.publish(iq(DOMAIN, publish(a.node, a.secret, { "message-count": "1" })));
    const [alert, wake] = apns.pushesTo("apns-jack");
    expect(alert).toMatchObject({ title: "New message", badge: 1 });
    expect(alert).not.toHaveProperty("body");
    expect(JSON.stringify(alert)).not.toContain("x@y");
    expect(wake).toMatchObject({ silent: true, priority: "normal" });
  });

  it("refuses a wrong or missing secret, another domain's publish and nodes it never made", async () => {
    const server = build();
    const { node, secret } = await register(server, "kate", "fcm-kate", "kate-device");
    const wrong = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    expect(errorOf(await server.publish(iq(DOMAIN, publish(node, wrong))))).toBe("auth/forbidden");
    expect(errorOf(await server.publish(iq(DOMAIN, publish(node, undefined))))).toBe("auth/forbidden");
    expect(errorOf(await server.publish(iq("elsewhere.test", publish(node, secret))))).toBe("auth/forbidden");
    expect(errorOf(await server.publish(iq(`${DOMAIN}/res`, publish(node, secret))))).toBe("auth/forbidden");
    expect(errorOf(await server.publish(iq(DOMAIN, publish("made-up", secret))))).toBe(
      "cancel/item-not-found",
    );
    // a secret of another component's password
    const other = createAppServer({ ...baseDeps(), key: secretKey("another password", COMPONENT) });
    expect(errorOf(await other.publish(iq(DOMAIN, publish(node, secret))))).toBe("auth/forbidden");
    expect(fcm.pushesTo("fcm-kate")).toEqual([]);
  });

  it("answers item-not-found for a dead token (forgotten) and an unregistered device, wait when the provider fails", async () => {
    const server = build();
    const dead = await register(server, "liam", "fcm-liam-dead", "liam-device");
    fcm.script("fcm-liam-dead", { status: "dead_token", reason: "UNREGISTERED" });
    expect(errorOf(await server.publish(iq(DOMAIN, publish(dead.node, dead.secret))))).toBe(
      "cancel/item-not-found",
    );
    expect(await tokensOf(db.pool, { domain: DOMAIN, node: "liam" })).toEqual([]);
    expect(errorOf(await server.publish(iq(DOMAIN, publish(dead.node, dead.secret))))).toBe(
      "cancel/item-not-found",
    );

    const down = await register(server, "mia", "fcm-mia", "mia-device");
    fcm.script("fcm-mia", { status: "retry", reason: "UNAVAILABLE" });
    expect(errorOf(await server.publish(iq(DOMAIN, publish(down.node, down.secret))))).toBe(
      "wait/recipient-unavailable",
    );

    const reply = await server.command(
      iq(`mia@${DOMAIN}/phone`, command("unregister-push-fcm", { "device-id": "mia-device" })),
    );
    expect((reply as Element).attrs.status).toBe("completed");
    expect(errorOf(await server.publish(iq(DOMAIN, publish(down.node, down.secret))))).toBe(
      "cancel/item-not-found",
    );
  });

  it("counts publishes and registrations by outcome", async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/xep0357_publishes_total\{domain="chat.test",outcome="sent"\} [1-9]/);
    expect(text).toMatch(/xep0357_publishes_total\{domain="chat.test",outcome="forbidden"\} [1-9]/);
    expect(text).toMatch(
      /xep0357_registrations_total\{domain="chat.test",command="register-push-fcm",outcome="registered"\} [1-9]/,
    );
  });
});

function baseDeps(): AppServerDeps {
  registry ??= new Registry();
  return {
    domain: DOMAIN,
    component: COMPONENT,
    app: "Chat",
    private: true,
    alertTitle: "New message",
    key: secretKey("component secret", COMPONENT),
    pool: db.pool,
    push: PUSH,
    notifier: createNotifier({
      pool: db.pool,
      senders: sendersOf({ Chat: [fcm, apns], FcmOnly: [fcm] }),
      retry: { attempts: 2, initialMs: 10, maxMs: 50 },
      log,
      metrics: registry,
    }),
    metrics: xep0357Metrics(registry),
    log,
  };
}

describe("service discovery", () => {
  it("names a push service offering the commands, and lists them on the commands node", () => {
    const info = discoInfo(undefined);
    expect(info.getChild("identity")?.attrs).toMatchObject({ category: "pubsub", type: "push" });
    expect(info.getChildren("feature").map((f) => f.attrs.var)).toEqual(
      expect.arrayContaining([NS.push, NS.commands]),
    );
    const items = discoItems(NS.commands, COMPONENT).getChildren("item");
    expect(items.map((i) => [i.attrs.jid, i.attrs.node])).toEqual([
      [COMPONENT, "register-push-fcm"],
      [COMPONENT, "register-push-apns"],
      [COMPONENT, "unregister-push-fcm"],
      [COMPONENT, "unregister-push-apns"],
    ]);
  });
});
