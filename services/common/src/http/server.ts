import cluster from "node:cluster";
import type { RequestListener } from "node:http";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { StartupError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { encodeRequestLines } from "./raw-request-bytes.ts";
import { readTls, type TlsPaths, watchTls } from "./tls-files.ts";

const CLUSTER_HANDOFF_GRACE_MS = 500;

export interface ServerOptions {
  name: string;
  host: string;
  port: number;
  /** Env variable that overrides the port, named in the "port in use" message. */
  portEnv?: string;
  tls?: TlsPaths | undefined;
  /** Accept raw bytes >= 0x80 in request lines (MongooseIM 2.1.0's queries); plain HTTP only. */
  rawRequestBytes?: boolean;
  /** How long an idle keep-alive connection stays open (Node's default: 5 s). */
  keepAliveTimeoutMs?: number;
  log: Logger;
}

export interface RunningServer {
  server: http.Server;
  port: number;
  url: string;
  /** Re-read the certificate files now (SIGHUP). Keeps the old ones when the new ones are unusable. */
  reloadTls(): boolean;
  /** Stop accepting, let in-flight requests finish within `timeoutMs`, then cut what is left. */
  close(timeoutMs: number): Promise<void>;
}

function listenError(err: NodeJS.ErrnoException, o: ServerOptions): StartupError {
  const where = `${o.host}:${o.port}`;
  if (err.code === "EADDRINUSE") {
    return new StartupError(
      `${o.name}: ${where} is already in use; stop the other process or choose another port` +
        (o.portEnv ? ` (${o.portEnv})` : ""),
    );
  }
  if (err.code === "EACCES") {
    return new StartupError(
      `${o.name}: not allowed to listen on ${where}; use a port above 1024 or NAT to it`,
    );
  }
  if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") {
    return new StartupError(
      `${o.name}: ${o.host} is not an address of this machine; fix the host in the config`,
    );
  }
  return new StartupError(`${o.name}: cannot listen on ${where} (${err.code ?? err.message})`);
}

export async function startServer(handler: RequestListener, o: ServerOptions): Promise<RunningServer> {
  const useTls = !!(o.tls?.cert && o.tls.key);
  const server: http.Server = useTls
    ? https.createServer({ ...readTls(o.tls as TlsPaths) }, handler)
    : http.createServer(handler);
  server.keepAliveTimeout = o.keepAliveTimeoutMs ?? 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;

  // At shutdown, a socket busy with a request is closed after its answer; an idle keep-alive
  // socket is left to carry one more request (answered with `Connection: close`) or to expire by
  // keepAliveTimeout, which clients know from the Keep-Alive header and avoid racing. Closing idle sockets
  // at once (what http.Server.close() does) loses the request a client is sending on one at that moment.
  const sockets = new Set<Socket>();
  const inFlight = new Set<http.ServerResponse>();
  let closing = false;
  const closeAfterAnswer = (res: http.ServerResponse) => {
    if (!res.headersSent) res.setHeader("connection", "close");
  };
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
    if (closing) closeAfterAnswer(res);
    inFlight.add(res);
    res.on("close", () => inFlight.delete(res));
  });

  // a request Node's parser refuses still gets an answer with Content-Length (MongooseIM requires one)
  server.on("clientError", (_err: Error, socket: Duplex) => {
    if (socket.writable)
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad_request");
    else socket.destroy();
  });

  // the listening socket: the HTTP server's own, or one that re-encodes request lines first
  const listening: net.Server =
    o.rawRequestBytes && !useTls
      ? // noDelay as http.Server sets it: without it Nagle holds every answer back ~40 ms
        net.createServer({ noDelay: true }, (socket) => server.emit("connection", encodeRequestLines(socket)))
      : server;
  await new Promise<void>((resolve, reject) => {
    listening.once("error", (err) => reject(listenError(err, o)));
    listening.listen(o.port, o.host, () => resolve());
  });
  server.on("error", (err) => o.log.error({ err }, "server error"));

  const reloadTls = (): boolean => {
    if (!useTls || !o.tls) return false;
    try {
      (server as https.Server).setSecureContext(readTls(o.tls));
      o.log.info({ cert: o.tls.cert }, "TLS certificates reloaded");
      return true;
    } catch (err) {
      o.log.error({ err: (err as Error).message }, "TLS reload failed; keeping the previous certificates");
      return false;
    }
  };
  const stopWatching = useTls && o.tls ? watchTls(o.tls, reloadTls) : () => {};

  const port = (listening.address() as AddressInfo).port;
  const shownHost = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    server,
    port,
    url: `${useTls ? "https" : "http"}://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${port}`,
    reloadTls,
    close(timeoutMs) {
      closing = true;
      stopWatching();
      for (const res of inFlight) closeAfterAnswer(res);
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          o.log.warn({ open: sockets.size }, "shutdown bound reached; closing remaining connections");
          server.closeAllConnections();
        }, timeoutMs);
        // net.Server's close: stop accepting, call back once every connection has ended (see above)
        net.Server.prototype.close.call(listening, () => {
          clearTimeout(timer);
          server.closeAllConnections(); // also stops http.Server's connection-checking interval
          // In a cluster worker (pm2 cluster mode), the primary may have handed us a connection just before it
          // learned that we closed. Alive, we refuse it and the primary passes it to another worker; exited,
          // we would take it with us and its client would wait forever. So stay a moment.
          setTimeout(resolve, cluster.isWorker ? CLUSTER_HANDOFF_GRACE_MS : 0);
        });
      });
    },
  };
}
