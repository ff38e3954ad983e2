import { readdirSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { MIGRATIONS_DIR, migrate } from "./migrate.ts";

const ALL_MIGRATIONS = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith(".sql"))
  .map((f) => f.replace(/\.sql$/, ""))
  .sort();

const dbs: TestDatabase[] = [];
async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ empty: true });
  dbs.push(db);
  return db;
}
afterEach(async () => {
  await Promise.all(dbs.splice(0).map((d) => d.drop()));
});

async function columns(db: TestDatabase): Promise<Record<string, { type: string; nullable: boolean }>> {
  const r = await db.pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
    "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'web_users'",
  );
  return Object.fromEntries(
    r.rows.map((c) => [c.column_name, { type: c.data_type, nullable: c.is_nullable === "YES" }]),
  );
}

async function primaryKey(db: TestDatabase): Promise<string | undefined> {
  const r = await db.pool.query<{ def: string }>(
    "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'web_users'::regclass AND contype = 'p'",
  );
  return r.rows[0]?.def;
}

describe("migrations", () => {
  it("create web_users on an empty database, keyed by (domain, node), and run again as a no-op", async () => {
    const db = await emptyDatabase();
    expect(await migrate({ databaseUrl: db.url })).toEqual(ALL_MIGRATIONS);
    expect(await migrate({ databaseUrl: db.url })).toEqual([]);
    const cols = await columns(db);
    expect(Object.keys(cols).sort()).toEqual(
      ["created_at", "disabled_at", "domain", "node", "scram", "token", "updated_at"].sort(),
    );
    expect(cols.token?.nullable).toBe(true);
    expect(await primaryKey(db)).toBe("PRIMARY KEY (domain, node)");
    await expect(
      db.pool.query("INSERT INTO web_users (node, domain) VALUES ('a', 'd'), ('a', 'd')"),
    ).rejects.toMatchObject({ code: "23505" });
  });

  it("upgrade a legacy table in place: rows, types and the legacy columns stay", async () => {
    const db = await emptyDatabase();
    await db.pool.query(`
      CREATE TABLE web_users (node varchar(255), token varchar(255) NOT NULL, domain varchar(255));
      INSERT INTO web_users (node, token, domain) VALUES
        ('393331234567', 'cleartext-1', 'oyo'), ('zabbix', 'cleartext-2', 'liam'), ('xmpp_service', 'pw', 'liam');`);
    await migrate({ databaseUrl: db.url });
    const rows = await db.pool.query(
      "SELECT node, token, domain, scram, disabled_at FROM web_users ORDER BY node",
    );
    expect(rows.rows).toEqual([
      { node: "393331234567", token: "cleartext-1", domain: "oyo", scram: null, disabled_at: null },
      { node: "xmpp_service", token: "pw", domain: "liam", scram: null, disabled_at: null },
      { node: "zabbix", token: "cleartext-2", domain: "liam", scram: null, disabled_at: null },
    ]);
    const cols = await columns(db);
    expect(cols.node?.type).toBe("character varying");
    expect(cols.token?.nullable).toBe(true);
    expect(cols.scram?.type).toBe("jsonb");
    expect(await primaryKey(db)).toBe("PRIMARY KEY (domain, node)");
  });

  it("keep a legacy primary key and add a unique (domain, node) index beside it", async () => {
    const db = await emptyDatabase();
    await db.pool.query(`
      CREATE TABLE web_users (id serial PRIMARY KEY, node text, token text, domain text);
      INSERT INTO web_users (node, token, domain) VALUES ('alice', 'x', 'oyo');`);
    await migrate({ databaseUrl: db.url });
    expect(await primaryKey(db)).toBe("PRIMARY KEY (id)");
    expect((await db.pool.query("SELECT id, node FROM web_users")).rows).toEqual([{ id: 1, node: "alice" }]);
    await expect(
      db.pool.query("INSERT INTO web_users (node, token, domain) VALUES ('alice', 'y', 'oyo')"),
    ).rejects.toMatchObject({ code: "23505" });
  });

  it("stop on accounts with an empty node, and forbid them from then on", async () => {
    const db = await emptyDatabase();
    await db.pool.query(
      "CREATE TABLE web_users (node text, token text, domain text); INSERT INTO web_users VALUES ('', 'a', 'oyo')",
    );
    await expect(migrate({ databaseUrl: db.url })).rejects.toThrow(/1 row\(s\) with an empty node or domain/);
    await db.pool.query("DELETE FROM web_users");
    await migrate({ databaseUrl: db.url });
    await expect(
      db.pool.query("INSERT INTO web_users (node, domain) VALUES ('', 'oyo')"),
    ).rejects.toMatchObject({
      code: "23514",
    });
  });

  it("let several processes migrate at once: one applies, the others wait and find nothing to do", async () => {
    const db = await emptyDatabase();
    const results = await Promise.all([1, 2, 3].map(() => migrate({ databaseUrl: db.url })));
    expect(results.flat()).toEqual(ALL_MIGRATIONS);
  });

  it("stop on duplicated accounts with a message saying what to do, changing nothing", async () => {
    const db = await emptyDatabase();
    await db.pool.query(`
      CREATE TABLE web_users (node text, token text, domain text);
      INSERT INTO web_users VALUES ('bob', 'a', 'oyo'), ('bob', 'b', 'oyo'), ('carol', 'c', 'oyo');`);
    await expect(migrate({ databaseUrl: db.url })).rejects.toThrow(/1 duplicated \(domain, node\) pair/);
    expect(Object.keys(await columns(db)).sort()).toEqual(["domain", "node", "token"]);
    expect((await db.pool.query("SELECT count(*)::int AS n FROM web_users")).rows[0]).toEqual({ n: 3 });
    const applied = await db.pool.query("SELECT to_regclass('pgmigrations') IS NOT NULL AS t");
    if (applied.rows[0].t) {
      expect((await db.pool.query("SELECT count(*)::int AS n FROM pgmigrations")).rows[0]).toEqual({ n: 0 });
    }
  });
});
