import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fromRoot } from "#common/paths.ts";
import { sha256 } from "../../../../test/support/bytes.ts";
import { type HttpUtilityTestApp, startHttpUtilityApp } from "../../../../test/support/http-utility-app.ts";
import { type RecordingLogger, recordingLogger } from "../../../../test/support/recording-logger.ts";
import { createPushDeps } from "./deps.ts";

/**
 * docs/push.md "Push in development" on the app as main.ts composes it, with the `push` section of
 * config/development.json as it is: alice@localhost stores a token, a server sends to her and broadcasts to a
 * channel she subscribed to, and each push is a line of the service's log (the `log` sender) with the token's
 * end only.
 */

const ALICE = { node: "alice", domain: "localhost", password: "alice's password" };
const KEY = "sk_test_development_push_0123456789";
const TOKEN = "alice-phone-0001";

const development = JSON.parse(readFileSync(fromRoot("config/development.json"), "utf8")) as {
  push: Record<string, unknown>;
};

let app: HttpUtilityTestApp;
let recording: RecordingLogger;

beforeAll(async () => {
  recording = recordingLogger({ level: "info" });
  app = await startHttpUtilityApp({
    log: recording.log,
    users: [ALICE],
    overrides: {
      push: development.push,
      services: { httpUtility: { apiKeys: { dev: { sha256: sha256(KEY), scopes: ["push", "broadcast"] } } } },
    },
    // broadcasts run as jobs, as in `npm start`
    push: ({ config, log, db, metrics }) =>
      createPushDeps({ config, log, pool: db.pool }, { metrics: metrics.registry, workers: true }),
  });
});

afterAll(async () => {
  await app?.close();
});

async function post(path: string, auth: string, json: unknown) {
  const r = await fetch(app.url(path), {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify(json),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const alice = `Basic ${Buffer.from(`alice@localhost:${ALICE.password}`).toString("base64")}`;
const server = `Bearer ${KEY}`;
const pushLines = () =>
  recording.lines.filter((l) => typeof l.msg === "string" && l.msg.startsWith("push to "));

describe("push in development", () => {
  it("stores alice's token for the development app of localhost", async () => {
    expect(
      await post("/api/v1/notifications/store_token", alice, {
        node: "alice",
        token: TOKEN,
        service: "fcm",
      }),
    ).toEqual({
      status: 200,
      body: { stored: true, outcome: "new", app: "OyoChat", evicted: 0 },
    });
  });

  it("answers a send `sent` and writes the push to the log, the token cut to its end", async () => {
    recording.clear();
    const sent = await post("/api/v1/notifications/send", server, {
      node: "alice",
      title: "Invoice",
      body: "Your invoice is ready",
      data: { invoice: "42" },
    });
    expect(sent).toEqual({
      status: 200,
      body: {
        id: expect.any(String),
        results: [{ service: "fcm", token: TOKEN, status: "sent", id: expect.any(String) }],
      },
    });
    const results = sent.body.results as { id: string }[];
    expect(pushLines()).toEqual([
      expect.objectContaining({
        app: "OyoChat",
        push: "fcm",
        device: "…-0001",
        id: results[0]?.id,
        title: "Invoice",
        body: "Your invoice is ready",
        badge: 1,
        data: { invoice: "42", notificationId: sent.body.id },
        msg: "push to OyoChat fcm …-0001: Invoice: Your invoice is ready",
      }),
    ]);
    expect(recording.text()).not.toContain(TOKEN);
  });

  it("delivers a channel broadcast to the log too", async () => {
    expect(
      await post("/api/v1/notifications/channel_subscribe", alice, { node: "alice", channel: "news" }),
    ).toEqual({ status: 200, body: { subscribed: true } });
    recording.clear();
    const queued = await post("/api/v1/notifications/channel_broadcast", server, {
      channel: "news",
      title: "News",
      body: "Oyo 2.0 is out",
    });
    expect(queued).toMatchObject({ status: 202, body: { status: "queued" } });
    await vi.waitFor(
      async () => {
        const r = await fetch(app.url(`/api/v1/notifications/channel_broadcast/${queued.body.id}`), {
          headers: { authorization: server },
        });
        expect(await r.json()).toMatchObject({ state: "done", total: 1, sent: 1 });
      },
      { timeout: 15_000, interval: 200 },
    );
    expect(pushLines()).toEqual([
      expect.objectContaining({
        push: "fcm",
        device: "…-0001",
        badge: 2,
        data: { broadcastId: queued.body.id },
        msg: "push to OyoChat fcm …-0001: News: Oyo 2.0 is out",
      }),
    ]);
    expect(recording.text()).not.toContain(TOKEN);
  });
});
