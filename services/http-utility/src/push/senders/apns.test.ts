import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Secrets } from "#common/config/secrets.ts";
import { makeCertificate } from "../../../../../test/support/certificates.ts";
import {
  type FakeApns,
  makeEcClientCertificate,
  startFakeApns,
} from "../../../../../test/support/fake-apns.ts";
import { freePort } from "../../../../../test/support/free-port.ts";
import { type ApnsOptions, type ApnsSenderDeps, createApnsSender } from "./apns.ts";
import type { PushSender } from "./sender.ts";

const BUNDLE = "com.example.chat";
const KEY_ID = "ABC123DEFG";
const TEAM_ID = "TEAM456XYZ";
const log = pino({ level: "silent" });

/** a 64-hex-digit device token, distinct per n */
const deviceToken = (n: number) => n.toString(16).padStart(64, "0");

let dir: string;
let keyFile: string;
let fake: FakeApns;
let tokenKeys: { keyId: string; teamId: string; publicKey: KeyObject }[];
const senders: PushSender[] = [];

function p8(): { pem: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicKey };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-apns-"));
  const key = p8();
  keyFile = path.join(dir, "AuthKey.p8");
  await writeFile(keyFile, key.pem);
  tokenKeys = [{ keyId: KEY_ID, teamId: TEAM_ID, publicKey: key.publicKey }];
  fake = await startFakeApns({ tokenKeys });
});

afterAll(async () => {
  await fake?.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fake.requests.length = 0;
});

afterEach(async () => {
  await Promise.all(senders.splice(0).map((s) => s.close()));
});

function sender(
  options: Partial<ApnsOptions> = {},
  deps: Partial<ApnsSenderDeps> = {},
  to: { port: number; ca: string } = fake,
): PushSender {
  const s = createApnsSender(
    { bundleId: BUNDLE, production: true, keyFile, keyId: KEY_ID, teamId: TEAM_ID, ...options },
    {
      app: "OyoChat",
      log,
      service: "apns",
      endpoint: { address: "127.0.0.1", port: to.port, ca: to.ca },
      ...deps,
    },
  );
  senders.push(s);
  return s;
}

const only = () => {
  expect(fake.requests).toHaveLength(1);
  return fake.requests[0] as (typeof fake.requests)[number];
};

