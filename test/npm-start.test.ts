import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { EmbeddedDatabase } from "#common/db/embedded.ts";
import { runSidecars } from "./support/cli.ts";
import { freePort } from "./support/free-port.ts";
import { ROOT, waitForOk } from "./support/processes.ts";

// `npm start` exactly as a newcomer runs it (node scripts/start.ts is what the npm script runs), with its own
// embedded database folder and ports so it cannot disturb a developer's running stack.
const work = mkdtempSync(path.join(tmpdir(), "sidecars-start-"));
chmodSync(work, 0o755);
let child: ChildProcess | undefined;

afterAll(() => {
  if (child?.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

describe("npm start", () => {
  it("brings the stack up on a fresh embedded database within 60 s, and Ctrl-C stops everything", async () => {
    const configDir = path.join(work, "config");
    cpSync(path.join(ROOT, "config"), configDir, { recursive: true });
    const dev = JSON.parse(readFileSync(path.join(configDir, "development.json"), "utf8"));
    const dataDir = path.join(work, "postgres");
    const pgPort = await freePort();
    dev.database = { embedded: { dataDir, port: pgPort, database: "sidecars" } };
    const ports = {
      http: await freePort(),
      httpInternal: await freePort(),
      auth: await freePort(),
      buddies: await freePort(),
    };
    writeFileSync(path.join(configDir, "development.json"), JSON.stringify(dev));

    let output = "";
    const t0 = Date.now();
    child = spawn(process.execPath, [path.join(ROOT, "scripts/start.ts")], {
      cwd: ROOT,
      detached: true, // its own process group, like a terminal's foreground job
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: work,
        CONFIG_DIR: configDir,
        PM2_HOME: path.join(work, "pm2"),
        SIDECARS_LOG_DIR: path.join(work, "log"),
        HTTP_UTILITY_PORT: String(ports.http),
        HTTP_UTILITY_INTERNAL_PORT: String(ports.httpInternal), // MongooseIM's hooks, a port of their own
        AUTH_PORT: String(ports.auth),
        BUDDIES_ADMIN_PORT: String(ports.buddies),
      },
    });
    child.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child?.on("exit", (code) => resolve(code)));

    await Promise.all([
      waitForOk(`http://127.0.0.1:${ports.http}/readyz`, 60_000),
      waitForOk(`http://127.0.0.1:${ports.httpInternal}/readyz`, 60_000),
      waitForOk(`http://127.0.0.1:${ports.auth}/readyz`, 60_000),
      waitForOk(`http://127.0.0.1:${ports.buddies}/readyz`, 60_000),
    ]).catch((err) => {
      throw new Error(`${(err as Error).message}\n--- npm start output ---\n${output}`);
    });
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(output).toMatch(/embedded PostgreSQL started on 127\.0\.0\.1:\d+/);
    expect(output).toMatch(/migrations applied: 1763780000000_web-users/);
    // the generated basic_auth secret is private; var/ stays reachable for the embedded database's user
    const secret = path.join(ROOT, "var/secrets/auth-basic-auth");
    expect(readFileSync(secret, "utf8")).toMatch(/^mongooseim:[\w-]{24}\n$/);
    expect(statSync(secret).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(secret)).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(ROOT, "var")).mode & 0o001).toBe(0o001);
    // what pm2 and the services write is not for other users of the machine (umask 027)
    const logs = readdirSync(path.join(work, "log"));
    expect(logs.length).toBeGreaterThan(0);
    for (const f of logs) expect(statSync(path.join(work, "log", f)).mode & 0o007, f).toBe(0);

    // the embedded database holds the migrated schema, and its credentials are private
    const db = new EmbeddedDatabase({ dataDir, port: pgPort, database: "sidecars" });
    expect(statSync(`${dataDir}.credentials.json`).mode & 0o777).toBe(0o600);
    const client = new pg.Client({ connectionString: await db.url() });
    await client.connect();
    expect((await client.query("SELECT count(*)::int AS n FROM web_users")).rows).toEqual([{ n: 0 }]);
    await client.end();

    // the operator's check of the running development stack: the CLI finds the generated basic_auth by itself
    const doctor = await runSidecars(["doctor", "--json", "--ejabberd-config", path.join(work, "none.yml")], {
      env: {
        APP_ENV: "development",
        HOME: work,
        CONFIG_DIR: configDir,
        HTTP_UTILITY_PORT: String(ports.http),
        AUTH_PORT: String(ports.auth),
        BUDDIES_ADMIN_PORT: String(ports.buddies),
      },
    });
    const checks = (JSON.parse(doctor.stdout) as { checks: { check: string; status: string }[] }).checks;
    expect(checks.filter((c) => c.status === "fail")).toEqual([]);
    expect(checks.find((c) => c.check === "auth service")?.status).toBe("ok");

    process.kill(-(child.pid as number), "SIGINT"); // Ctrl-C
    expect(await exited).toBe(0);
    expect(output).toMatch(/embedded PostgreSQL stopped/);
    expect((await db.status()).running).toBe(false);
    for (const [name, port] of Object.entries(ports)) {
      const answer = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => `${name} still answers ${r.status}`,
        () => `${name} stopped`,
      );
      expect(answer).toBe(`${name} stopped`);
    }
  });
});
