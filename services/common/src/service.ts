import type { RequestListener } from "node:http";
import { loadConfig } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { checkDatabase, createPool, type Pool, resolveDatabaseUrl } from "./db/pool.ts";
import { StartupError } from "./errors.ts";
import { type RunningServer, startServer } from "./http/server.ts";
import { createLogger, type Logger } from "./logger.ts";

/** What every service's composition root receives before it builds its app. */
export interface ServiceContext {
  config: Config;
  log: Logger;
  pool: Pool;
}

export interface ListenOptions {
  host: string;
  port: number;
  portEnv?: string;
  rawRequestBytes?: boolean;
  tls?: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined };
}

export interface ServiceDefinition {
  name: string;
  listen: (config: Config) => ListenOptions & { portEnv: string };
  createApp: (ctx: ServiceContext) => RequestListener | Promise<RequestListener>;
  /**
   * A second listener, for endpoints that only local processes may reach (http-utility's MongooseIM hooks):
   * its own port, its own app, built after `createApp` (so it may share what that one built). In a pm2 cluster
   * every worker listens on both ports, the primary sharing each among them.
   */
  internal?: {
    listen: (config: Config) => ListenOptions;
    createApp: (ctx: ServiceContext) => RequestListener | Promise<RequestListener>;
  };
  /** Runs once the server listens, with its URL (the buddies runner advertises it to the cluster). */
  onListening?: (ctx: ServiceContext, url: string) => void | Promise<void>;
  /** Extra work at SIGHUP (e.g. reloading domains), after the certificates. */
  onReload?: (ctx: ServiceContext) => void | Promise<void>;
  /** Extra work at shutdown, after the server stopped and before the pool closes. */
  onShutdown?: (ctx: ServiceContext) => void | Promise<void>;
}

export interface StartedService extends ServiceContext {
  server: RunningServer;
  /** The internal listener, when the service has one. */
  internalServer?: RunningServer;
  shutdown: (signal?: string) => Promise<void>;
}

/** Prints a startup failure as the one line (or list) it is and exits 1. */
export function exitOnStartupError(err: unknown, log?: Logger): never {
  const message =
    err instanceof StartupError ? err.message : `unexpected error at start: ${(err as Error)?.stack ?? err}`;
  log?.fatal(message);
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/**
 * Config, logger, database, app, listening server, signals: the same start for all three services.
 * Sends `ready` to pm2 once listening; SIGINT/SIGTERM (and pm2's `shutdown` message) stop gracefully within
 * `shutdown.timeoutMs`; SIGHUP reloads the certificates.
 */
export async function startService(
  def: ServiceDefinition,
  env: NodeJS.ProcessEnv = process.env,
): Promise<StartedService> {
  const config = loadConfig({ env });
  const log = createLogger(config, def.name);
  const url = await resolveDatabaseUrl(config, log);
  // what the service writes from here on (media, scratch files) is not for other users of the machine; the
  // embedded PostgreSQL, which runs as another user, was started just above and keeps its own
  process.umask(0o027);
  const pool = createPool(config, url, log);
  try {
    await checkDatabase(pool, url);
    const ctx: ServiceContext = { config, log, pool };
    const app = await def.createApp(ctx);
    const l = def.listen(config);
    const server = await startServer(app, {
      name: def.name,
      ...l,
      keepAliveTimeoutMs: config.shutdown.keepAliveTimeoutMs,
      log,
    });
    let internalServer: RunningServer | undefined;
    if (def.internal) {
      try {
        const internalApp = await def.internal.createApp(ctx);
        internalServer = await startServer(internalApp, {
          name: `${def.name} (internal)`,
          ...def.internal.listen(config),
          keepAliveTimeoutMs: config.shutdown.keepAliveTimeoutMs,
          log,
        });
      } catch (err) {
        await server.close(0);
        throw err;
      }
    }
    log.info({ url: server.url, internalUrl: internalServer?.url, env: config.env }, `${def.name} listening`);
    await def.onListening?.(ctx, server.url);

    let done: Promise<void> | undefined;
    const shutdown = (signal = "shutdown") => {
      done ??= (async () => {
        log.info({ signal }, "shutting down: finishing in-flight requests");
        await Promise.all([
          server.close(config.shutdown.timeoutMs),
          internalServer?.close(config.shutdown.timeoutMs),
        ]);
        await def.onShutdown?.(ctx);
        await pool.end();
        log.info("stopped");
      })();
      return done;
    };
    return { ...ctx, server, ...(internalServer ? { internalServer } : {}), shutdown };
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
}

/** For `main.ts`: start, wire the process signals, tell pm2 we are ready. */
export async function runService(def: ServiceDefinition): Promise<void> {
  let started: StartedService;
  try {
    started = await startService(def);
  } catch (err) {
    exitOnStartupError(err);
  }
  const { log } = started;
  // pino writes asynchronously: flush before exiting, or the last lines are lost or reordered
  const exit = (code: number) => log.flush(() => process.exit(code));
  const stop = (signal: string) => {
    started.shutdown(signal).then(
      () => exit(0),
      (err) => {
        log.error({ err }, "error during shutdown");
        exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("message", (msg) => {
    if (msg === "shutdown") stop("shutdown");
  });
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reloading");
    started.server.reloadTls();
    Promise.resolve(def.onReload?.(started)).catch((err) => log.error({ err }, "reload failed"));
  });
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  process.send?.("ready");
}
