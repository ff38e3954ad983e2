import { z } from "zod";

/**
 * `log.syslog`: a copy of every log line sent to a syslog server (rsyslog, syslog-ng, journald through
 * either) as RFC 5424 or RFC 3164 messages. The facilities and their codes are RFC 5424's (section 6.2.1);
 * only those an application should log under are offered.
 */
export const SYSLOG_FACILITIES = {
  user: 1,
  daemon: 3,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

export const syslogSchema = z
  .object({
    host: z.string().min(1).default("127.0.0.1").describe("syslog server address"),
    port: z.number().int().min(1).max(65535).default(514).describe("syslog server port"),
    protocol: z
      .enum(["udp", "tcp"])
      .default("udp")
      .describe("`udp` (one message a datagram) or `tcp` (messages ended by a newline, RFC 6587)"),
    format: z
      .enum(["rfc5424", "rfc3164"])
      .default("rfc5424")
      .describe(
        "`rfc5424`, or `rfc3164` for old servers (messages over 1024 bytes are replaced by a notice)",
      ),
    facility: z
      .enum(Object.keys(SYSLOG_FACILITIES) as [keyof typeof SYSLOG_FACILITIES])
      .default("local0")
      .describe("syslog facility of every message"),
    appName: z
      .string()
      .regex(/^[!-~]{1,48}$/, "1 to 48 printable ASCII characters, no space (RFC 5424 APP-NAME)")
      .optional()
      .describe("APP-NAME (RFC 5424) or TAG (RFC 3164) of the messages; unset: the service's name"),
  })
  .strict()
  .describe(
    "also send every log line to a syslog server (stdout keeps its lines); unset: no syslog (docs/operations.md)",
  );

export type SyslogConfig = z.output<typeof syslogSchema>;
