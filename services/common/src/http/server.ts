import type { RequestListener } from "node:http";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { StartupError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { readTls, type TlsPaths, watchTls } from "./tls-files.ts";

export interface ServerOptions {
  name: string;
  host: string;
  port: number;
  /** Env variable that overrides the port, named in the "port in use" message. */
  portEnv?: string;
  tls?: TlsPaths | undefined;
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
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;

  // requests in progress per socket, so a shutdown closes idle sockets at once and busy ones after their answer
  const active = new Map<Socket, number>();
  let closing = false;
  server.on("connection", (socket: Socket) => {
    active.set(socket, 0);
    socket.on("close", () => active.delete(socket));
  });
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    active.set(socket, (active.get(socket) ?? 0) + 1);
    res.on("finish", () => {
      const left = (active.get(socket) ?? 1) - 1;
      active.set(socket, left);
      if (closing && left === 0) socket.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(listenError(err, o)));
    server.listen(o.port, o.host, () => resolve());
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

  const port = (server.address() as AddressInfo).port;
  const shownHost = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    server,
    port,
    url: `${useTls ? "https" : "http"}://${shownHost === "0.0.0.0" ? "127.0.0.1" : shownHost}:${port}`,
    reloadTls,
    close(timeoutMs) {
      closing = true;
      stopWatching();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          o.log.warn({ open: active.size }, "shutdown bound reached; closing remaining connections");
          server.closeAllConnections();
        }, timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        for (const [socket, n] of active) if (n === 0) socket.end();
      });
    },
  };
}
