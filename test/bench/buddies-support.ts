import { createHash, randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { loadConfig } from "#common/config/load.ts";
import type { DomainConfig } from "#common/config/schema.ts";
import { projectRoot } from "#common/paths.ts";
import { addUser, credentialsFor } from "#common/users/web-users.ts";
import { type Ejabberd, startEjabberd } from "../support/ejabberd.ts";
import { benchDatabase } from "./bench-database.ts";
import type { BenchContext } from "./frame.ts";

/**
 * What buddies-online.bench.ts stands on: a database of its own (created on the server the other benches
 * use, migrated, dropped afterwards), a private ejabberd 23.01 logging users in through our extauth, the
 * web_users accounts of both sides and the runner's config. The processes compared are in
 * buddies-processes.ts, the clients that time echoes in buddies-probes.ts.
 */

export const DOMAIN = "localhost";
export const RESOURCE = "buddy";
const PASSWORD = "bench-buddy-password";
const ADMIN_KEY = randomBytes(16).toString("hex");
const LISTEN_BACKLOG = 1024;
const DATABASE_PREFIX = "bench_buddies_";

export const username = (prefix: string, i: number) => `${prefix}-${String(i).padStart(3, "0")}`;

function readPidSync(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "0";
  }
}

/** A fresh migrated database on DATABASE_URL's server or the embedded one (stopped again if started here). */

/**
 * ejabberd 23.01 listens with a backlog of 5: 500 connections at once overflow it, and the dropped ones
 * wait for the kernel's SYN retransmissions (1 s, 3 s, 7 s…), which then decide both sides' times. The
 * listeners get a deeper queue (capped by net.core.somaxconn) and ejabberd a restart to apply it.
 */
async function raiseListenBacklog(ej: Ejabberd, backlog: number): Promise<void> {
  const file = path.join(ej.dir, "ejabberd.yml");
  const yml = await readFile(file, "utf8");
  const raised = yml.replace(/^( +)module: ejabberd_c2s$/gm, `$1module: ejabberd_c2s\n$1backlog: ${backlog}`);
  if (raised === yml) throw new Error(`${file}: no ejabberd_c2s listener to give a backlog`);
  await writeFile(file, raised); // an existing file: it keeps its owner, the ejabberd user
  await ej.restart();
}

export interface BuddiesBench {
  /** Of every account. */
  password: string;
  /** HTTP Authorization of the runner's admin API. */
  adminAuthorization: string;
  ej: Ejabberd;
  pool: pg.Pool;
  databaseUrl: string;
  /** xmpps://127.0.0.1:<port> */
  service: string;
  caFile: string;
  passwordFile: string;
  /** CONFIG_DIR of the runner: config/ with a test.json defining the buddies. */
  runnerConfigDir: string;
}

/**
 * Database, ejabberd, accounts and the runner's config. `buddies` echo buddies `echo-NNN`, as many bare
 * accounts `bare-NNN` and `probes` probe accounts, all with one password (one derivation for all rows).
 */
export async function startBuddiesBench(
  ctx: BenchContext,
  o: { buddies: number; probes: number },
): Promise<BuddiesBench> {
  const databaseUrl = await benchDatabase(ctx, DATABASE_PREFIX);
  const work = await mkdtemp(path.join(os.tmpdir(), "sidecars-bench-buddies-"));
  ctx.defer(() => rm(work, { recursive: true, force: true }));

  const repoConfig = path.join(projectRoot, "config");
  const defaultJson = await readFile(path.join(repoConfig, "default.json"), "utf8");
  const testJson = JSON.parse(await readFile(path.join(repoConfig, "test.json"), "utf8")) as Record<
    string,
    unknown
  >;
  // Every login is a password check through the one extauth program, for both sides alike; the checks are
  // remembered for the whole run, so the warm-up pays the PBKDF2 verifications and the rounds do not.
  const domains = {
    [DOMAIN]: {
      authenticator: { kind: "web_users", options: {} },
      passwordFormat: "plain",
      cacheTtlSeconds: 86_400,
    },
  };
  const log = { level: "warn", pretty: false };
  const ej = await startEjabberd({
    hosts: [DOMAIN],
    files: {
      "config/default.json": defaultJson,
      "config/test.json": JSON.stringify({ ...testJson, log, domains }),
    },
    extauthEnv: (dir) => ({
      APP_ENV: "test",
      DATABASE_URL: databaseUrl,
      CONFIG_DIR: path.join(dir, "config"),
    }),
  });
  ctx.defer(() => ej.stop());
  // an interrupted bench (run.ts exits at SIGINT without the cleanups) leaves no ejabberd or files behind
  const lastResort = () => {
    const beam = Number(readPidSync(path.join(ej.dir, "ejabberd.pid")));
    if (beam > 0) {
      try {
        process.kill(beam, "SIGKILL");
      } catch {
        // gone already
      }
    }
    rmSync(ej.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  };
  process.once("exit", lastResort);
  ctx.defer(() => process.off("exit", lastResort));
  await raiseListenBacklog(ej, LISTEN_BACKLOG);

  const caFile = path.join(work, "ca.pem");
  const passwordFile = path.join(work, "buddy-password");
  await writeFile(caFile, ej.ca);
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  const service = `xmpps://127.0.0.1:${ej.tlsPort}`;
  const runnerConfigDir = path.join(work, "config");
  await mkdir(runnerConfigDir);
  await writeFile(path.join(runnerConfigDir, "default.json"), defaultJson);
  const definitions = Object.fromEntries(
    Array.from({ length: o.buddies }, (_, i) => [
      username("echo", i),
      { kind: "echo", password: { file: passwordFile } },
    ]),
  );
  const services = testJson.services as Record<string, Record<string, unknown>>;
  const sha256 = createHash("sha256").update(ADMIN_KEY).digest("hex");
  await writeFile(
    path.join(runnerConfigDir, "test.json"),
    `${JSON.stringify(
      {
        ...testJson,
        log,
        services: { ...services, buddies: { ...services.buddies, admins: { bench: { sha256 } } } },
        domains,
        buddies: {
          service,
          tls: { ca: caFile },
          resource: RESOURCE,
          // also per domain: the schema gives a domain's `tls` its defaults when absent, so
          // `buddies.tls` alone would not reach the buddies of a domain listed here
          domains: { [DOMAIN]: { tls: { ca: caFile }, definitions } },
        },
      },
      null,
      2,
    )}\n`,
  );

  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  ctx.defer(() => pool.end());
  const config = loadConfig({ configDir: runnerConfigDir, env: { APP_ENV: "test" } });
  const domain = config.domains[DOMAIN] as DomainConfig;
  const { scram } = await credentialsFor({ cleartext: PASSWORD }, domain);
  const nodes = [
    ...Array.from({ length: o.buddies }, (_, i) => username("echo", i)),
    ...Array.from({ length: o.buddies }, (_, i) => username("bare", i)),
    ...Array.from({ length: o.probes }, (_, i) => username("probe", i)),
  ];
  for (let i = 0; i < nodes.length; i += 50) {
    await Promise.all(
      nodes.slice(i, i + 50).map((node) => addUser(pool, { node, domain: DOMAIN }, { scram }, domain)),
    );
  }
  return {
    password: PASSWORD,
    adminAuthorization: `Basic ${Buffer.from(`bench:${ADMIN_KEY}`).toString("base64")}`,
    ej,
    pool,
    databaseUrl,
    service,
    caFile,
    passwordFile,
    runnerConfigDir,
  };
}
