import { hostname } from "node:os";
import { type DestinationStream, type Logger, pino } from "pino";
import pretty from "pino-pretty";
import type { Config } from "./config/schema.ts";
import { withSyslog } from "./syslog.ts";

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

/**
 * Keys whose values name a user (a phone number, a JID). Outside debug and trace their values are cut to
 * `30…78@domain` (docs/security.md "Privacy of logs and files"): enough to tell lines of one user from
 * another's while reading a log, not enough to learn whose number it is. Log users under these names.
 */
export const USER_KEYS = ["node", "jid", "receiver", "from", "msisdn", "number", "user"] as const;

/** `306912345678@oyo.example` → `30…78@oyo.example`; a URL or anything not a string stays as it is. */
export function maskUser(value: unknown): unknown {
  if (typeof value !== "string" || value.includes("://")) return value;
  const at = value.lastIndexOf("@");
  const part = at > 0 ? value.slice(0, at) : value;
  const masked = part.length <= 4 ? "…" : `${part.slice(0, 2)}…${part.slice(-2)}`;
  return at > 0 ? `${masked}${value.slice(at)}` : masked;
}

/** Every run of 7 or more digits in a text (a phone number in a request's path) cut as `maskUser` cuts it. */
export function maskNumbers(text: string): string {
  return text.replace(/\d{7,}/g, (digits) => maskUser(digits) as string);
}

function maskUsers(object: Record<string, unknown>): Record<string, unknown> {
  let out = object;
  for (const key of USER_KEYS) {
    if (key in object) {
      if (out === object) out = { ...object };
      out[key] = maskUser(object[key]);
    }
  }
  return out;
}

/**
 * pino's options for a service: level, base fields, secrets redacted, users masked outside debug. With
 * `log.syslog` the lines also carry `hostname`, which the syslog header's HOSTNAME field is taken from.
 */
export function loggerOptions(config: Pick<Config, "log">, service: string) {
  const debugging = config.log.level === "debug" || config.log.level === "trace";
  return {
    level: config.log.level,
    base: config.log.syslog
      ? { service, pid: process.pid, hostname: hostname() }
      : { service, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    ...(debugging ? {} : { formatters: { log: maskUsers } }),
  };
}

/**
 * JSON lines for machines; readable lines in development; with `log.syslog`, each line also to syslog.
 * `fd` 2 for programs whose stdout is a protocol (the extauth program).
 */
export function createLogger(config: Pick<Config, "log">, service: string, fd: 1 | 2 = 1): Logger {
  const options = loggerOptions(config, service);
  const local: DestinationStream = config.log.pretty
    ? pretty({
        destination: fd,
        colorize: fd === 1 ? process.stdout.isTTY : false,
        sync: true,
        singleLine: true,
        ignore: "pid,hostname,req,res",
      })
    : // synchronous writes: lines stay in order and the last ones survive a crash or process.exit
      pino.destination({ dest: fd, sync: true });
  const syslog = config.log.syslog;
  if (!syslog || config.log.level === "silent") return pino(options, local);
  return pino(options, withSyslog(local, syslog, service, config.log.level));
}
