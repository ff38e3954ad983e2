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

/** Apply (or revert) migrations; several processes may call it at once: node-pg-migrate takes a lock. */
export async function migrate(options: MigrateOptions): Promise<string[]> {
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
