import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACT_PATHS } from "./logger.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, stream), lines };
}

describe("logger", () => {
  it("never writes a secret passed by name", () => {
    const { log, lines } = capture();
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
});
