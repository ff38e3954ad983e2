import { type ChildProcess, execFile } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Client } from "@xmpp/client";
import xml, { type Element } from "@xmpp/xml";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import YAML from "yaml";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { addUser } from "#common/users/web-users.ts";
import { ignoreDataAfterClose } from "../services/buddies/src/xmpp/connection.ts";
import { createPushDeps, type PushDeps } from "../services/http-utility/src/push/deps.ts";
import { tokensOf } from "../services/http-utility/src/push/token-store.ts";
import { startXep0357, type Xep0357 } from "../services/http-utility/src/push/xep0357/index.ts";
import { accountHash } from "../services/http-utility/src/push/xep0357/nodes.ts";
import { testConfigDir } from "./support/config-dir.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { type Ejabberd, ejabberdUnavailable, startEjabberd } from "./support/ejabberd.ts";
import { type FakeApns, startFakeApns } from "./support/fake-apns.ts";
import {
  type FakeFcm,
  fcmAnswers,
  refuseDns,
  startFakeFcm,
  writeServiceAccount,
} from "./support/fake-fcm.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT, runService, waitForOk } from "./support/processes.ts";
import { type Prosody, prosodyUnavailable, startProsody } from "./support/prosody.ts";
import { trustingClient } from "./support/trusting-client.ts";
import { connectUser } from "./support/xmpp-user.ts";

/**
 * The XEP-0357 app server with the real servers: ejabberd 23.01 (`mod_push`, `mod_stream_mgmt`) and Prosody
 * 0.12 (`mod_cloud_notify`, `mod_smacks`), each with a private domain and one whose privacy mode is off, both
 * told to send the sender and the text. A client (xmpp.js) registers with `register-push-fcm` as
 * Conversations does (or `register-push-apns`, as an iPhone app on p2's protocol), enables push on its
 * server, and goes away with stream management (the socket cut, the session kept); another user writes to
 * it; the local FCM (test/support/fake-fcm.ts) or APNs (test/support/fake-apns.ts) gets exactly one push.
 * A wrong publish secret pushes nothing; a dead token is forgotten and the server told so. Last, a second
 * "process" takes the components over when the first stops.
 */

const ej = { unavailable: ejabberdUnavailable() };
const pr = { unavailable: prosodyUnavailable() };
const log = pino({ level: "silent" });
const SECRET = `component-${randomBytes(12).toString("hex")}`;
const PASSWORD = "pw-of-everyone";

const NS_COMMANDS = "http://jabber.org/protocol/commands";
const NS_DATA = "jabber:x:data";
const NS_PUSH = "urn:xmpp:push:0";
const NS_SM = "urn:xmpp:sm:3";

/** The iPhone app's APNs credentials (token auth), its key made in beforeAll. */
const BUNDLE_ID = "im.example.chat";
const APNS_KEY_ID = "CHATKEY123";
const APNS_TEAM_ID = "CHATTEAM45";

interface Server {
  name: string;
  port: number;
  ca: string;
}

let db: TestDatabase;
let fcm: FakeFcm;
let apns: FakeApns;
let dns: ReturnType<typeof refuseDns>;
let ejabberd: Ejabberd;
let prosody: Prosody;
let push: PushDeps;
let registry: Registry;
let config: Config;
let appServer: Xep0357;
let standby: Xep0357 | undefined;
let dir: string;
const clients: Client[] = [];

const EJ = "ej.test";
const EJ_OPEN = "open.ej.test";
const PR = "pr.test";
const PR_OPEN = "open.pr.test";
const DOMAINS = [EJ, EJ_OPEN, PR, PR_OPEN];

/** The sum of a metric's values whose labels include `labels`. */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

const sendsTo = (token: string) =>
  fcm.sends().filter((s) => (s.message as { token?: string }).token === token);
const apnsTo = (token: string) => apns.requests.filter((r) => r.token === token);
/** An iPhone's device token: 32 bytes, in hex as apps hand it over. */
const apnsToken = () => randomBytes(32).toString("hex");

