import { describe, expect, it } from "vitest";
import { configSchema } from "#common/config/schema.ts";
import { StartupProblems } from "#common/errors.ts";
import { recordingLogger } from "../../../../../test/support/recording-logger.ts";
import { createSmsSenders, smsSenderKinds } from "./registry.ts";

/** The registry (one sender per domain that accepts registration) and the log sender. */

function lines() {
  const { lines: out, log } = recordingLogger({ level: "info" });
  return { out, log };
}

/** `domains` as the config loader would produce them (defaults filled in). */
function domains(raw: Record<string, unknown>) {
  return configSchema.shape.domains.parse(raw);
}

const reg = (sms: { kind: string; options?: Record<string, unknown> }, enabled = true) => ({
  registration: { enabled, sms },
});

describe("createSmsSenders", () => {
  it("has every kind named in the config reference (the config schema cannot import the registry)", () => {
    const sms = configSchema.shape.domains.valueType.shape.registration.unwrap().shape.sms.unwrap();
    for (const kind of smsSenderKinds.kinds) expect(sms.shape.kind.description).toContain(`\`${kind}\``);
  });

  it("lists the problems of every domain at once", () => {
    let error: unknown;
    try {
      createSmsSenders(
        domains({
          "a.test": reg({ kind: "nexmo" }),
          "b.test": reg({ kind: "http", options: {} }),
          "c.test": reg({ kind: "log" }),
        }),
        { log: lines().log, env: "test" },
      );
    } catch (err) {
      error = err;
    }
    expect((error as StartupProblems).problems).toEqual([
      'domains.a.test.registration.sms: kind "nexmo" is unknown: use one of log, http, twilio (docs/registration.md)',
      "domains.b.test.registration.sms.options.url: required: where messages go; placeholders are URL-encoded",
    ]);
  });

  it("builds one sender per domain that accepts registration, of its kind", () => {
    const { log } = lines();
    const senders = createSmsSenders(
      domains({
        "log.test": reg({ kind: "log" }),
        "gw.test": reg({ kind: "http", options: { url: "http://127.0.0.1:9/sms", json: { to: "{to}" } } }),
        "tw.test": reg({
          kind: "twilio",
          options: { accountSid: `AC${"0".repeat(32)}`, authToken: "t", from: "+15005550006" },
        }),
        // not enabled: its options are not even read
        "off.test": reg({ kind: "http", options: { nonsense: true } }, false),
        plain: {},
      }),
      { log, env: "test" },
    );
    expect(Object.fromEntries([...senders].map(([d, s]) => [d, s.kind]))).toEqual({
      "log.test": "log",
      "gw.test": "http",
      "tw.test": "twilio",
    });
  });

  it.each([
    [
      { kind: "log", options: { level: "debug" } },
      "options.level: unknown key: none is taken here: remove it",
    ],
    [
      { kind: "nexmo", options: {} },
      ': kind "nexmo" is unknown: use one of log, http, twilio (docs/registration.md)',
    ],
    [{ kind: "http", options: { url: "ftp://gw.example/send" } }, "url: must be an http:// or https:// URL"],
    [{ kind: "http", options: {} }, "url: "],
    [
      { kind: "http", options: { url: "https://gw.example/s", json: { a: "{to}" }, form: { b: "{to}" } } },
      "options: set at most one of json, form, body",
    ],
    [
      { kind: "http", options: { url: "https://gw.example/s", method: "GET", json: { a: "{to}" } } },
      "method: GET sends no body",
    ],
    [
      { kind: "http", options: { url: "https://gw.example/s?to={phone}", json: { t: "{txt}" } } },
      "options: unknown placeholder(s) {phone}, {txt}: use {to}, {msisdn}, {text}, {code}",
    ],
    [{ kind: "http", options: { url: "https://gw.example/s", timeoutMs: 60_000 } }, "timeoutMs: "],
    [
      { kind: "twilio", options: { accountSid: "AC1", authToken: "t", from: "+1500" } },
      "accountSid: an account SID",
    ],
    [
      { kind: "twilio", options: { accountSid: `AC${"0".repeat(32)}`, authToken: "t" } },
      "options: set one of from, messagingServiceSid",
    ],
    [
      { kind: "twilio", options: { accountSid: `AC${"0".repeat(32)}`, from: "+15005550006" } },
      "options: set one of authToken, authTokenFile",
    ],
    [
      {
        kind: "twilio",
        options: {
          accountSid: `AC${"0".repeat(32)}`,
          authTokenFile: "/nonexistent/token",
          from: "+15005550006",
        },
      },
      "options.authTokenFile: cannot read /nonexistent/token (ENOENT): fix the path",
    ],
  ])("stops the start with one line naming the key and the fix: %j", (sms, why) => {
    const { log } = lines();
    let error: unknown;
    try {
      createSmsSenders(domains({ "oyo.example": reg(sms) }), { log, env: "test" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StartupProblems);
    const { problems, message } = error as StartupProblems;
    expect(message).toContain(why);
    for (const problem of problems) {
      expect(problem.startsWith("domains.oyo.example.registration.sms")).toBe(true);
      expect(problem).not.toContain("\n");
    }
  });
});

describe("the log sender", () => {
  it("writes the message, code included, to the log (its whole purpose, in development)", async () => {
    const { out, log } = lines();
    const senders = createSmsSenders(domains({ "log.test": reg({ kind: "log" }) }), {
      log,
      env: "development",
    });
    await senders.get("log.test")?.send("+306912345678", "Your OyoChat code is 042917", "042917");
    expect(out).toEqual([
      expect.objectContaining({
        level: 30,
        domain: "log.test",
        to: "+306912345678",
        code: "042917",
        msg: "SMS to +306912345678: Your OyoChat code is 042917",
      }),
    ]);
  });

  it("warns at start when a production domain uses it", () => {
    const { out, log } = lines();
    createSmsSenders(domains({ "log.test": reg({ kind: "log" }) }), { log, env: "production" });
    expect(out).toEqual([
      expect.objectContaining({
        level: 40,
        domain: "log.test",
        msg: expect.stringMatching(/no phone receives them/),
      }),
    ]);
  });
});
