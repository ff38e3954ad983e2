import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeFcm,
  FCM_HOST,
  fcmAnswers,
  OAUTH_HOST,
  refuseDns,
  type ServiceAccountFile,
  startFakeFcm,
  writeServiceAccount,
} from "../../../../../test/support/fake-fcm.ts";
import { createFcmSender } from "./fcm.ts";
import { retryAfterMs } from "./fcm-message.ts";
import type { PushSender } from "./sender.ts";

/**
 * The FCM sender (node:https, google-auth-library's JWT grant) against a local FCM and Google token endpoint
 * (test/support/fake-fcm.ts), reached through the sender's httpAgent; every other name lookup fails the test.
 * Checked: the exact v1 JSON FCM receives for Android and iOS, the OAuth JWT grant made once and its token
 * reused, one grant per key file, and each FCM error as the outcome the orchestrator acts on.
 */

const PROJECT = "oyo-chat";
const TOKEN = `dT0kEn:APA91b${"x".repeat(140)}`;
const lines: string[] = [];
const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });

let dns: ReturnType<typeof refuseDns>;
let fake: FakeFcm;
let dir: string;
let account: ServiceAccountFile;
let sender: PushSender;
const senders: PushSender[] = [];

function newSender(file: string, projectId?: string, agentOf: FakeFcm = fake): PushSender {
  const s = createFcmSender(
    { serviceAccountFile: file, ...(projectId ? { projectId } : {}) },
    { app: "OyoChat", log, httpAgent: agentOf.agent() },
  );
  senders.push(s);
  return s;
}

const tokenRequests = (f: FakeFcm, clientEmail: string) =>
  f.requests.filter((r) => {
    if (r.host !== OAUTH_HOST) return false;
    const jwt = String((r.body as { assertion?: string }).assertion).split(".")[1] ?? "";
    return (JSON.parse(Buffer.from(jwt, "base64url").toString()) as { iss: string }).iss === clientEmail;
  });

beforeAll(async () => {
  dns = refuseDns();
  fake = await startFakeFcm();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-fcm-"));
  account = await fake.addServiceAccount(path.join(dir, "oyo-chat.json"), PROJECT);
  sender = newSender(account.file);
});

afterAll(async () => {
  for (const s of senders) await s.close();
  await fake?.close();
  dns?.restore();
  await rm(dir, { recursive: true, force: true });
});

describe("the message FCM receives", () => {
  it("a notification: title and body, data, the Android block and the APNs headers and aps", async () => {
    const before = Math.floor(Date.now() / 1000);
    const outcome = await sender.send(TOKEN, {
      title: "Maria",
      body: "Are you coming?",
      data: { type: "chat", sender: "maria@oyo.chat" },
      badge: 3,
      sound: "ping.caf",
      collapseKey: "chat-maria",
      threadId: "maria@oyo.chat",
      ttlSeconds: 3600,
      priority: "high",
      mutableContent: true,
      category: "MESSAGE",
    });
    const after = Math.floor(Date.now() / 1000);

    expect(outcome).toEqual({
      status: "sent",
      id: expect.stringMatching(/^projects\/oyo-chat\/messages\/0:\d+$/),
    });
    const request = fake.requests.at(-1);
    expect(request).toMatchObject({
      host: FCM_HOST,
      servername: FCM_HOST,
      method: "POST",
      path: `/v1/projects/${PROJECT}/messages:send`,
      status: 200,
    });
    expect(request?.headers.authorization).toBe(`Bearer ${fake.issued[0]}`);
    const { message } = fake.sends().at(-1) ?? { message: {} };
    const apnsHeaders = (message.apns as { headers: Record<string, string> }).headers;
    const expiration = Number(apnsHeaders["apns-expiration"]);
    expect(expiration).toBeGreaterThanOrEqual(before + 3600);
    expect(expiration).toBeLessThanOrEqual(after + 3600);
    expect(message).toEqual({
      token: TOKEN,
      notification: { title: "Maria", body: "Are you coming?" },
      data: { type: "chat", sender: "maria@oyo.chat" },
      android: {
        priority: "high",
        ttl: "3600s",
        collapse_key: "chat-maria",
        notification: {
          sound: "ping.caf",
          tag: "maria@oyo.chat",
          click_action: "MESSAGE",
          notification_count: 3,
        },
      },
      apns: {
        headers: {
          "apns-push-type": "alert",
          "apns-priority": "10",
          "apns-collapse-id": "chat-maria",
          "apns-expiration": String(expiration),
        },
        payload: {
          aps: {
            badge: 3,
            sound: "ping.caf",
            "thread-id": "maria@oyo.chat",
            "mutable-content": 1,
            category: "MESSAGE",
          },
        },
      },
    });
  });

  it("a silent message: data only on Android; content-available, background, priority 5 on iOS", async () => {
    expect(
      await sender.send(TOKEN, { silent: true, data: { sync: "inbox" }, badge: 0, title: "ignored" }),
    ).toEqual({
      status: "sent",
      id: expect.any(String),
    });
    expect(fake.sends().at(-1)).toEqual({
      message: {
        token: TOKEN,
        data: { sync: "inbox" },
        apns: {
          headers: { "apns-push-type": "background", "apns-priority": "5" },
          payload: { aps: { "content-available": 1, badge: 0 } },
        },
      },
    });
  });

  it("normal priority, a TTL of 0 (now or never), nothing else", async () => {
    await sender.send(TOKEN, { body: "ping", priority: "normal", ttlSeconds: 0 });
    expect(fake.sends().at(-1)).toEqual({
      message: {
        token: TOKEN,
        notification: { body: "ping" },
        android: { priority: "normal", ttl: "0s" },
        apns: {
          headers: { "apns-push-type": "alert", "apns-priority": "5", "apns-expiration": "0" },
          payload: { aps: {} },
        },
      },
    });
  });
});

