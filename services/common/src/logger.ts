import { type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { Config } from "./config/schema.ts";

export type { Logger };

/** Paths never written to a log line: credentials in headers and bodies. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.query.pass",
  "*.password",
  "*.pass",
  "*.token",
  "*.basicAuth",
  "*.databaseUrl",
];

/** JSON lines for machines; readable lines in development. */
export function createLogger(config: Pick<Config, "log">, service: string): Logger {
  const options = {
    level: config.log.level,
    base: { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  if (config.log.pretty) {
    return pino(
      options,
      pretty({
        colorize: process.stdout.isTTY,
        sync: true,
        singleLine: true,
        ignore: "pid,hostname,req,res",
      }),
    );
  }
  // synchronous writes: lines stay in order and the last ones survive a crash or process.exit
  return pino(options, pino.destination({ dest: 1, sync: true }));
}
