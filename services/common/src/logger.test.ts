import { describe, expect, it } from "vitest";
import { recordingLogger } from "../../../test/support/recording-logger.ts";
import { loggerOptions, REDACT_PATHS } from "./logger.ts";

describe("logger", () => {
  it("never writes a secret passed by name", () => {
    const { log, lines } = recordingLogger({ redact: { paths: REDACT_PATHS, censor: "[redacted]" } });
    log.info(
      { password: "hunter2", pass: "p", token: "t", basicAuth: "u:p", databaseUrl: "postgres://u:pw@h/db" },
      "x",
    );
    log.child({ authorization: "Basic abc" }).info("y");
    log.info(
      { config: { services: { auth: { basicAuth: "mim:pw" } }, database: { url: "postgres://u:pw@h/d" } } },
      "z",
    );
    const text = JSON.stringify(lines);
    for (const secret of ["hunter2", '"p"', '"t"', "u:p", "u:pw", "Basic abc", "mim:pw"]) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0]).toMatchObject({ password: "[redacted]", token: "[redacted]" });
  });

  it("cuts phone numbers and JIDs outside debug, and keeps them whole at debug", () => {
    const at = (level: "info" | "debug") => {
      const { log, lines } = recordingLogger(loggerOptions({ log: { level, pretty: false } }, "test"));
      log.warn(
        { domain: "oyo.example", node: "306912345678", receiver: "306912345678@oyo.example", err: "x" },
        "registration SMS not sent",
      );
      log.info({ from: "https://backend.example/cb", jid: "al@oyo.example" }, "relayed");
      return lines;
    };
    const [warned, relayed] = at("info");
    expect(warned).toMatchObject({ domain: "oyo.example", node: "30…78", receiver: "30…78@oyo.example" });
    expect(JSON.stringify(at("info"))).not.toContain("6912345");
    expect(relayed).toMatchObject({ from: "https://backend.example/cb", jid: "…@oyo.example" });
    expect(at("debug")[0]).toMatchObject({ node: "306912345678", receiver: "306912345678@oyo.example" });
  });
});
