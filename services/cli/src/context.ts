import { ConfigError, loadConfig } from "#common/config/load.ts";
import { createRuntimeDomains, type RuntimeDomains } from "#common/config/runtime-domains.ts";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import {
  checkDatabase,
  createPool,
  embeddedDatabase,
  type Pool,
  resolveDatabaseUrl,
} from "#common/db/pool.ts";
import { createLogger } from "#common/logger.ts";

/** A failure the CLI prints as one line and exits non-zero with. */
export class CliError extends Error {
  override name = "CliError";
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface CliContext {
  /** The environment the CLI runs with (config loading reads it; nothing else should). */
  readonly env: NodeJS.ProcessEnv;
  /**
   * The config: the files, the environment and, once `beforeAction` read them, the domains kept in the
   * database (config/runtime-domains.ts), as the services see them.
   */
  config(): Config;
  /** The database, started (embedded) or checked (DATABASE_URL) on first use. */
  pool(): Promise<Pool>;
  databaseUrl(): Promise<string>;
  domain(name: string): DomainConfig;
  /** The domains kept in the database, on `pool()`. */
  runtimeDomains(): Promise<RuntimeDomains>;
  /**
   * Before a command's action (main.ts): the database's domains join `config()`, so that `users add
   * alice@<a domain added at runtime>` finds it. Never fails: what keeps them out is told by `domain()`.
   */
  beforeAction(command: string): Promise<void>;
  close(): Promise<void>;
  out(line: string): void;
}

/**
 * Commands that do not read the database's domains first: they manage the database itself (`db`, `migrate`:
 * the table may not be there yet) or need no domain.
 */
const WITHOUT_DATABASE_DOMAINS = ["db", "migrate", "domains example", "api-keys hash"];

export function createCliContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  let settings: Config | undefined;
  let config: Config | undefined;
  let loaded: ConfigError | undefined;
  let unread: string | undefined;
  let url: Promise<string> | undefined;
  let pool: Promise<Pool> | undefined;
  let runtime: Promise<RuntimeDomains> | undefined;
  const silent = createLogger({ log: { level: "silent", pretty: false } }, "cli");
  /** Where the database is: the files and the environment alone (the database's domains come from there). */
  const database = () => {
    settings ??= loadConfig({ env, databaseDomains: "unread" });
    return settings;
  };
  const ctx: CliContext = {
    env,
    config() {
      if (loaded) throw loaded;
      config ??= loadConfig({ env });
      return config;
    },
    databaseUrl() {
      const c = database();
      url ??= resolveDatabaseUrl(c, createLogger({ log: { ...c.log, level: "warn", pretty: false } }, "cli"));
      return url;
    },
    pool() {
      pool ??= (async () => {
        const c = database();
        const u = await ctx.databaseUrl();
        const p = createPool(c, u, silent);
        await checkDatabase(p, u).catch(async (err) => {
          await p.end();
          throw err;
        });
        return p;
      })();
      return pool;
    },
    runtimeDomains() {
      runtime ??= ctx.pool().then((p) => createRuntimeDomains({ load: { env }, pool: p, log: silent }));
      return runtime;
    },
    async beforeAction(command) {
      if (WITHOUT_DATABASE_DOMAINS.some((c) => command === c || command.startsWith(`${c} `))) return;
      let c: Config;
      try {
        c = database();
      } catch {
        return; // the command meets the config's problem itself, or does without it
      }
      // an embedded PostgreSQL that is not running is not started for this: a service needs it running anyway
      if (
        !c.database.url &&
        !(await embeddedDatabase(c)
          .status()
          .then(
            (s) => s.running,
            () => false,
          ))
      ) {
        unread = "the embedded PostgreSQL is not running (`npx sidecars db start`)";
        return;
      }
      try {
        config = await (await ctx.runtimeDomains()).load();
      } catch (err) {
        if (err instanceof ConfigError) loaded = err;
        else unread = (err as Error).message;
      }
    },
    domain(name) {
      const d = Object.hasOwn(ctx.config().domains, name) ? ctx.config().domains[name] : undefined;
      if (!d) {
        const known = Object.keys(ctx.config().domains).join(", ") || "none";
        throw new CliError(
          `unknown domain "${name}" (configured: ${known}); add it under "domains" in config/<env>.json` +
            (unread ? `; the database's domains were not read: ${unread}` : ""),
        );
      }
      return d;
    },
    async close() {
      if (pool) await (await pool.catch(() => undefined))?.end();
    },
    out(line) {
      process.stdout.write(`${line}\n`);
    },
  };
  return ctx;
}
