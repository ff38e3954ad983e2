import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { type DestinationStream, type Level, pino, type TransportSingleOptions } from "pino";
import { SYSLOG_FACILITIES, type SyslogConfig } from "./config/syslog-schema.ts";
import type { SyslogSocketOptions } from "./syslog-socket.ts";

/**
 * `log.syslog` (docs/operations.md "Logs to syslog or journald"): pino-syslog turns each JSON line into an
 * RFC 5424 (or RFC 3164) message and syslog-socket.ts sends it over UDP or TCP. Both run in a pino
 * transport (a worker thread), so a slow or absent syslog server never holds up a request; the line itself
 * is built in the service's thread, with the logger's redaction and masking already applied.
 */

const require = createRequire(import.meta.url);
const SOCKET_STAGE = fileURLToPath(new URL("./syslog-socket.ts", import.meta.url));
/** How long `flush` waits for the transport before letting the service exit anyway. */
const FLUSH_WAIT_MS = 1000;

/** The transport's two stages, by path: pino would otherwise resolve a name from its caller's file. */
function syslogPipeline(config: SyslogConfig, service: string): TransportSingleOptions[] {
  const socket: SyslogSocketOptions = { protocol: config.protocol, host: config.host, port: config.port };
  return [
    {
      target: require.resolve("pino-syslog"),
      options: {
        modern: config.format === "rfc5424",
        appname: config.appName ?? service,
        facility: SYSLOG_FACILITIES[config.facility],
        // RFC 6587's non-transparent framing: over TCP each message ends with a newline; a datagram is one
        newline: config.protocol === "tcp",
      },
    },
    { target: SOCKET_STAGE, options: socket },
  ];
}

/**
 * The local stream and the syslog transport, each written every line at `level` and above. `flush` waits
 * (at most FLUSH_WAIT_MS) for the transport to have taken the lines written so far: runService flushes
 * before it exits.
 */
export function withSyslog(
  local: DestinationStream,
  config: SyslogConfig,
  service: string,
  level: Level,
): DestinationStream {
  const syslog = pino.transport({ pipeline: syslogPipeline(config, service) });
  // a transport that fails (its worker died) must not take the service with it: stdout keeps the lines
  syslog.on("error", (err: Error) => {
    process.stderr.write(`syslog transport failed: ${err.message}; log lines still go to stdout\n`);
  });
  const both = pino.multistream([
    { level, stream: local },
    { level, stream: syslog },
  ]);
  return Object.assign(both, {
    flush(cb: (err?: Error) => void) {
      let done = false;
      const once = () => {
        if (done) return;
        done = true;
        cb();
      };
      setTimeout(once, FLUSH_WAIT_MS).unref();
      syslog.flush(once);
    },
  });
}
