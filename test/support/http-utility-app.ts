import { type Logger, pino } from "pino";
import { type AuthCore, createAuthCore } from "#auth";
import { type LoadOptions, loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { createMetrics, type Metrics } from "#common/http/metrics.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { addUser } from "#common/users/web-users.ts";
import { type AppDeps, createHttpUtilityHandler } from "../../services/http-utility/src/app.ts";
import { createMediaDeps } from "../../services/http-utility/src/attachments/media-deps.ts";
import { createPushDeps, type PushDeps } from "../../services/http-utility/src/push/deps.ts";
import { createRegistrationDeps } from "../../services/http-utility/src/registration/deps.ts";
import { createAppSessions } from "../../services/http-utility/src/sessions/tokens.ts";
import { createTestDatabase, type TestDatabase } from "./database.ts";

/** A web_users account the app is started with (its password stored as the domain's config says). */
export interface TestUser {
  node: string;
  domain: string;
  password: string;
}

export interface HttpUtilityTestOptions {
  /** Merged over config/test.json, as `loadConfig`'s overrides. */
  overrides?: LoadOptions["overrides"];
  /** A copy of config/ to load instead (when a command run by the test must read the same files). */
  configDir?: string;
  /** The environment the config is loaded with, besides `APP_ENV=test`. */
  env?: NodeJS.ProcessEnv;
  users?: readonly TestUser[];
  log?: Logger;
  /** Push deps other than the default (no job workers, no provider endpoints): the push suites build their own. */
  push?: (ctx: { config: Config; log: Logger; db: TestDatabase; metrics: Metrics }) => Promise<PushDeps>;
}

export interface HttpUtilityTestApp {
  config: Config;
  db: TestDatabase;
  core: AuthCore;
  deps: AppDeps;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** `<base><path>` */
  url(path: string): string;
  close(): Promise<void>;
}

/**
 * The public http-utility app as a route suite runs it: a database of its own, the given users, the real auth
 * core and every feature built from config as main.ts builds them, listening on a free loopback port.
 * `close()` stops it and drops the database.
 */
export async function startHttpUtilityApp(o: HttpUtilityTestOptions = {}): Promise<HttpUtilityTestApp> {
  const log = o.log ?? pino({ level: "silent" });
  const db = await createTestDatabase();
  const config = loadConfig({
    env: { APP_ENV: "test", ...o.env },
    ...(o.configDir ? { configDir: o.configDir } : {}),
    overrides: o.overrides ?? {},
  });
  for (const u of o.users ?? []) {
    const domain = config.domains[u.domain];
    if (!domain) throw new Error(`the test config has no domain ${u.domain} for ${u.node}`);
    await addUser(db.pool, u, { cleartext: u.password }, domain);
  }
  const metrics = createMetrics("http-utility");
  const core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const ctx = { config, log, pool: db.pool };
  const push = o.push
    ? await o.push({ config, log, db, metrics })
    : await createPushDeps(ctx, { workers: false, metrics: metrics.registry });
  const deps: AppDeps = {
    ...ctx,
    core,
    attachments: await createMediaDeps(ctx),
    push,
    registration: createRegistrationDeps(ctx, { metrics: metrics.registry }),
    sessions: createAppSessions({ ...ctx, listener: db.listener }),
    metrics,
  };
  const server: RunningServer = await startServer(createHttpUtilityHandler(deps), {
    name: "http-utility",
    host: "127.0.0.1",
    port: 0,
    log,
  });
  const base = `http://127.0.0.1:${server.port}`;
  return {
    config,
    db,
    core,
    deps,
    base,
    url: (path) => `${base}${path}`,
    async close() {
      await server.close(100);
      await push.close();
      await deps.attachments.storage.close();
      deps.sessions?.close();
      await core.close();
      await db.drop();
    },
  };
}
