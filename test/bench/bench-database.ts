import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import pg from "pg";
import { deepMerge, loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { migrate } from "#common/db/migrate.ts";
import { embeddedDatabase, resolveDatabaseUrl } from "#common/db/pool.ts";
import { testConfigDir } from "../support/config-dir.ts";
import type { BenchContext } from "./frame.ts";

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A fresh migrated database `<prefix><random>` on DATABASE_URL's server or the embedded one (stopped again
 * if started here), dropped at the end; databases of the prefix left by an interrupted run are dropped first.
 */
export async function benchDatabase(ctx: BenchContext, prefix: string): Promise<string> {
  const config = loadConfig({ env: { ...process.env, APP_ENV: "test" } });
  let serverUrl: string;
  if (config.database.url) {
    serverUrl = config.database.url;
  } else {
    const embedded = embeddedDatabase(config);
    const { reused } = await embedded.start();
    if (!reused) ctx.defer(() => embedded.stop());
    serverUrl = await embedded.url("postgres");
  }
  const name = `${prefix}${randomBytes(4).toString("hex")}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      return (await c.query<{ datname: string }>(sql)).rows;
    } finally {
      await c.end();
    }
  };
  // left by an interrupted run
  for (const { datname } of await admin(`SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'`)) {
    await admin(`DROP DATABASE IF EXISTS "${datname.replaceAll('"', '""')}" WITH (FORCE)`);
  }
  await admin(`CREATE DATABASE ${name}`);
  ctx.defer(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const url = withDatabase(serverUrl, name);
  await migrate({ databaseUrl: url });
  return url;
}

/**
 * A copy of config/ whose test.json has `patch` merged over it (as config files merge: object by object), the
 * CONFIG_DIR of the services a benchmark starts; removed at the end.
 */
export function benchConfigDir(ctx: BenchContext, patch: Record<string, unknown>): string {
  const dir = testConfigDir((test) => Object.assign(test, deepMerge(test, patch)));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * What a benchmark's service runs with: the environment of `configDir` (APP_ENV=test, warn-level logs), its
 * config, and a pool of `poolMax` on the database the service will use (DATABASE_URL if set, otherwise the
 * embedded one under var/postgres), migrated; the pool ends with the benchmark.
 */
export async function benchServiceDatabase(
  ctx: BenchContext,
  configDir: string,
  poolMax: number,
): Promise<{ env: NodeJS.ProcessEnv; config: Config; pool: pg.Pool }> {
  const env = { ...process.env, APP_ENV: "test", CONFIG_DIR: configDir, LOG_LEVEL: "warn" };
  const config = loadConfig({ env });
  const url = await resolveDatabaseUrl(config);
  await migrate({ databaseUrl: url });
  const pool = new pg.Pool({ connectionString: url, max: poolMax });
  ctx.defer(() => pool.end());
  return { env, config, pool };
}
