// `npm start`: the whole stack in the foreground. Config (APP_ENV, development by default), the embedded
// PostgreSQL when DATABASE_URL is unset, migrations, then pm2-runtime with ecosystem.config.js.
// Ctrl-C stops the services gracefully, then the embedded database if this run started it. The pm2 home is
// the one of every pm2 command of the project (scripts/pm2-home.ts); a stack already running is reloaded,
// not started twice.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { DEVELOPMENT_BASIC_AUTH_FILE, loadConfig } from "#common/config/load.ts";
import { migrate } from "#common/db/migrate.ts";
import { embeddedDatabase } from "#common/db/pool.ts";
import { StartupError } from "#common/errors.ts";
import { fromRoot, projectRoot } from "#common/paths.ts";
import { exitOnStartupError } from "#common/service.ts";
import { isOurs, locateStack, pm2Home, showHome } from "./pm2-home.ts";

const env: NodeJS.ProcessEnv = { ...process.env, APP_ENV: process.env.APP_ENV ?? "development" };
const say = (line: string) => process.stdout.write(`[start] ${line}\n`);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Waits for the processes to end; what is left after `ms` is killed. */
async function waitForExit(pids: number[], ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
}

try {
  const where = await locateStack(env);
  if (where.at === "elsewhere" || (where.at === "home" && where.processes.some(isOurs))) {
    const there = where.at === "elsewhere" ? where.elsewhere : showHome(where.home);
    const withHome = where.at === "elsewhere" ? `PM2_HOME=${there} ` : "";
    throw new StartupError(
      `the stack already runs under pm2 home ${there}: reload it with \`${withHome}npm run reload\`, or stop it first`,
    );
  }
  // development gets a generated basic_auth secret for the auth service, kept in var/ (never in git)
  if (env.APP_ENV === "development" && !env.AUTH_BASIC_AUTH && !env.AUTH_BASIC_AUTH_FILE) {
    const file = DEVELOPMENT_BASIC_AUTH_FILE;
    if (!existsSync(file)) {
      // var/ stays traversable (the embedded PostgreSQL runs as another user under it); only secrets/ is private
      mkdirSync(fromRoot("var"), { recursive: true });
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, `mongooseim:${randomBytes(18).toString("base64url")}\n`, { mode: 0o600 });
    }
    env.AUTH_BASIC_AUTH_FILE = file;
    say(
      `auth service basic_auth (MongooseIM auth_opts basic_auth) is in ${path.relative(projectRoot, file)}`,
    );
  }
  // the database's settings: the domains kept in it (config/runtime-domains.ts) are the services' to load
  const config = loadConfig({ env, databaseDomains: "unread" });
  let startedDb = false;
  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    const db = embeddedDatabase(config);
    startedDb = !(await db.start()).reused;
    databaseUrl = await db.url();
    say(`embedded PostgreSQL ${startedDb ? "started" : "already running"} on 127.0.0.1:${db.port}`);
  }
  const applied = await migrate({ databaseUrl });
  say(applied.length > 0 ? `migrations applied: ${applied.join(", ")}` : "database schema up to date");

  // from here on, what pm2 and the services create (logs, media, scratch files) is not for other users of the
  // machine (the embedded PostgreSQL, which runs as another user, was started above and sets its own)
  process.umask(0o027);
  const home = pm2Home(env);
  const pm2Runtime = createRequire(import.meta.url).resolve("pm2/bin/pm2-runtime");
  const child = spawn(process.execPath, [pm2Runtime, "start", "ecosystem.config.js", "--env", config.env], {
    cwd: projectRoot,
    stdio: "inherit",
    env: { ...env, PM2_HOME: home },
  });
  // pm2-runtime may exit before its fork-mode apps (their own process group) finish shutting down: note the
  // apps' pids while they run, so this command returns only once every service has stopped.
  const appPids = new Set<number>();
  const notePids = () => {
    const dir = path.join(home, "pids");
    for (const f of existsSync(dir) ? readdirSync(dir) : []) {
      const pid = Number(readFileSync(path.join(dir, f), "utf8"));
      if (pid > 0) appPids.add(pid);
    }
  };
  const watcher = setInterval(notePids, 1000);
  let stopping = false;
  const forward = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the services`);
    child.kill(signal);
  };
  process.on("SIGINT", () => forward("SIGINT"));
  process.on("SIGTERM", () => forward("SIGTERM"));
  child.on("exit", async (code, signal) => {
    clearInterval(watcher);
    await waitForExit([...appPids], Number(env.SIDECARS_KILL_TIMEOUT_MS ?? 15_000));
    if (startedDb) {
      await embeddedDatabase(config)
        .stop()
        .catch(() => {});
      say("embedded PostgreSQL stopped");
    }
    process.exit(code ?? (signal ? 0 : 1));
  });
} catch (err) {
  exitOnStartupError(err);
}