describe("APNs requests", () => {
  it("sends an alert with every field as headers and payload, authenticated by a JWT", async () => {
    const before = Math.floor(Date.now() / 1000);
    const outcome = await sender().send(deviceToken(1), {
      title: "Alice",
      body: "Hello",
      badge: 3,
      sound: "ping.caf",
      threadId: "room-1",
      collapseKey: "chat-1",
      ttlSeconds: 3600,
      mutableContent: true,
      category: "MESSAGE",
      priority: "high",
      data: { from: "alice@example.com", kind: "chat" },
    });
    const after = Math.floor(Date.now() / 1000);

    expect(outcome).toEqual({ status: "sent", id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const request = only();
    expect(request.token).toBe(deviceToken(1));
    expect(request.method).toBe("POST");
    expect(request.auth).toEqual({ kind: "token", keyId: KEY_ID, teamId: TEAM_ID });
    expect(request.headers).toMatchObject({
      "apns-topic": BUNDLE,
      "apns-push-type": "alert",
      "apns-priority": "10",
      "apns-collapse-id": "chat-1",
    });
    const expiration = Number(request.headers["apns-expiration"]);
    expect(expiration).toBeGreaterThanOrEqual(before + 3600);
    expect(expiration).toBeLessThanOrEqual(after + 3600);
    expect(request.body).toEqual({
      from: "alice@example.com",
      kind: "chat",
      aps: {
        alert: { title: "Alice", body: "Hello" },
        badge: 3,
        sound: "ping.caf",
        "thread-id": "room-1",
        "mutable-content": 1,
        category: "MESSAGE",
      },
    });
  });

  it("maps normal priority to 5, leaves out what is not given, and takes the message's topic", async () => {
    const s = sender();
    await s.send(deviceToken(2), { body: "only a body", priority: "normal", topic: "com.example.other" });
    const request = only();
    expect(request.headers).toMatchObject({
      "apns-topic": "com.example.other",
      "apns-push-type": "alert",
      "apns-priority": "5",
    });
    expect(request.headers).not.toHaveProperty("apns-expiration");
    expect(request.headers).not.toHaveProperty("apns-collapse-id");
    expect(request.body).toEqual({ aps: { alert: { body: "only a body" } } });
  });

  it("sends ttlSeconds 0 as apns-expiration 0 (deliver now or never) and defaults to priority 10", async () => {
    await sender().send(deviceToken(3), { title: "now or never", ttlSeconds: 0 });
    expect(only().headers).toMatchObject({ "apns-expiration": "0", "apns-priority": "10" });
  });

  it("sends a silent message as a background push: priority 5, content-available and the badge in aps", async () => {
    await sender().send(deviceToken(4), {
      silent: true,
      title: "ignored",
      body: "ignored",
      badge: 1,
      sound: "ignored.caf",
      mutableContent: true,
      priority: "high",
      data: { sync: "inbox" },
    });
    const request = only();
    expect(request.headers).toMatchObject({
      "apns-topic": BUNDLE,
      "apns-push-type": "background",
      "apns-priority": "5",
    });
    expect(request.body).toEqual({ sync: "inbox", aps: { "content-available": 1, badge: 1 } });
  });

  it("sends apns-voip as a voip push to <bundleId>.voip", async () => {
    const outcome = await sender({}, { service: "apns-voip" }).send(deviceToken(5), {
      title: "Incoming call",
      data: { call: "c-42" },
    });
    expect(outcome.status).toBe("sent");
    const request = only();
    expect(request.headers).toMatchObject({
      "apns-topic": `${BUNDLE}.voip`,
      "apns-push-type": "voip",
      "apns-priority": "10",
    });
    expect(request.body).toEqual({ call: "c-42", aps: { alert: { title: "Incoming call" } } });
  });

  it("refuses a token that is not hex without a request", async () => {
    const outcome = await sender().send("../../1/apps/x", { body: "x" });
    expect(outcome).toEqual({ status: "dead_token", reason: "BadDeviceToken" });
    expect(fake.requests).toHaveLength(0);
  });
});

/** close() must not wait on a connection that was lost (apns.ts): it returns at once */
async function closesPromptly(s: PushSender) {
  const started = Date.now();
  await s.close();
  expect(Date.now() - started).toBeLessThan(1000);
}

describe("APNs connections", () => {
  it("reuses one HTTP/2 connection for many sends, one after another and at once", async () => {
    const s = sender();
    const connectionsBefore = fake.connections();
    for (let i = 0; i < 5; i++) await s.send(deviceToken(100 + i), { body: `one ${i}` });
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.send(deviceToken(200 + i), { body: `many ${i}` })),
    );
    expect(outcomes.every((o) => o.status === "sent")).toBe(true);
    expect(fake.requests).toHaveLength(25);
    expect(fake.connections() - connectionsBefore).toBe(1);
    expect(new Set(fake.requests.map((r) => r.connection)).size).toBe(1);
  });

  it("sends a sandbox message through its own provider, and production ones through theirs", async () => {
    const s = sender({ production: true });
    const connectionsBefore = fake.connections();
    await s.send(deviceToken(300), { body: "production" });
    await s.send(deviceToken(301), { body: "sandbox", sandbox: true });
    await s.send(deviceToken(302), { body: "production again" });
    await s.send(deviceToken(303), { body: "sandbox again", sandbox: true });
    expect(fake.connections() - connectionsBefore).toBe(2);
    const [prod, sandbox, prodAgain, sandboxAgain] = fake.requests.map((r) => r.connection);
    expect(prod).toBe(prodAgain);
    expect(sandbox).toBe(sandboxAgain);
    expect(sandbox).not.toBe(prod);
  });

  it("answers retry while APNs cannot be reached, and reconnects when it is back", async () => {
    const down = await freePort();
    const unreachable = sender({}, {}, { port: down, ca: fake.ca });
    const nobody = await unreachable.send(deviceToken(400), { body: "x" });
    expect(nobody).toEqual({ status: "retry", reason: expect.stringMatching(/ECONNREFUSED/) });
    await closesPromptly(unreachable);

    const certificate = await makeCertificate("localhost");
    const other = await startFakeApns({ tokenKeys, certificate });
    const port = other.port;
    const s = sender({}, {}, other);
    expect((await s.send(deviceToken(401), { body: "x" })).status).toBe("sent");
    await other.close();
    expect(await s.send(deviceToken(402), { body: "x" })).toEqual({
      status: "retry",
      reason: expect.stringMatching(/ECONNREFUSED/),
    });
    // back at the same place: a new connection, not the session the fake dropped
    const again = await startFakeApns({ port, tokenKeys, certificate });
    try {
      expect((await s.send(deviceToken(403), { body: "x" })).status).toBe("sent");
      expect(again.connections()).toBe(1);
    } finally {
      await again.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // the client sees its connection closed
    await closesPromptly(s);
  });

  it("close() shuts the providers down; a send after it is a bug", async () => {
    const s = createApnsSender(
      { bundleId: BUNDLE, production: true, keyFile, keyId: KEY_ID, teamId: TEAM_ID },
      {
        app: "OyoChat",
        log,
        service: "apns",
        endpoint: { address: "127.0.0.1", port: fake.port, ca: fake.ca },
      },
    );
    await s.send(deviceToken(500), { body: "x" });
    await s.send(deviceToken(501), { body: "x", sandbox: true });
    await s.close();
    await expect(s.send(deviceToken(502), { body: "x" })).rejects.toThrow(/closed/);
  });
});

describe("APNs answers", () => {
  it.each([
    [410, "Unregistered", { status: "dead_token", reason: "Unregistered" }],
    [410, "ExpiredToken", { status: "dead_token", reason: "ExpiredToken" }],
    [400, "BadDeviceToken", { status: "dead_token", reason: "BadDeviceToken" }],
    [400, "DeviceTokenNotForTopic", { status: "dead_token", reason: "DeviceTokenNotForTopic" }],
    [429, "TooManyRequests", { status: "retry", reason: "TooManyRequests" }],
    [429, "TooManyProviderTokenUpdates", { status: "retry", reason: "TooManyProviderTokenUpdates" }],
    [503, "ServiceUnavailable", { status: "retry", reason: "ServiceUnavailable" }],
    [503, "Shutdown", { status: "retry", reason: "Shutdown" }],
    [500, "InternalServerError", { status: "retry", reason: "InternalServerError" }],
    [413, "PayloadTooLarge", { status: "failed", reason: "PayloadTooLarge" }],
    [400, "BadTopic", { status: "failed", reason: "BadTopic" }],
    [403, "InvalidProviderToken", { status: "failed", reason: "InvalidProviderToken" }],
    // the sender signs a new provider token on this answer (apns-credentials.ts): the orchestrator's next try carries it
    [403, "ExpiredProviderToken", { status: "retry", reason: "ExpiredProviderToken" }],
  ])("%i %s", async (status, reason, expected) => {
    const token = deviceToken(600 + status);
    fake.script(token, { status, reason });
    const outcome = await sender().send(token, { body: "x" });
    expect(outcome).toEqual(expected);
    // the sender does not retry by itself: the orchestrator retries, with its backoff
    expect(fake.requests).toHaveLength(1);
  });

  it("gives no afterMs: APNs sends no Retry-After worth passing on", async () => {
    const token = deviceToken(700);
    fake.script(token, { status: 429, reason: "TooManyRequests", headers: { "retry-after": "7" } });
    expect(await sender().send(token, { body: "x" })).toEqual({ status: "retry", reason: "TooManyRequests" });
  });

  it("fails when APNs does not know the signing key", async () => {
    const stranger = path.join(dir, "stranger.p8");
    await writeFile(stranger, p8().pem);
    const outcome = await sender({ keyFile: stranger }).send(deviceToken(701), { body: "x" });
    expect(outcome).toEqual({ status: "failed", reason: "InvalidProviderToken" });
    expect(fake.requests).toHaveLength(0);
  });

  it("logs what happened without the whole device token or any key", async () => {
    const lines: string[] = [];
    const capture = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
    const dead = deviceToken(702);
    const busy = deviceToken(703);
    fake.script(dead, { status: 410, reason: "Unregistered" });
    fake.script(busy, { status: 503, reason: "ServiceUnavailable" });
    const s = sender({}, { log: capture });
    await s.send(dead, { body: "x" });
    await s.send(busy, { body: "x" });
    await s.send(deviceToken(704), { body: "x" });
    expect(lines).toHaveLength(3);
    const all = lines.join("\n");
    expect(all).toContain("Unregistered");
    expect(all).toContain(dead.slice(-6));
    for (const secret of [dead, busy, deviceToken(704), "PRIVATE KEY", "bearer"]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe("APNs credentials", () => {
  it("authenticates with a client certificate when configured for certificates", async () => {
    const client = await makeEcClientCertificate();
    const certFile = path.join(dir, "client.crt");
    const certKeyFile = path.join(dir, "client.key");
    await writeFile(certFile, client.cert);
    await writeFile(certKeyFile, client.key);
    const certFake = await startFakeApns({ clientCertificates: [client.cert] });
    try {
      const s = createApnsSender(
        { bundleId: BUNDLE, production: false, certFile, certKeyFile },
        { app: "OyoChat", log, service: "apns", endpoint: { address: "localhost", ...certFake } },
      );
      senders.push(s);
      expect(await s.send(deviceToken(800), { body: "x" })).toMatchObject({ status: "sent" });
      const [request] = certFake.requests;
      expect(request?.auth).toMatchObject({ kind: "certificate" });
      expect(request?.headers).not.toHaveProperty("authorization");
      expect(request?.authority).toBe("localhost");
    } finally {
      await Promise.all(senders.splice(0).map((s) => s.close()));
      await certFake.close();
    }
  });

  it("stops at startup on credentials that cannot work", async () => {
    const endpoint = { address: "127.0.0.1", port: fake.port, ca: fake.ca };
    const deps = { app: "OyoChat", log, service: "apns" as const, endpoint };
    const token = { bundleId: BUNDLE, production: true, keyId: KEY_ID, teamId: TEAM_ID };

    expect(() => createApnsSender({ ...token, keyFile: path.join(dir, "missing.p8") }, deps)).toThrow(
      /push\.apps\.OyoChat\.apns\.keyFile: cannot read .*missing\.p8 \(ENOENT\)/,
    );

    // an RSA key cannot sign ES256
    const rsa = path.join(dir, "rsa.p8");
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(rsa, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
    expect(() => createApnsSender({ ...token, keyFile: rsa }, deps)).toThrow(/token/i);

    // an RSA certificate is checked for Apple's sandbox/production extensions (apns-credentials.ts)
    const selfSigned = await makeCertificate("localhost");
    const certFile = path.join(dir, "plain.crt");
    const certKeyFile = path.join(dir, "plain.key");
    await writeFile(certFile, selfSigned.cert);
    await writeFile(certKeyFile, selfSigned.key);
    expect(() =>
      createApnsSender({ bundleId: BUNDLE, production: false, certFile, certKeyFile }, deps),
    ).toThrow(/does not support configured environment/);

    expect(() =>
      createApnsSender(
        { bundleId: BUNDLE, production: true, certFile, certKeyFile, passphraseEnv: "APNS_PASS" },
        {
          ...deps,
          secrets: new Secrets({}),
        },
      ),
    ).toThrow(/passphraseEnv: APNS_PASS is not set/);
  });
});
