import { createSocket } from "node:dgram";
import { isIPv6, type Socket, connect as tcpConnect } from "node:net";
import { Writable } from "node:stream";

/**
 * The last stage of the syslog transport (syslog.ts): sends each message pino-syslog formatted, one UDP
 * datagram per message (RFC 5426) or one line per message over TCP (RFC 6587, non-transparent framing).
 * It runs in pino's transport worker, so it imports nothing but Node.
 *
 * It never holds the transport up, because a transport that stops reading holds up the service's exit
 * (pino waits up to 20 s for its worker): UDP sends from an unconnected socket, so an absent server costs
 * nothing; TCP connects in the background, keeps the last MAX_QUEUED messages while the server is away,
 * and drops what it has not sent when the service ends.
 */

export interface SyslogSocketOptions {
  protocol: "udp" | "tcp";
  host: string;
  port: number;
}

const MAX_QUEUED = 1024;
/** Bytes waiting in a connected TCP socket beyond which new messages are dropped (a server not reading). */
const MAX_BUFFERED = 1 << 20;
/** How long the end of the service waits for the last messages to leave. */
const END_WAIT_MS = 1000;

/** One line on stderr per failure, not per message: a server away for an hour is one line. */
function teller(where: string, meanwhile: string) {
  let told = false;
  return {
    fail(err: Error) {
      if (told) return;
      told = true;
      process.stderr.write(`syslog ${where}: ${err.message}; ${meanwhile} until it answers\n`);
    },
    ok() {
      told = false;
    },
  };
}

function udp(o: SyslogSocketOptions): Writable {
  const socket = createSocket(isIPv6(o.host) ? "udp6" : "udp4");
  const tell = teller(`udp://${o.host}:${o.port}`, "messages are dropped");
  socket.on("error", tell.fail);
  let pending = 0;
  let idle: (() => void) | undefined;
  return new Writable({
    objectMode: true,
    write(message: string, _encoding, done) {
      pending++;
      socket.send(message, o.port, o.host, (err) => {
        if (err) tell.fail(err);
        else tell.ok();
        if (--pending === 0) idle?.();
      });
      done();
    },
    final(done) {
      const close = () => socket.close(() => done());
      if (pending === 0) return close();
      idle = close;
      setTimeout(close, END_WAIT_MS).unref();
    },
  });
}

function tcp(o: SyslogSocketOptions): Writable {
  const tell = teller(`tcp://${o.host}:${o.port}`, `the last ${MAX_QUEUED} messages are kept`);
  const queue: string[] = [];
  let socket: Socket | undefined;
  let connected = false;
  let ended = false;
  let backoffMs = 500;
  let retry: NodeJS.Timeout | undefined;

  const open = () => {
    retry = undefined;
    const s = tcpConnect({ host: o.host, port: o.port });
    socket = s;
    s.setNoDelay(true);
    s.on("connect", () => {
      connected = true;
      backoffMs = 500;
      tell.ok();
      for (const message of queue.splice(0)) s.write(message);
    });
    s.on("error", tell.fail);
    s.on("close", () => {
      connected = false;
      if (socket === s) socket = undefined;
      if (!ended) {
        retry = setTimeout(open, backoffMs);
        retry.unref();
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    });
  };
  open();

  return new Writable({
    objectMode: true,
    write(message: string, _encoding, done) {
      if (connected && socket) {
        if (socket.writableLength < MAX_BUFFERED) socket.write(message);
      } else {
        queue.push(message);
        if (queue.length > MAX_QUEUED) queue.shift();
      }
      done();
    },
    final(done) {
      ended = true;
      clearTimeout(retry);
      const s = socket;
      if (!s || !connected) {
        s?.destroy();
        return done();
      }
      const timer = setTimeout(() => {
        s.destroy();
        done();
      }, END_WAIT_MS);
      timer.unref();
      s.end(() => {
        clearTimeout(timer);
        done();
      });
    },
  });
}

/** pino's transport entry: called in the worker with the options of syslog.ts. */
export default function syslogSocket(o: SyslogSocketOptions): Writable {
  return o.protocol === "tcp" ? tcp(o) : udp(o);
}
