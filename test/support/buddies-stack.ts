import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { addUser } from "#common/users/web-users.ts";
import {
  BUDDIES_MODULES,
  type BuddiesProcess,
  DOMAINS,
  type Domain,
  domainsConfig,
  startBuddies,
  writeBuddiesConfig,
} from "./buddies.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";
import { type Ejabberd, ejabberdUnavailable, startEjabberd } from "./ejabberd.ts";
import { ROOT } from "./processes.ts";
import { connectUser, type XmppUser } from "./xmpp-user.ts";

/**
 * One buddies stack for a test file: a migrated database, ejabberd 23.01 (Debian) for two domains checking
 * passwords through `sidecars extauth` against web_users, the buddies' accounts and password files, and
 * the config folder the runner processes start from. Every process and client it starts, `close()` ends.
 */

export interface BuddySpec {
  kind: string;
  /** Its web_users password. */
  password: string;
  /** What its password file says, when that is not `password` (a wrong password). */
  filePassword?: string;
  rooms?: string[];
  options?: Record<string, unknown>;
}

export interface Stack {
  db: TestDatabase;
  ej: Ejabberd;
  dir: string;
  config: Config;
  runners: BuddiesProcess[];
  startRunner(name: string): Promise<BuddiesProcess>;
  addUser(username: string, domain: Domain, password: string): Promise<void>;
  /** Writes a password file for a buddy added at runtime; returns its path. */
  passwordFile(name: string, password: string): Promise<string>;
  user(username: string, domain: Domain, password: string): Promise<XmppUser>;
  /** Logs of ejabberd and every runner, for a failed test. */
  logs(): Promise<string>;
  close(): Promise<void>;
}

export async function startStack(o: {
  buddies: Partial<Record<Domain, Record<string, BuddySpec>>>;
  users: Array<[username: string, domain: Domain, password: string]>;
  buddiesConfig?: Record<string, unknown>;
}): Promise<Stack> {
  const unavailable = ejabberdUnavailable();
  if (unavailable) throw new Error(`buddies end-to-end tests cannot run: ${unavailable}`);
  const db = await createTestDatabase();
  const base = JSON.parse(readFileSync(path.join(ROOT, "config/test.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const extauthJson = { ...base, log: { level: "info", pretty: false }, domains: domainsConfig() };
  const ej = await startEjabberd({
    hosts: [...DOMAINS],
    modules: BUDDIES_MODULES,
    files: {
      "config/default.json": readFileSync(path.join(ROOT, "config/default.json"), "utf8"),
      "config/test.json": JSON.stringify(extauthJson),
    },
    extauthEnv: (dir) => ({ APP_ENV: "test", DATABASE_URL: db.url, CONFIG_DIR: path.join(dir, "config") }),
  }).catch(async (err) => {
    await db.drop();
    throw err;
  });

  const runners: BuddiesProcess[] = [];
  const users: XmppUser[] = [];
  let dir = "";
  const close = async () => {
    await Promise.all(users.map((u) => u.stop()));
    await Promise.all(runners.map((r) => r.stop()));
    await ej.stop();
    await db.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    dir = await mkdtemp(path.join(tmpdir(), "sidecars-buddies-"));
    await mkdir(path.join(dir, "passwords"));
    const caFile = path.join(dir, "ejabberd-ca.pem");
    await writeFile(caFile, ej.ca);
    const domains: Record<string, { service?: string; definitions: Record<string, unknown> }> = {};
    for (const [domain, specs] of Object.entries(o.buddies)) {
      const definitions: Record<string, unknown> = {};
      for (const [username, spec] of Object.entries(specs ?? {})) {
        const file = path.join(dir, "passwords", `${username}@${domain}`);
        await writeFile(file, `${spec.filePassword ?? spec.password}\n`, { mode: 0o600 });
        definitions[username] = {
          kind: spec.kind,
          password: { file },
          rooms: spec.rooms ?? [],
          options: spec.options ?? {},
        };
      }
      // second.test's buddies use STARTTLS on ejabberd's 5222-style port, the others direct TLS: both
      // upgrades verify ejabberd's certificate against the test CA
      domains[domain] =
        domain === "second.test"
          ? { service: `xmpp://127.0.0.1:${ej.starttlsPort}`, definitions }
          : { definitions };
    }
    await writeBuddiesConfig(dir, {
      ...base,
      domains: domainsConfig(),
      services: { ...(base.services as object), buddies: { port: 0 } },
      buddies: {
        service: `xmpps://127.0.0.1:${ej.tlsPort}`,
        tls: { ca: caFile },
        reconnect: { initialMs: 200, maxMs: 2000 },
        keepalive: { intervalSeconds: 5, timeoutSeconds: 3 },
        domains,
        ...o.buddiesConfig,
      },
    });

    const config = loadConfig({ configDir: path.join(dir, "config"), env: { APP_ENV: "test" } });
    const add = async (username: string, domain: Domain, password: string) => {
      await addUser(
        db.pool,
        { node: username, domain },
        { cleartext: password },
        config.domains[domain] as Config["domains"][string],
      );
    };
    for (const [domain, specs] of Object.entries(o.buddies)) {
      for (const [username, spec] of Object.entries(specs ?? {}))
        await add(username, domain as Domain, spec.password);
    }
    for (const [username, domain, password] of o.users) await add(username, domain, password);

    return {
      db,
      ej,
      dir,
      config,
      runners,
      async startRunner(name) {
        const r = await startBuddies({ dir, databaseUrl: db.url, name });
        runners.push(r);
        return r;
      },
      addUser: add,
      async passwordFile(name, password) {
        const file = path.join(dir, "passwords", name);
        await writeFile(file, `${password}\n`, { mode: 0o600 });
        return file;
      },
      async user(username, domain, password) {
        const u = await connectUser({ port: ej.tlsPort, ca: ej.ca, domain, username, password });
        users.push(u);
        return u;
      },
      async logs() {
        const parts = [await ej.logs()];
        for (const r of runners) parts.push(`--- ${r.logFile}\n${await r.logs()}`);
        return parts.join("\n");
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
