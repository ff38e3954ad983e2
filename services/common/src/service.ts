import type { RequestListener } from "node:http";
import { loadConfig } from "./config/load.ts";
import { createRuntimeDomains, type RuntimeDomains, replaceDomains } from "./config/runtime-domains.ts";
import type { Config } from "./config/schema.ts";
import { type Listener, startListener } from "./db/listener.ts";
import { checkDatabase, createPool, type Pool, resolveDatabaseUrl } from "./db/pool.ts";
import { StartupError } from "./errors.ts";
import { type ClusterMetrics, pm2Cluster, startClusterMetrics } from "./http/cluster-metrics.ts";
import { createMetrics, type Metrics } from "./http/metrics.ts";
import { type RunningServer, startServer } from "./http/server.ts";
import { createLogger, type Logger } from "./logger.ts";

/** What every service's composition root receives before it builds its app. */
export interface ServiceContext {
  config: Config;
  log: Logger;
  pool: Pool;
  /**
   * The process's one LISTEN connection (db/listener.ts): whatever wants PostgreSQL notifications subscribes
   * to it (the auth core's cache, the buddies runner), so a process holds one such connection, not one each.
   */
  listener: Listener;
  /**
   * The registry `/metrics` serves, labelled with the service's name: what the service counts goes in it,
   * and ops/ (the Grafana dashboard and the alert rules) queries only what it holds (test/ops.test.ts).
   */
  metrics: Metrics;
  /**
   * The domains kept in the database (config/runtime-domains.ts), for what changes them (the buddies admin
   * API). `config.domains` holds them already, kept up to date in place. startService always sets it.
   */
  domains?: RuntimeDomains;
}

export interface ListenOptions {
  host: string;
  port: number;
  portEnv?: string;
  rawRequestBytes?: boolean;
  tls?: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined };
}

/**
 * What a service's `createApp` builds: its request handlers, and the life of what it built for them.
 * Everything it holds lives in this value (closures over its features), none of it in module state.
 */
export interface App {
  /** The public listener's handler (`ServiceDefinition.listen`). */
  handler: RequestListener;
  /**
   * A second listener, for endpoints that only local processes may reach (http-utility's MongooseIM hooks):
   * its own port, its own handler. In a pm2 cluster every worker listens on both ports, the primary sharing
   * each among them.
   */
  internal?: { listen: ListenOptions; handler: RequestListener };
  /** Once both servers listen, with the public URL (the buddies runner advertises it to the cluster). */
  onListening?(url: string): void | Promise<void>;
  /**
   * SIGHUP, after the certificates, and a change of the database's domains (NOTIFY domains_changed, within a
   * second on every machine): the config as the files, the environment and the database say now (new domains
   * and their modules). A config that no longer loads leaves the app as it was. Once this resolves, the
   * context's `config.domains` is updated in place to the new domains.
   */
  reload?(config: Config): void | Promise<void>;
  /** At shutdown, after the servers stopped (no request in flight), before the listener and the pool close. */
  close?(): void | Promise<void>;
}

export interface ServiceDefinition {
  name: string;
  listen: (config: Config) => ListenOptions & { portEnv: string };
  createApp: (ctx: ServiceContext) => App | Promise<App>;
}

export interface StartedService extends ServiceContext {
  app: App;
  server: RunningServer;
  /** The internal listener, when the app has one. */
  internalServer?: RunningServer;
  /** What SIGHUP does: the certificates, then the app's `reload` with the config loaded again. */
  reload(): Promise<void>;
  shutdown: (signal?: string) => Promise<void>;
}

/**
 * How long a scrape waits for a sibling worker's metrics (cluster-metrics.ts) before it answers without them:
 * well under Prometheus' default scrape_timeout of 10 s, and far over the few milliseconds a loaded worker takes.
 */
const SIBLING_METRICS_TIMEOUT_MS = 1000;

