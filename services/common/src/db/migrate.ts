import path from "node:path";
import { runner } from "node-pg-migrate";
import pg from "pg";
import { projectRoot } from "../paths.ts";

export const MIGRATIONS_DIR = path.join(projectRoot, "migrations");
export const MIGRATIONS_TABLE = "pgmigrations";

export interface MigrateOptions {
  databaseUrl: string;
  direction?: "up" | "down";
  count?: number;
  dryRun?: boolean;
  log?: (msg: string) => void;
}

const LOCKED = /Another migration is already running/;

/**
 * Apply (or revert) migrations in one transaction. node-pg-migrate takes an advisory lock and fails when
 * another process holds it; several processes may start at once (pm2 workers, a deploy), so wait our turn.
 */
export async function migrate(options: MigrateOptions, waitMs = 60_000): Promise<string[]> {
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      return await migrateOnce(options);
    } catch (err) {
      if (!LOCKED.test((err as Error).message) || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Our own connection, not one node-pg-migrate opens: it ends that one without waiting, so the connection could
 * still be closing when migrate() returned, and a server that cut it then (a restart, `DROP DATABASE … FORCE`)
 * raised an error event that nothing listened to (an uncaught exception; a test run saw one).
 */
async function migrateOnce(options: MigrateOptions): Promise<string[]> {
  const client = new pg.Client({ connectionString: options.databaseUrl });
  client.on("error", () => {}); // a cut connection fails the statement that needed it, which is reported
  await client.connect();
  try {
    return await runMigrations(client, options);
  } finally {
    await client.end().catch(() => {});
  }
}

async function runMigrations(client: pg.Client, options: MigrateOptions): Promise<string[]> {
  const done = await runner({
    dbClient: client,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction: options.direction ?? "up",
    count: options.count ?? Number.POSITIVE_INFINITY,
    dryRun: options.dryRun ?? false,
    singleTransaction: true,
    checkOrder: true,
    verbose: false,
    log: options.log ?? (() => {}),
    logger: {
      debug: () => {},
      info: options.log ?? (() => {}),
      warn: options.log ?? (() => {}),
      error: options.log ?? (() => {}),
    },
  });
  return done.map((m) => m.name);
}