describe("OAuth 2.0 and apps", () => {
  it("fetches one access token with a JWT signed by the key (verified by the fake), then reuses it", async () => {
    for (let i = 0; i < 3; i++) await sender.send(TOKEN, { body: `n${i}` });
    const grants = tokenRequests(fake, account.clientEmail);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({
      servername: OAUTH_HOST,
      path: "/token",
      status: 200,
      body: { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion: expect.any(String) },
    });
    const bearers = new Set(
      fake.requests.filter((r) => r.host === FCM_HOST).map((r) => r.headers.authorization),
    );
    expect(bearers).toEqual(new Set([`Bearer ${fake.issued[0]}`]));
  });

  it("sends to the configured projectId rather than the key's project_id", async () => {
    const other = newSender(account.file, "oyo-chat-staging");
    expect(await other.send(TOKEN, { body: "hi" })).toMatchObject({ status: "sent" });
    expect(fake.requests.at(-1)?.path).toBe("/v1/projects/oyo-chat-staging/messages:send");
    await other.close();
  });

  it("shares one access token between the senders of one key file, closing one leaves the others", async () => {
    const shared = await fake.addServiceAccount(path.join(dir, "shared.json"), "shared-project");
    const first = newSender(shared.file);
    const second = newSender(shared.file);
    expect(await first.send(TOKEN, { body: "1" })).toMatchObject({ status: "sent" });
    expect(await second.send(TOKEN, { body: "2" })).toMatchObject({ status: "sent" });
    expect(tokenRequests(fake, shared.clientEmail)).toHaveLength(1);

    await first.close();
    await first.close(); // twice is once
    await expect(first.send(TOKEN, { body: "x" })).rejects.toThrow(/closed/);
    expect(await second.send(TOKEN, { body: "3" })).toMatchObject({ status: "sent" });
    await second.close();
    expect(tokenRequests(fake, shared.clientEmail)).toHaveLength(1);

    // the last sender of a key file closed: a new one asks for its own token
    const third = newSender(shared.file);
    expect(await third.send(TOKEN, { body: "4" })).toMatchObject({ status: "sent" });
    expect(tokenRequests(fake, shared.clientEmail)).toHaveLength(2);
    await third.close();
  });

  it("refuses a key file it cannot use at construction", async () => {
    const make = (file: string) => () =>
      createFcmSender({ serviceAccountFile: file }, { app: "OyoChat", log, httpAgent: fake.agent() });
    expect(make(path.join(dir, "missing.json"))).toThrow(/cannot read .*missing\.json \(ENOENT\)/);
    await writeFile(path.join(dir, "garbage.json"), "not json");
    expect(make(path.join(dir, "garbage.json"))).toThrow(/is not a service-account JSON key/);
    await writeFile(path.join(dir, "no-project.json"), JSON.stringify({ type: "service_account" }));
    expect(make(path.join(dir, "no-project.json"))).toThrow(/no projectId and no project_id/);
    await writeFile(path.join(dir, "no-key.json"), JSON.stringify({ project_id: "p", client_email: "a@b" }));
    expect(make(path.join(dir, "no-key.json"))).toThrow(/private_key/);
  });
});