/** Prints a startup failure as the one line (or list) it is and exits 1. */
export function exitOnStartupError(err: unknown, log?: Logger): never {
  const message =
    err instanceof StartupError ? err.message : `unexpected error at start: ${(err as Error)?.stack ?? err}`;
  log?.fatal(message);
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/**
 * Config, logger, database, LISTEN connection, app, listening servers: the same start for all three services.
 * SIGINT/SIGTERM (and pm2's `shutdown` message) stop gracefully within `shutdown.timeoutMs`; SIGHUP reloads.
 */
export async function startService(
  def: ServiceDefinition,
  env: NodeJS.ProcessEnv = process.env,
): Promise<StartedService> {
  // the files and the environment: where the database is, whose domains then join the files' own
  const settings = loadConfig({ env, databaseDomains: "unread" });
  const log = createLogger(settings, def.name);
  const url = await resolveDatabaseUrl(settings, log);
  // what the service writes from here on (media, scratch files) is not for other users of the machine; the
  // embedded PostgreSQL, which runs as another user, was started just above and keeps its own
  process.umask(0o027);
  const pool = createPool(settings, url, log);
  let listener: Listener | undefined;
  try {
    await checkDatabase(pool, url);
    listener = startListener({ connectionString: url, log });
    const domains = createRuntimeDomains({ load: { env }, pool, log });
    // before the app is built: it serves the database's domains from its first request
    const config = await domains.load();
    const ctx: ServiceContext = { config, log, pool, listener, metrics: createMetrics(def.name), domains };
    const app = await def.createApp(ctx);
    const servers: RunningServer[] = [];
    let clusterMetrics: ClusterMetrics | undefined;
    try {
      // before the servers listen: a worker that takes requests is one its siblings' scrapes count
      const cluster = pm2Cluster(env);
      if (cluster) {
        clusterMetrics = await startClusterMetrics({
          registry: ctx.metrics.registry,
          service: def.name,
          ...cluster,
          timeoutMs: SIBLING_METRICS_TIMEOUT_MS,
        }).catch((err) => {
          log.warn({ err }, "metrics of the other workers unavailable: /metrics shows this worker's only");
          return undefined;
        });
        if (clusterMetrics) ctx.metrics.scrape = clusterMetrics.scrape;
      }
      const server = await startServer(app.handler, {
        name: def.name,
        ...def.listen(config),
        keepAliveTimeoutMs: config.shutdown.keepAliveTimeoutMs,
        log,
      });
      servers.push(server);
      const internalServer = app.internal
        ? await startServer(app.internal.handler, {
            name: `${def.name} (internal)`,
            ...app.internal.listen,
            keepAliveTimeoutMs: config.shutdown.keepAliveTimeoutMs,
            log,
          })
        : undefined;
      if (internalServer) servers.push(internalServer);
      log.info(
        { url: server.url, internalUrl: internalServer?.url, env: config.env },
        `${def.name} listening`,
      );
      await app.onListening?.(server.url);
      const watch = domains.watch(ctx.listener, async (next) => {
        await app.reload?.(next);
        replaceDomains(ctx.config, next);
      });

      let done: Promise<void> | undefined;
      const shutdown = (signal = "shutdown") => {
        done ??= (async () => {
          log.info({ signal }, "shutting down: finishing in-flight requests");
          await Promise.all(servers.map((s) => s.close(config.shutdown.timeoutMs)));
          await clusterMetrics?.close();
          watch.close();
          await app.close?.();
          await ctx.listener.close();
          await pool.end();
          log.info("stopped");
        })();
        return done;
      };
      const reload = async () => {
        for (const s of servers) s.reloadTls();
        await watch.reload();
      };
      return {
        ...ctx,
        app,
        server,
        ...(internalServer ? { internalServer } : {}),
        reload,
        shutdown,
      };
    } catch (err) {
      await Promise.all(servers.map((s) => s.close(0)));
      await clusterMetrics?.close();
      await Promise.resolve(app.close?.()).catch((e) => log.warn({ err: e }, "cleanup after a failed start"));
      throw err;
    }
  } catch (err) {
    await listener?.close();
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
    started.reload().catch((err) => log.error({ err }, "reload failed"));
  });
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection"));
  process.send?.("ready");
}
