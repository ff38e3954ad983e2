import { describe, expect, it } from "vitest";
import { loadConfig } from "#common/config/load.ts";
import { Secrets } from "#common/config/secrets.ts";
import { StartupProblems } from "#common/errors.ts";
import { recordingLogger } from "../../../../../test/support/recording-logger.ts";
import { createPushSenders } from "./registry.ts";
import type { PushSenders } from "./sender.ts";

/** The development sender: what a developer reads in the log for each push, and never a whole token. */

const FCM_TOKEN = `dT0kEn:APA91b${"x".repeat(140)}c0ffee`;

function senders(env: "development" | "demo" | "production" | "test" = "development") {
  const recording = recordingLogger({ level: "debug" });
  const made: PushSenders = createPushSenders(
    { OyoChat: { log: {} } },
    { log: recording.log, env, secrets: new Secrets({}) },
  );
  const of = (service: "fcm" | "apns" | "apns-voip") => {
    const sender = made.get("OyoChat")?.get(service);
    if (!sender) throw new Error(`no ${service} sender`);
    return sender;
  };
  return { ...recording, of };
}

describe("the log push sender", () => {
  it("writes an alert as sent, with app, service, the token's end, title, body, badge and data", async () => {
    const { of, lines } = senders();
    const outcome = await of("fcm").send(FCM_TOKEN, {
      title: "Invoice",
      body: "Your invoice is ready",
      badge: 2,
      data: { invoice: "42", notificationId: "6f1c" },
    });

    expect(outcome).toEqual({ status: "sent", id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      app: "OyoChat",
      push: "fcm",
      device: "…c0ffee",
      id: outcome.status === "sent" ? outcome.id : "",
      title: "Invoice",
      body: "Your invoice is ready",
      badge: 2,
      data: { invoice: "42", notificationId: "6f1c" },
      msg: "push to OyoChat fcm …c0ffee: Invoice: Your invoice is ready",
    });
  });

  it("serves every service, so a token stored as apns or apns-voip is delivered alike", async () => {
    const { of, lines } = senders();
    expect(await of("apns").send("a1b2c3d4e5f6a7b8c9d0", { body: "hello" })).toMatchObject({
      status: "sent",
    });
    expect(await of("apns-voip").send("ffeeddccbbaa99887766", { title: "Call" })).toMatchObject({
      status: "sent",
    });
    expect(lines.map((l) => [l.push, l.msg])).toEqual([
      ["apns", "push to OyoChat apns …b8c9d0: hello"],
      ["apns-voip", "push to OyoChat apns-voip …887766: Call"],
    ]);
  });

  it("shows a silent push as the providers get it: badge and data, no title, body or sound", async () => {
    const { of, lines } = senders();
    await of("apns").send("0123456789abcdef0123", {
      silent: true,
      title: "not sent",
      body: "not sent",
      sound: "ping.caf",
      badge: 0,
      data: { sync: "inbox" },
    });
    expect(lines[0]?.msg).toBe("push to OyoChat apns …ef0123 (silent)");
    expect(lines[0]).toMatchObject({ silent: true, badge: 0, data: { sync: "inbox" } });
    expect(lines[0]).not.toHaveProperty("title");
    expect(lines[0]).not.toHaveProperty("body");
    expect(lines[0]).not.toHaveProperty("sound");
  });

  it("never writes a whole token, however short", async () => {
    const { of, lines } = senders();
    const tokens = [FCM_TOKEN, "alice-phone-1", "QRSTUV", "QR", "Q"];
    for (const token of tokens) await of("fcm").send(token, { body: "hi" });
    expect(lines.map((l) => l.device)).toEqual(["…c0ffee", "…ne-1", "…UV", "…", "…"]);
    lines.forEach((line, i) => {
      expect(JSON.stringify(line)).not.toContain(tokens[i]);
    });
  });

  it("is refused at start in production, at its key and with the fix", () => {
    const err = (() => {
      try {
        senders("production");
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StartupProblems);
    expect((err as StartupProblems).problems).toEqual([
      expect.stringMatching(
        /^push\.apps\.OyoChat\.log: the log sender is for development: .*give the app fcm and\/or apns credentials/,
      ),
    ]);
  });

  it("warns at start in a demo, where devices would expect their pushes, and not in development", () => {
    const demo = senders("demo");
    expect(demo.lines).toEqual([
      expect.objectContaining({
        level: 40,
        msg: "pushes of app OyoChat go to the log (push.apps.OyoChat.log): no device receives them",
      }),
    ]);
    expect(senders("development").lines).toEqual([]);
  });

  it("is refused by the config beside fcm or apns, whose tokens it would take", () => {
    expect(() =>
      loadConfig({
        env: { APP_ENV: "test" },
        overrides: {
          push: { apps: { OyoChat: { log: {}, fcm: { serviceAccountFile: "/etc/oyo.json" } } } },
        },
      }),
    ).toThrow(/push\.apps\.OyoChat\.log: `log` serves every service of the app: give it alone/);
  });
});
