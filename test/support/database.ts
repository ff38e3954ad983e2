import { randomBytes } from "node:crypto";
import pg from "pg";
import { pino } from "pino";
import { inject } from "vitest";
import { type Listener, startListener } from "#common/db/listener.ts";
import { TEMPLATE_DATABASE } from "./global-setup.ts";

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  /** Its LISTEN connection, as a service process has one (common/service.ts); opened on first use. */
  readonly listener: Listener;
  /** Drops the database (closing the listener and the pool first). */
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh database for one test file: a copy of the migrated template, or an empty one. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString("hex")}`;
  await admin((c) =>
    c.query(`CREATE DATABASE ${name}${options.empty ? "" : ` TEMPLATE ${TEMPLATE_DATABASE}`}`),
  );
  const url = withDatabase(inject("adminDatabaseUrl"), name);
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  // an idle client cut off (drop()'s DROP … WITH (FORCE) while a connection is still closing) is reported as
  // an 'error' event, which without a listener is an unhandled error that fails the whole run; queries still
  // fail loudly on their own
  pool.on("error", () => {});
  let listener: Listener | undefined;
  return {
    url,
    pool,
    get listener() {
      listener ??= startListener({ connectionString: url, log: pino({ level: "silent" }) });
      return listener;
    },
    async drop() {
      await listener?.close();
      await pool.end();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
