import { execFile } from "node:child_process";
import { chmod, chown, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../../test/support/free-port.ts";
import { EmbeddedDatabase } from "./embedded.ts";

const run = promisify(execFile);
const dirs: string[] = [];
const started: EmbeddedDatabase[] = [];

async function tempDir(owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "sidecars-embedded-"));
  await chmod(dir, 0o755);
  if (owner) await chown(dir, owner.uid, owner.gid);
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  for (const db of started) await db.stop().catch(() => {});
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Starts the same embedded database from another process, as another pm2 worker would. */
async function startInChild(dataDir: string, port: number, ids: { uid?: number; gid?: number } = {}) {
  const script = `
    import { EmbeddedDatabase } from ${JSON.stringify(path.join(import.meta.dirname, "embedded.ts"))};
    const db = new EmbeddedDatabase({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, database: "app" });
    const r = await db.start();
    console.log(JSON.stringify({ ...r, url: await db.url(), uid: process.getuid() }));`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    ...ids,
    env: { PATH: process.env.PATH ?? "" },
  });
  return JSON.parse(stdout) as { reused: boolean; url: string; uid: number };
}

async function query(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ u: string }>("SELECT current_database() AS u")).rows[0]?.u ?? "";
  } finally {
    await c.end();
  }
}

describe("embedded PostgreSQL", () => {
  it("starts once, is reused by a second start from another process, stops, and says so", async () => {
    const dataDir = path.join(await tempDir(), "pg");
    const db = new EmbeddedDatabase({ dataDir, port: await freePort(), database: "app" });
    started.push(db);
    expect(await db.status()).toMatchObject({ running: false, initialised: false });

    const [a, b] = await Promise.all([db.start(), startInChild(dataDir, db.port)]);
    expect([a.reused, b.reused].sort()).toEqual([false, true]); // exactly one of them started it
    expect(await query(await db.url())).toBe("app");
    expect(await query(b.url)).toBe("app");
    const status = await db.status();
    expect(status).toMatchObject({ running: true, initialised: true, port: db.port });
    expect(status.pid).toBeGreaterThan(0);
    expect((await stat(`${dataDir}.credentials.json`)).mode & 0o777).toBe(0o600);

    expect(await db.stop()).toBe(true);
    expect(await db.status()).toMatchObject({ running: false, initialised: true });
    expect(await db.stop()).toBe(false);
    await expect(query(await db.url())).rejects.toMatchObject({ code: "ECONNREFUSED" });

    // data survives a restart
    expect(await db.start()).toEqual({ reused: false });
    expect(await query(await db.url())).toBe("app");
    await db.stop();
  });

  it("works for an ordinary user (as root: the nobody user)", async () => {
    const root = process.getuid?.() === 0;
    const ids = root ? { uid: 65534, gid: 65534 } : {};
    const dataDir = path.join(await tempDir(root ? { uid: 65534, gid: 65534 } : undefined), "pg");
    const port = await freePort();
    const r = await startInChild(dataDir, port, ids);
    const db = new EmbeddedDatabase({ dataDir, port, database: "app" });
    started.push(db);
    expect(r).toMatchObject({ reused: false, uid: root ? 65534 : process.getuid?.() });
    expect(await query(r.url)).toBe("app");
    const owner = await stat(dataDir);
    expect(owner.uid).toBe(root ? 65534 : process.getuid?.());
    // the server runs as that user, not as postgres or root
    const pid = (await db.status()).pid;
    if (pid) expect((await stat(`/proc/${pid}`)).uid).toBe(owner.uid);
    if (root) {
      await run(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `
        import { EmbeddedDatabase } from ${JSON.stringify(path.join(import.meta.dirname, "embedded.ts"))};
        await new EmbeddedDatabase({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, database: "app" }).stop();`,
        ],
        ids,
      );
    } else {
      await db.stop();
    }
    expect((await db.status()).running).toBe(false);
  });

  it("names the port and the fix when the port is taken", async () => {
    const dataDir = path.join(await tempDir(), "pg");
    const first = new EmbeddedDatabase({ dataDir, port: await freePort(), database: "app" });
    started.push(first);
    await first.start();
    const other = new EmbeddedDatabase({
      dataDir: path.join(await tempDir(), "pg"),
      port: first.port,
      database: "app",
    });
    await expect(other.start()).rejects.toThrow(
      new RegExp(
        `could not start on 127\\.0\\.0\\.1:${first.port} .*free the port or set database\\.embedded\\.port`,
      ),
    );
    await first.stop();
  });
});