describe("FCM's answers as outcomes", () => {
  const cases: Array<[string, () => ReturnType<(typeof fcmAnswers)[keyof typeof fcmAnswers]>, unknown]> = [
    ["404 UNREGISTERED", fcmAnswers.unregistered, { status: "dead_token", reason: "UNREGISTERED" }],
    [
      "400 INVALID_ARGUMENT on message.token",
      fcmAnswers.invalidToken,
      { status: "dead_token", reason: "INVALID_REGISTRATION_TOKEN" },
    ],
    [
      "403 SENDER_ID_MISMATCH",
      fcmAnswers.senderIdMismatch,
      { status: "dead_token", reason: "SENDER_ID_MISMATCH" },
    ],
    [
      "403 PERMISSION_DENIED (our key's IAM, not the token)",
      fcmAnswers.permissionDenied,
      { status: "failed", reason: expect.stringMatching(/^PERMISSION_DENIED: Permission 'cloudmessaging/) },
    ],
    [
      "400 INVALID_ARGUMENT on another field",
      fcmAnswers.invalidArgument,
      { status: "failed", reason: "INVALID_ARGUMENT: Invalid value at 'message.android.ttl'" },
    ],
    [
      "429 QUOTA_EXCEEDED with Retry-After",
      () => fcmAnswers.quotaExceeded(30),
      { status: "retry", reason: "QUOTA_EXCEEDED", afterMs: 30_000 },
    ],
    [
      "429 QUOTA_EXCEEDED without Retry-After",
      () => fcmAnswers.quotaExceeded(),
      { status: "retry", reason: "QUOTA_EXCEEDED" },
    ],
    [
      "503 UNAVAILABLE with a Retry-After beyond the sender's own retries (60 s)",
      () => fcmAnswers.unavailable(120),
      { status: "retry", reason: "UNAVAILABLE", afterMs: 120_000 },
    ],
    ["500 INTERNAL", fcmAnswers.internal, { status: "retry", reason: "INTERNAL" }],
  ];

  it.each(cases)("%s", async (_name, answer, outcome) => {
    const token = `${TOKEN}-${Math.random()}`;
    fake.script(token, answer());
    const sendsBefore = fake.sends().length;
    expect(await sender.send(token, { body: "x" })).toEqual(outcome);
    expect(fake.sends().length - sendsBefore).toBe(1); // the sender did not retry these itself
  });

  it("a 503 the sender retried itself (at once on the first retry, as firebase-admin) ends as sent", async () => {
    const token = `${TOKEN}-flaky`;
    fake.script(token, fcmAnswers.unavailable());
    const sendsBefore = fake.sends().length;
    expect(await sender.send(token, { body: "x" })).toMatchObject({ status: "sent" });
    expect(fake.sends().length - sendsBefore).toBe(2);
  });
});

it("reads Retry-After as seconds or as an HTTP-date", () => {
  expect(retryAfterMs("17")).toBe(17_000);
  const inAMinute = retryAfterMs(new Date(Date.now() + 60_000).toUTCString()) ?? 0;
  expect(inAMinute).toBeGreaterThan(58_000);
  expect(inAMinute).toBeLessThanOrEqual(60_000);
  expect(retryAfterMs("soon")).toBeUndefined();
  expect(retryAfterMs(undefined)).toBeUndefined();
});

describe("when Google cannot be reached", () => {
  it("FCM down after the token was had: retry (network)", async () => {
    const down = await startFakeFcm();
    const key = await down.addServiceAccount(path.join(dir, "down.json"), "down-project");
    const s = newSender(key.file, undefined, down);
    expect(await s.send(TOKEN, { body: "up" })).toMatchObject({ status: "sent" });
    await down.close();
    expect(await s.send(TOKEN, { body: "down" })).toEqual({
      status: "retry",
      reason: "network: ECONNREFUSED",
    });
  });

  it("the token endpoint down: retry (oauth)", async () => {
    const down = await startFakeFcm();
    const key = await down.addServiceAccount(path.join(dir, "down2.json"), "down2-project");
    const s = newSender(key.file, undefined, down);
    await down.close();
    expect(await s.send(TOKEN, { body: "down" })).toEqual({ status: "retry", reason: "oauth: ECONNREFUSED" });
  });

  it("the token endpoint failing (503 through google-auth-library's own retries): retry (oauth)", async () => {
    const key = await fake.addServiceAccount(path.join(dir, "oauth-503.json"), "oauth-503");
    const s = newSender(key.file);
    const unavailable = { status: 503, body: { error: "backend_error" } };
    fake.scriptToken(unavailable, unavailable, unavailable, unavailable);
    expect(await s.send(TOKEN, { body: "x" })).toEqual({ status: "retry", reason: "oauth: HTTP 503" });
    expect(tokenRequests(fake, key.clientEmail)).toHaveLength(4);
    expect(await s.send(TOKEN, { body: "y" })).toMatchObject({ status: "sent" }); // the next send asks again
  });

  it("a key Google does not know (invalid_grant): failed", async () => {
    const file = path.join(dir, "unknown.json");
    await writeServiceAccount(file, PROJECT); // not added to the fake
    const s = newSender(file);
    const outcome = await s.send(TOKEN, { body: "x" });
    expect(outcome).toMatchObject({
      status: "failed",
      reason: expect.stringMatching(/^oauth: .*invalid_grant/),
    });
    expect(fake.requests.at(-1)).toMatchObject({ host: OAUTH_HOST, status: 400 });
  });
});

it("logs a token's first characters only, never an access token or a key", () => {
  const all = lines.join("\n");
  expect(all).toContain(`"tokenPrefix":"${TOKEN.slice(0, 8)}"`);
  expect(all).not.toContain(TOKEN.slice(0, 20));
  for (const issued of fake.issued) expect(all).not.toContain(issued);
  expect(all).not.toMatch(/PRIVATE KEY|assertion/);
});

it("resolved no host name: every connection went through the agent to 127.0.0.1", () => {
  expect(dns.lookups).toEqual([]);
});
