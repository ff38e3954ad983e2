import { type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { Config } from "./config/schema.ts";

export type { Logger };

/**
 * Keys never written to a log line. Requests are logged through lean serializers (id, method, url, remote
 * address, status: see http/app-base.ts), so headers and bodies never reach a line; these explicit paths catch
 * a secret passed to a log call by name. Explicit paths, not `*.password` wildcards: wildcards make every log
 * call and every per-request child logger about three times as expensive.
 */
export const REDACT_PATHS = [
  "password",
  "pass",
  "token",
  "basicAuth",
  "databaseUrl",
  "authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  "req.query.pass",
  "config.services.auth.basicAuth",
  "config.database.url",
];

/** JSON lines for machines; readable lines in development. */
/** `fd` 2 for programs whose stdout is a protocol (the extauth program). */
export function createLogger(config: Pick<Config, "log">, service: string, fd: 1 | 2 = 1): Logger {
  const options = {
    level: config.log.level,
    base: { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  if (config.log.pretty) {
    return pino(
      options,
      pretty({
        destination: fd,
        colorize: fd === 1 ? process.stdout.isTTY : false,
        sync: true,
        singleLine: true,
        ignore: "pid,hostname,req,res",
      }),
    );
  }
  // synchronous writes: lines stay in order and the last ones survive a crash or process.exit
  return pino(options, pino.destination({ dest: fd, sync: true }));
}