beforeAll(async () => {
  const why = ej.unavailable ?? pr.unavailable;
  if (why) throw new Error(`XEP-0357 end-to-end tests cannot run: ${why}`);
  dns = refuseDns();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-xep0357-"));
  db = await createTestDatabase();
  fcm = await startFakeFcm();
  const account = await fcm.addServiceAccount(path.join(dir, "chat-firebase.json"), "chat-push");
  const apnsKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const apnsKeyFile = path.join(dir, `AuthKey_${APNS_KEY_ID}.p8`);
  await writeFile(apnsKeyFile, apnsKey.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  apns = await startFakeApns({
    tokenKeys: [{ keyId: APNS_KEY_ID, teamId: APNS_TEAM_ID, publicKey: apnsKey.publicKey }],
  });
  const passwordFile = path.join(dir, "component.secret");
  await writeFile(passwordFile, `${SECRET}\n`, { mode: 0o600 });

  const domains = Object.fromEntries(
    [EJ, EJ_OPEN].map((d) => [
      d,
      { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
    ]),
  );
  const testJson = JSON.parse(await readFile(path.join(ROOT, "config/test.json"), "utf8"));
  const componentPort = await freePort();
  [ejabberd, prosody] = await Promise.all([
    startEjabberd({
      hosts: [EJ, EJ_OPEN],
      files: {
        "config/default.json": await readFile(path.join(ROOT, "config/default.json"), "utf8"),
        "config/test.json": JSON.stringify({ ...testJson, domains }),
      },
      extauthEnv: (d) => ({ APP_ENV: "test", DATABASE_URL: db.url, CONFIG_DIR: path.join(d, "config") }),
      // what docs/xmpp-clients.md tells operators, with the text and sender sent on purpose: the privacy mode
      // must drop them itself
      modules: "mod_stream_mgmt: {}\nmod_push:\n  include_body: true\n  include_sender: true\n",
      listen: `-
  port: ${componentPort}
  ip: "127.0.0.1"
  module: ejabberd_service
  global_routes: false
  hosts:
    "push.${EJ}":
      password: "${SECRET}"
    "push.${EJ_OPEN}":
      password: "${SECRET}"
`,
    }),
    startProsody({
      hosts: { [PR]: "", [PR_OPEN]: "" },
      components: { [`push.${PR}`]: SECRET, [`push.${PR_OPEN}`]: SECRET },
      modules: ["cloud_notify"],
      global: "push_notification_with_body = true\npush_notification_with_sender = true",
    }),
  ]);

  for (const d of [EJ, EJ_OPEN]) {
    for (const u of ["alice", "bob", "carol", "erin", "ivy", "gus"]) {
      await addUser(db.pool, { node: u, domain: d }, { cleartext: PASSWORD }, {
        authenticator: { kind: "web_users", options: {} },
        passwordFormat: "plain",
      } as Config["domains"][string]);
    }
  }
  for (const d of [PR, PR_OPEN]) {
    for (const u of ["alice", "bob", "carol", "dave", "ivy", "gus"]) await prosody.register(u, d, PASSWORD);
  }

  const xmppServer = (d: string) =>
    `xmpp://127.0.0.1:${d === EJ || d === EJ_OPEN ? componentPort : prosody.componentPort}`;
  config = loadConfig({
    env: { APP_ENV: "test", XEP0357_SECRET: SECRET },
    overrides: {
      domains,
      push: {
        apps: {
          Chat: {
            fcm: { serviceAccountFile: account.file },
            apns: {
              bundleId: BUNDLE_ID,
              production: true,
              keyFile: apnsKeyFile,
              keyId: APNS_KEY_ID,
              teamId: APNS_TEAM_ID,
            },
          },
        },
        xep0357: {
          checkMs: 200,
          domains: {
            // the password from the environment for ejabberd's domains, from a file for Prosody's
            [EJ]: { app: "Chat", server: xmppServer(EJ), password: { env: "XEP0357_SECRET" } },
            [EJ_OPEN]: {
              app: "Chat",
              server: xmppServer(EJ_OPEN),
              password: { env: "XEP0357_SECRET" },
              private: false,
            },
            [PR]: { app: "Chat", server: xmppServer(PR), password: { file: passwordFile } },
            [PR_OPEN]: {
              app: "Chat",
              server: xmppServer(PR_OPEN),
              password: { file: passwordFile },
              private: false,
            },
          },
        },
      },
    },
  });
  registry = new Registry();
  push = await createPushDeps(
    { config, log, pool: db.pool },
    {
      endpoints: {
        fcmAgent: fcm.agent(),
        apnsEndpoint: { address: "127.0.0.1", port: apns.port, ca: apns.ca },
      },
      workers: false,
      metrics: registry,
    },
  );
  appServer = startXep0357({ config, log, pool: db.pool, notifier: push.notifier, metrics: registry });
  await vi.waitFor(
    async () => {
      for (const d of DOMAINS) expect(await metric("xep0357_component_connected", { domain: d })).toBe(1);
    },
    { timeout: 30_000, interval: 100 },
  );
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    console.error(await ejabberd?.logs());
    console.error((await prosody?.logs())?.slice(-20_000));
  }
});

afterAll(async () => {
  for (const c of clients) await c.stop().catch(() => {});
  await standby?.stop();
  await appServer?.stop();
  await push?.close();
  await ejabberd?.stop();
  await prosody?.stop();
  await fcm?.close();
  await apns?.close();
  await db?.drop();
  dns?.restore();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const serverOf = (domain: string): Server =>
  domain.endsWith(EJ)
    ? { name: "ejabberd", port: ejabberd.tlsPort, ca: ejabberd.ca }
    : { name: "prosody", port: prosody.tlsPort, ca: prosody.ca };

/** Stanzas received since the server's `<enabled/>`: the `h` of XEP-0198 §4, counted here (see goAway). */
const received = new WeakMap<Client, { n: number }>();

/** A phone's XMPP client with stream management (XEP-0198) on and available, as Conversations keeps it. */
async function phone(domain: string, username: string): Promise<Client> {
  const s = serverOf(domain);
  const service = `xmpps://127.0.0.1:${s.port}`;
  const xmpp = trustingClient({
    service,
    ca: s.ca,
    domain,
    username,
    password: PASSWORD,
    resource: `phone-${randomBytes(3).toString("hex")}`,
  });
  ignoreDataAfterClose(xmpp);
  clients.push(xmpp);
  xmpp.on("error", () => {});
  const count = { n: 0 };
  received.set(xmpp, count);
  xmpp.on("nonza", (el: Element) => {
    if (el.is("enabled", NS_SM)) count.n = 0;
  });
  xmpp.on("stanza", () => {
    count.n++;
  });
  const online = new Promise<void>((resolve, reject) => {
    xmpp.once("online", () => resolve());
    xmpp.once("error", reject);
  });
  // not xmpp.start(): see login() in test/support/ejabberd.ts
  await xmpp.connect(service);
  xmpp.open({ domain }).catch(() => {});
  await online;
  await vi.waitFor(() => expect(xmpp.streamManagement.enabled).toBe(true), { timeout: 10_000 });
  // available: a chat to the bare JID comes to this session (not to offline storage)
  await xmpp.send(xml("presence"));
  return xmpp;
}

const formField = (name: string, value: string) => xml("field", { var: name }, xml("value", {}, value));

/**
 * Conversations' registration with the app server (p2's `register-push-fcm`; `register-push-apns` for an
 * iPhone, the same fields): its node and secret.
 */
async function registerDevice(
  xmpp: Client,
  component: string,
  token: string,
  deviceId: string,
  service: "fcm" | "apns" = "fcm",
): Promise<{ jid: string; node: string; secret: string }> {
  const result = await xmpp.iqCaller.request(
    xml(
      "iq",
      { type: "set", to: component },
      xml(
        "command",
        { xmlns: NS_COMMANDS, node: `register-push-${service}`, action: "execute" },
        xml(
          "x",
          { xmlns: NS_DATA, type: "submit" },
          formField("token", token),
          formField("device-id", deviceId),
        ),
      ),
    ),
  );
  const fields = result.getChild("command", NS_COMMANDS)?.getChild("x", NS_DATA)?.getChildren("field") ?? [];
  return Object.fromEntries(fields.map((f: Element) => [f.attrs.var, f.getChildText("value")])) as {
    jid: string;
    node: string;
    secret: string;
  };
}

/** XEP-0357 §5: tells the user's own server to publish to the app server. */
async function enablePush(xmpp: Client, jid: string, node: string, secret: string): Promise<void> {
  await xmpp.iqCaller.request(
    xml(
      "iq",
      { type: "set" },
      xml(
        "enable",
        { xmlns: NS_PUSH, jid, node },
        xml(
          "x",
          { xmlns: NS_DATA, type: "submit" },
          formField("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
          formField("secret", secret),
        ),
      ),
    ),
  );
}

/**
 * The phone goes to sleep: everything received acknowledged (so the server has nothing unacknowledged to push
 * for), then the socket cut without closing the stream. The server keeps the session and pushes instead.
 * The count is ours: xmpp.js 0.14 counts no iq result its iqCaller took (that middleware stops the chain
 * before stream management's), so its own `<a/>` would leave the register and enable answers unacknowledged.
 */
async function goAway(xmpp: Client): Promise<void> {
  // the self-presence the server echoes (RFC 6121 §4.2.2) arrives in its own time: the count settles first
  const count = received.get(xmpp) as { n: number };
  let last = -1;
  await vi.waitFor(
    () => {
      const settled = count.n === last;
      last = count.n;
      expect(settled).toBe(true);
    },
    { timeout: 5000, interval: 300 },
  );
  await xmpp.send(xml("a", { xmlns: NS_SM, h: String(count.n) }));
  (xmpp as unknown as { socket: { socket: { destroy(): void } } }).socket.socket.destroy();
}

/** `bob` writes to `to` from his own client. */
async function write(domain: string, to: string, body: string): Promise<void> {
  const s = serverOf(domain);
  const bob = await connectUser({ port: s.port, ca: s.ca, domain, username: "bob", password: PASSWORD });
  try {
    await bob.chat(to, body);
  } finally {
    // after the server took it: an iq round trip behind the message
    await bob.send(xml("iq", { type: "get", id: "ping-1" }, xml("ping", { xmlns: "urn:xmpp:ping" })));
    await bob.waitFor((st) => st.is("iq") && st.attrs.id === "ping-1");
    await bob.stop();
  }
}

/**
 * What the user's server made of our `cancel`/`item-not-found` for a gone device, from its log: ejabberd
 * disables that push at once, Prosody counts an error against it (and disables it at `push_max_errors`).
 */
async function toldGone(domain: string, user: string, node: string): Promise<void> {
  const jid = `${user}@${domain}`;
  await vi.waitFor(
    async () => {
      if (serverOf(domain).name === "ejabberd") {
        const said = `push.${domain} rejected notification for ${jid} (${node}), disabling push: `;
        const line = (await ejabberd.logs()).split("\n").find((l) => l.includes(said));
        expect(line).toMatch(/\(cancel\)\s*$/);
      } else {
        expect(await prosody.logs()).toContain(
          `Got error <cancel:item-not-found:the device is gone> for identifier 'push.${domain}<${node}': ` +
            "error count for this identifier is now at 1",
        );
      }
    },
    { timeout: 20_000, interval: 200 },
  );
}

/**
 * No second push: Prosody sends what a hibernated session queued after a 1 s timer, ejabberd at once; 2 s
 * more without a push is the behaviour asserted, not a wait for something.
 */
const quietWindow = () => new Promise((r) => setTimeout(r, 2000));

/** The path up to the push: register, enable, go away, and bob's message; its text and the device id. */
async function awayAndWritten(domain: string, user: string, service: "fcm" | "apns", token: string) {
  const xmpp = await phone(domain, user);
  const deviceId = randomBytes(8).toString("hex");
  const answer = await registerDevice(xmpp, `push.${domain}`, token, deviceId, service);
  expect(answer.jid).toBe(`push.${domain}`);
  await enablePush(xmpp, answer.jid, answer.node, answer.secret);
  await goAway(xmpp);
  const text = `meet me at the station ${randomBytes(3).toString("hex")}`;
  await write(domain, `${user}@${domain}`, text);
  return { text, deviceId };
}

/** The one push a fake got for a device: waited for, then none more during quietWindow. */
async function exactlyOne<T>(pushes: () => T[]): Promise<T> {
  await vi.waitFor(() => expect(pushes().length).toBeGreaterThan(0), { timeout: 30_000, interval: 100 });
  await quietWindow();
  const all = pushes();
  expect(all).toHaveLength(1);
  return all[0] as T;
}

/** The whole path once for an Android phone: the one FCM message it makes. */
async function pushOnce(domain: string, user: string) {
  const token = `fcm-${user}-${domain}-${randomBytes(4).toString("hex")}:APA91b${"x".repeat(100)}`;
  const { text, deviceId } = await awayAndWritten(domain, user, "fcm", token);
  const send = await exactlyOne(() => sendsTo(token));
  return { message: send.message as Record<string, unknown>, text, deviceId, token };
}

/** The whole path once for an iPhone: the one request the fake APNs got. */
async function apnsOnce(domain: string, user: string) {
  const token = apnsToken();
  const { text, deviceId } = await awayAndWritten(domain, user, "apns", token);
  return { request: await exactlyOne(() => apnsTo(token)), text, deviceId };
}

describe.each([
  { server: "ejabberd 23.01 (mod_push)", privateDomain: EJ, openDomain: EJ_OPEN },
  { server: "Prosody 0.12 (mod_cloud_notify)", privateDomain: PR, openDomain: PR_OPEN },
])("$server", ({ privateDomain, openDomain }) => {
  it("privacy mode (the default): one data-only push saying a message came, no text, no sender", async () => {
    const { message, text, deviceId } = await pushOnce(privateDomain, "alice");
    expect(message.data).toEqual({
      type: "xep0357",
      account: accountHash(`alice@${privateDomain}`, deviceId),
      message: "1",
      // ejabberd sends no count, Prosody always 1
      ...(privateDomain === PR ? { count: "1" } : {}),
    });
    // data-only: the system shows nothing, the app wakes and fetches (as Conversations expects)
    expect(message.notification).toBeUndefined();
    expect(message.android).toEqual({ priority: "high" });
    const json = JSON.stringify(message);
    expect(json).not.toContain(text);
    expect(json).not.toContain("bob");
  });

  it("privacy off: the push carries the sender and the text", async () => {
    const { message, text, deviceId } = await pushOnce(openDomain, "alice");
    expect(message.data).toMatchObject({
      type: "xep0357",
      account: accountHash(`alice@${openDomain}`, deviceId),
      message: "1",
      body: text,
    });
    expect(String((message.data as Record<string, string>).sender)).toMatch(new RegExp(`^bob@${openDomain}`));
  });

  it("an iPhone (register-push-apns), privacy mode: one alert saying a message came, no text, no sender", async () => {
    const { request, text, deviceId } = await apnsOnce(privateDomain, "ivy");
    // to the app's bundle, with its signing key: an alert, delivered at once
    expect(request.auth).toEqual({ kind: "token", keyId: APNS_KEY_ID, teamId: APNS_TEAM_ID });
    const { authorization, ...headers } = request.headers;
    expect(authorization).toMatch(/^bearer /);
    expect(headers).toEqual({ "apns-topic": BUNDLE_ID, "apns-push-type": "alert", "apns-priority": "10" });
    expect(request.body).toEqual({
      type: "xep0357",
      account: accountHash(`ivy@${privateDomain}`, deviceId),
      message: "1",
      // ejabberd sends no count, Prosody always 1
      ...(privateDomain === PR ? { count: "1" } : {}),
      // what the lock screen shows: the configured alertTitle alone, and the device's first badge
      aps: { alert: { title: "New message" }, badge: 1, sound: "default", "mutable-content": 1 },
    });
    // the JWT aside (random base64url), nothing Apple or the phone gets names the text or the sender
    const seen = JSON.stringify({ headers, body: request.body });
    expect(seen).not.toContain(text);
    expect(seen).not.toContain("bob");
  });

  it("an iPhone, privacy off: the alert shows the sender and the text", async () => {
    const { request, text, deviceId } = await apnsOnce(openDomain, "ivy");
    const bob = `bob@${openDomain}`;
    expect(request.headers).toMatchObject({
      "apns-topic": BUNDLE_ID,
      "apns-push-type": "alert",
      "apns-priority": "10",
    });
    const body = request.body as Record<string, unknown>;
    expect(body).toMatchObject({
      type: "xep0357",
      account: accountHash(`ivy@${openDomain}`, deviceId),
      message: "1",
      body: text,
    });
    // the data as the server sent it (its full JID, bob's client's resource included)
    expect(String(body.sender).split("/")[0]).toBe(bob);
    // the alert names the contact, and groups by it as the chat does, whichever of bob's clients wrote
    expect(body.aps).toEqual({
      alert: { title: bob, body: text },
      badge: 1,
      sound: "default",
      "thread-id": bob,
      "mutable-content": 1,
    });
  });

  it("a wrong publish secret is refused: the server's publish gets forbidden, nothing is pushed", async () => {
    const xmpp = await phone(privateDomain, "carol");
    const token = `fcm-carol-${privateDomain}-${randomBytes(4).toString("hex")}`;
    const answer = await registerDevice(xmpp, `push.${privateDomain}`, token, randomBytes(8).toString("hex"));
    const wrong = `${answer.secret.slice(0, -1)}${answer.secret.endsWith("A") ? "B" : "A"}`;
    await enablePush(xmpp, answer.jid, answer.node, wrong);
    await goAway(xmpp);
    const refused = await metric("xep0357_publishes_total", { domain: privateDomain, outcome: "forbidden" });
    await write(privateDomain, `carol@${privateDomain}`, "you will not see this");
    await vi.waitFor(
      async () =>
        expect(
          await metric("xep0357_publishes_total", { domain: privateDomain, outcome: "forbidden" }),
        ).toBeGreaterThan(refused),
      { timeout: 20_000, interval: 100 },
    );
    expect(sendsTo(token)).toEqual([]);
  });
});

describe("dead tokens and several processes", () => {
  it("a token FCM no longer knows is forgotten, and the server told the node is gone", async () => {
    const xmpp = await phone(EJ, "erin");
    const token = `fcm-erin-${randomBytes(4).toString("hex")}`;
    fcm.script(token, fcmAnswers.unregistered());
    const answer = await registerDevice(xmpp, `push.${EJ}`, token, randomBytes(8).toString("hex"));
    await enablePush(xmpp, answer.jid, answer.node, answer.secret);
    expect(await tokensOf(db.pool, { domain: EJ, node: "erin" })).toHaveLength(1);
    await goAway(xmpp);
    const dead = await metric("xep0357_publishes_total", { domain: EJ, outcome: "dead_token" });
    await write(EJ, `erin@${EJ}`, "are you there?");
    await vi.waitFor(
      async () =>
        expect(await metric("xep0357_publishes_total", { domain: EJ, outcome: "dead_token" })).toBe(dead + 1),
      { timeout: 20_000, interval: 100 },
    );
    expect(sendsTo(token)).toHaveLength(1);
    expect(await tokensOf(db.pool, { domain: EJ, node: "erin" })).toEqual([]);
    expect(await metric("push_sends_total", { provider: "fcm", outcome: "dead_token" })).toBeGreaterThan(0);
    await toldGone(EJ, "erin", answer.node);
  });

  it.each([
    { server: "ejabberd", domain: EJ },
    { server: "Prosody", domain: PR },
  ])(
    "$server: an APNs token answered 410 Unregistered is forgotten, and the server told the device is gone",
    async ({ domain }) => {
      const xmpp = await phone(domain, "gus");
      const token = apnsToken();
      apns.script(token, { status: 410, reason: "Unregistered" });
      const answer = await registerDevice(
        xmpp,
        `push.${domain}`,
        token,
        randomBytes(8).toString("hex"),
        "apns",
      );
      await enablePush(xmpp, answer.jid, answer.node, answer.secret);
      expect(await tokensOf(db.pool, { domain, node: "gus" })).toMatchObject([{ service: "apns", token }]);
      await goAway(xmpp);
      const dead = await metric("xep0357_publishes_total", { domain, outcome: "dead_token" });
      await write(domain, `gus@${domain}`, "are you there?");
      await vi.waitFor(
        async () =>
          expect(await metric("xep0357_publishes_total", { domain, outcome: "dead_token" })).toBe(dead + 1),
        { timeout: 30_000, interval: 100 },
      );
      expect(apnsTo(token)).toHaveLength(1);
      expect(await tokensOf(db.pool, { domain, node: "gus" })).toEqual([]);
      expect(
        await metric("push_sends_total", { provider: "apns", outcome: "dead_token", reason: "Unregistered" }),
      ).toBeGreaterThan(0);
      await toldGone(domain, "gus", answer.node);
      if (domain === EJ) {
        // and ejabberd, having disabled it, publishes nothing for the next message
        const published = await metric("xep0357_publishes_total", { domain });
        await write(domain, `gus@${domain}`, "hello?");
        await quietWindow();
        expect(await metric("xep0357_publishes_total", { domain })).toBe(published);
        expect(apnsTo(token)).toHaveLength(1);
      }
    },
  );

  it("another process holds nothing while the first runs, and takes every component when it stops", async () => {
    standby = startXep0357({ config, log, pool: db.pool, notifier: push.notifier, metrics: registry });
    // ten of its tries later (checkMs 200), still nothing: the locks are the first one's
    await vi.waitFor(
      async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted",
        );
        expect(rows[0]?.n).toBe(DOMAINS.length);
      },
      { timeout: 10_000 },
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(standby.held()).toEqual([]);
    expect(appServer.held()).toHaveLength(DOMAINS.length);

    await appServer.stop();
    await vi.waitFor(
      async () => {
        expect(standby?.held()).toHaveLength(DOMAINS.length);
        for (const d of DOMAINS) expect(await metric("xep0357_component_connected", { domain: d })).toBe(1);
      },
      { timeout: 20_000, interval: 100 },
    );
    // and it serves: the whole path through the process that took over
    const { message, deviceId } = await pushOnce(PR, "dave");
    expect(message.data).toMatchObject({ account: accountHash(`dave@${PR}`, deviceId), message: "1" });
  });
});

/**
 * docs/xmpp-clients.md "Configuration" as an operator copies it: its secret command, its ejabberd.yml and
 * prosody.cfg.lua lines and its JSON, changed only in paths, ports and the secret's placeholder, with the real
 * http-utility process (services/http-utility/src/main.ts) connecting its component to each server in turn.
 */
describe("docs/xmpp-clients.md's configuration, as written", () => {
  it("connects a real http-utility's component to ejabberd and to Prosody", async () => {
    const doc = await readFile(path.join(ROOT, "docs/xmpp-clients.md"), "utf8");
    const section = doc.slice(doc.indexOf("### Configuration"), doc.indexOf("### Checking it"));
    const block = (lang: string) => {
      const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(section);
      if (!m?.[1]) throw new Error(`docs/xmpp-clients.md: no ${lang} block under "Configuration"`);
      return m[1];
    };
    const docsDir = await mkdtemp(path.join(tmpdir(), "sidecars-xep0357-docs-"));
    const here = (text: string) => text.replaceAll("/etc/xmpp-sidecars/", `${docsDir}/`);
    // the secret made by the docs' own lines (the ones that write it)
    const make = here(block("sh"))
      .split("\n")
      .filter((l) => /^(umask|head) /.test(l))
      .join("\n");
    await promisify(execFile)("sh", ["-c", make]);
    const secret = (await readFile(path.join(docsDir, "xep0357-example.com.secret"), "utf8")).trim();
    expect(secret).toMatch(/^[A-Za-z0-9]{20,}$/);
    const fill = (text: string, port: number) =>
      text
        .replaceAll("THE-SECRET-OF-/etc/xmpp-sidecars/xep0357-example.com.secret", secret)
        .replaceAll("5347", String(port));

    const ejPort = await freePort();
    const yml = YAML.parse(fill(block("yaml"), ejPort)) as { listen: unknown[]; modules: unknown };
    const lua = block("lua");
    const cut = lua.indexOf("-- after the VirtualHost");
    const [docsEjabberd, docsProsody] = await Promise.all([
      startEjabberd({
        hosts: ["example.com"],
        extauthEnv: () => ({}),
        listen: YAML.stringify(yml.listen),
        modules: YAML.stringify(yml.modules),
      }),
      startProsody({
        hosts: { "example.com": "" },
        global: ({ componentPort }) => fill(lua.slice(0, cut), componentPort),
        tail: fill(lua.slice(cut), 0),
      }),
    ]);
    await writeServiceAccount(path.join(docsDir, "oyochat-firebase.json"), "oyochat");
    const ours = JSON.parse(here(block("json"))) as {
      push: { xep0357: { domains: Record<string, object> } };
    };
    const entry = ours.push.xep0357.domains["example.com"];

    /** http-utility as main.ts runs it, the docs' push section pointed at `server`: its metrics once connected. */
    const serve = async (server: string): Promise<{ metrics: string; stdout: string }> => {
      const configDir = testConfigDir((t) => {
        t.push = { ...ours.push, xep0357: { domains: { "example.com": { ...entry, server } } } };
        t.log = { level: "info", pretty: false };
      });
      const port = await freePort();
      let child: ChildProcess | undefined;
      const exited = runService(
        "http-utility",
        {
          DATABASE_URL: db.url,
          CONFIG_DIR: configDir,
          HTTP_UTILITY_PORT: String(port),
          HTTP_UTILITY_INTERNAL_PORT: String(await freePort()),
        },
        (c) => {
          child = c;
        },
      );
      let metrics = "";
      try {
        await waitForOk(`http://127.0.0.1:${port}/readyz`);
        await vi.waitFor(
          async () => {
            metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
            expect(metrics).toMatch(/^xep0357_component_connected\{domain="example.com"[^}]*\} 1$/m);
          },
          { timeout: 30_000, interval: 200 },
        );
      } finally {
        child?.kill("SIGTERM");
      }
      const out = await exited;
      await rm(configDir, { recursive: true, force: true });
      expect(out.code, out.stderr).toBe(0);
      return { metrics, stdout: out.stdout };
    };

    try {
      const viaEjabberd = await serve(`xmpp://127.0.0.1:${ejPort}`);
      // the docs' `grep` finds the process holding it
      expect(viaEjabberd.stdout).toMatch(/"component":"push.example.com".*holds the XEP-0357 component/);
      await serve(`xmpp://127.0.0.1:${docsProsody.componentPort}`);
    } finally {
      await docsEjabberd.stop();
      await docsProsody.stop();
      await rm(docsDir, { recursive: true, force: true });
    }
  });
});
