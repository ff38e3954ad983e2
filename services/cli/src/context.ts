import { loadConfig } from "#common/config/load.ts";
import type { Config, DomainConfig } from "#common/config/schema.ts";
import { checkDatabase, createPool, type Pool, resolveDatabaseUrl } from "#common/db/pool.ts";
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
  config(): Config;
  /** The database, started (embedded) or checked (DATABASE_URL) on first use. */
  pool(): Promise<Pool>;
  databaseUrl(): Promise<string>;
  domain(name: string): DomainConfig;
  close(): Promise<void>;
  out(line: string): void;
}

export function createCliContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  let config: Config | undefined;
  let url: Promise<string> | undefined;
  let pool: Promise<Pool> | undefined;
  const ctx: CliContext = {
    config() {
      config ??= loadConfig({ env });
      return config;
    },
    databaseUrl() {
      const c = ctx.config();
      url ??= resolveDatabaseUrl(c, createLogger({ log: { ...c.log, level: "warn", pretty: false } }, "cli"));
      return url;
    },
    pool() {
      pool ??= (async () => {
        const c = ctx.config();
        const u = await ctx.databaseUrl();
        const p = createPool(c, u, createLogger({ log: { level: "silent", pretty: false } }, "cli"));
        await checkDatabase(p, u).catch(async (err) => {
          await p.end();
          throw err;
        });
        return p;
      })();
      return pool;
    },
    domain(name) {
      const d = ctx.config().domains[name];
      if (!d) {
        const known = Object.keys(ctx.config().domains).join(", ") || "none";
        throw new CliError(
          `unknown domain "${name}" (configured: ${known}); add it under "domains" in config/<env>.json`,
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
