import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { EmbeddedDatabase } from "#common/db/embedded.ts";
import { migrate } from "#common/db/migrate.ts";
import { freePort } from "./free-port.ts";

export const TEMPLATE_DATABASE = "sidecars_template";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the test cluster's `postgres` database (admin connection). */
    adminDatabaseUrl: string;
  }
}

/** One embedded PostgreSQL for the run, and a migrated template database the test files clone. */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(path.join(tmpdir(), "sidecars-test-pg-"));
  await chmod(dir, 0o755); // as root, the server runs as the postgres user, who must reach the folder
  const db = new EmbeddedDatabase({
    dataDir: path.join(dir, "data"),
    port: await freePort(),
    database: TEMPLATE_DATABASE,
  });
  await db.start();
  await migrate({ databaseUrl: await db.url(TEMPLATE_DATABASE) });
  // a template must have no connections while it is cloned
  const admin = new pg.Client({ connectionString: await db.url("postgres") });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${TEMPLATE_DATABASE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
  await admin.end();
  project.provide("adminDatabaseUrl", await db.url("postgres"));
  return async () => {
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
