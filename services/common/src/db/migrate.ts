import path from "node:path";
import { runner } from "node-pg-migrate";
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

async function migrateOnce(options: MigrateOptions): Promise<string[]> {
  const done = await runner({
    databaseUrl: options.databaseUrl,
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
