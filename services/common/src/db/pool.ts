import pg from "pg";
import type { Config } from "../config/schema.ts";
import { StartupError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { fromRoot } from "../paths.ts";
import { EmbeddedDatabase } from "./embedded.ts";

export type Pool = pg.Pool;

export function embeddedDatabase(config: Pick<Config, "database">, onLog?: (line: string) => void) {
  const e = config.database.embedded;
  return new EmbeddedDatabase({ dataDir: fromRoot(e.dataDir), port: e.port, database: e.database, onLog });
}

/** DATABASE_URL when set; otherwise the embedded PostgreSQL, started (or reused) on the way. */
export async function resolveDatabaseUrl(config: Pick<Config, "database">, log?: Logger): Promise<string> {
  if (config.database.url) return config.database.url;
  const db = embeddedDatabase(config, (line) => log?.trace({ embedded: line.trim() }, "embedded postgres"));
  const { reused } = await db.start();
  log?.info({ port: db.port, dataDir: db.dataDir, reused }, "embedded PostgreSQL ready");
  return db.url();
}

/** Host and port of a URL, for messages: never the password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

export function createPool(config: Pick<Config, "database">, url: string, log: Logger): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: config.database.poolMax,
    connectionTimeoutMillis: config.database.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    ...(config.database.statementTimeoutMs > 0
      ? { statement_timeout: config.database.statementTimeoutMs }
      : {}),
    application_name: "xmpp-sidecars",
  });
  // An idle client losing its connection (database restarted) must not crash the process.
  pool.on("error", (err) => log.warn({ err: err.message }, "idle database connection lost"));
  return pool;
}

/** At start: one query, or a StartupError naming the database and the fix. */
export async function checkDatabase(pool: Pool, url: string): Promise<void> {
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new StartupError(
      `database ${describeUrl(url)} unreachable (${e.code ?? e.message}): start it (\`sidecars db start\` ` +
        "for the embedded one) or fix DATABASE_URL",
    );
  }
}
