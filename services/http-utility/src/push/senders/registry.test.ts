import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { pushSchema } from "#common/config/push-schema.ts";
import { Secrets } from "#common/config/secrets.ts";
import { StartupProblems } from "#common/errors.ts";
import { createPushSenders, pushSenderKinds } from "./registry.ts";

/** The senders of every app, and the problems of every app listed at once, each at its key. */

const log = pino({ level: "silent" });

describe("createPushSenders", () => {
  it("has a kind for each key of push.apps.<app>", () => {
    expect(pushSenderKinds.kinds).toEqual(["fcm", "apns", "log"]);
  });

  it("has every kind named in the config reference (the config schema cannot import the registry)", () => {
    const described = pushSchema.unwrap().shape.apps.description;
    for (const kind of pushSenderKinds.kinds) expect(described).toContain(`\`${kind}\``);
  });

  it("stops the start listing every app's credential problem at its key", () => {
    const err = (() => {
      try {
        createPushSenders(
          {
            OyoChat: { fcm: { serviceAccountFile: "/nonexistent/oyo-firebase.json" } },
            Other: {
              apns: {
                bundleId: "com.example.other",
                production: true,
                keyFile: "/nonexistent/AuthKey.p8",
                keyId: "ABC123DEFG",
                teamId: "TEAM123456",
              },
            },
          },
          { log, env: "production", secrets: new Secrets({}) },
        );
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StartupProblems);
    expect((err as StartupProblems).problems).toEqual([
      expect.stringMatching(
        /^push\.apps\.OyoChat\.fcm\.serviceAccountFile: cannot read \/nonexistent\/oyo-firebase\.json \(ENOENT\): fix the path/,
      ),
      expect.stringMatching(
        /^push\.apps\.Other\.apns\.keyFile: cannot read \/nonexistent\/AuthKey\.p8 \(ENOENT\)/,
      ),
    ]);
  });

  it("makes no sender for an app without credentials", () => {
    const senders = createPushSenders({ Bare: {} }, { log, env: "production", secrets: new Secrets({}) });
    expect([...(senders.get("Bare")?.keys() ?? [])]).toEqual([]);
  });
});
