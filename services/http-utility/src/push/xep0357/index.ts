import { readFileSync } from "node:fs";
import type { Registry } from "prom-client";
import type { PasswordSource } from "#common/config/buddies-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { Listener } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import { StartupProblems } from "#common/errors.ts";
import type { Logger } from "#common/logger.ts";
import { fromRoot } from "#common/paths.ts";
import type { PushDeps } from "../deps.ts";
import type { Notifier } from "../notifier.ts";
import { createAppServer } from "./app-server.ts";
import { ComponentSession } from "./component-session.ts";
import { ComponentKeeper, type KeptComponent } from "./keeper.ts";
import { xep0357Metrics } from "./metrics.ts";
import { secretKey } from "./nodes.ts";

/**
 * The XEP-0357 app server of every domain in `push.xep0357.domains` (docs/xmpp-clients.md "Push
 * (XEP-0357)"), run in http-utility beside the senders it pushes with: each process keeps a ComponentKeeper,
 * and each domain's component is connected by the one process holding its lock (keeper.ts).
 */

export interface Xep0357Deps {
  config: Pick<Config, "push" | "secrets">;
  log: Logger;
  pool: Pool;
  /** The process's LISTEN connection (keeper.ts: a stopping process hands its components over at once). */
  listener?: Listener;
  notifier: Notifier;
  metrics: Registry;
}

export interface Xep0357 {
  /** The components this process holds now. */
  held(): string[];
  stop(): Promise<void>;
}

function readPassword(source: PasswordSource, config: Pick<Config, "secrets">): string {
  if ("env" in source) {
    const value = config.secrets.env(source.env);
    if (!value)
      throw new Error(`the environment variable ${source.env} is not set: set it to the component's secret`);
    return value;
  }
  let text: string;
  try {
    text = readFileSync(fromRoot(source.file), "utf8");
  } catch (err) {
    throw new Error(
      `cannot read ${source.file} (${(err as NodeJS.ErrnoException).code}): fix the path or its permissions`,
    );
  }
  const first = text.split(/\r?\n/, 1)[0] ?? "";
  if (first === "")
    throw new Error(`${source.file} is empty: write the component's secret on its first line`);
  return first;
}

/**
 * Checks every domain (its app and password) and starts this process's keeper; all problems in one
 * StartupProblems before the service listens. Nothing runs, and no database connection is held, without
 * domains.
 */
export function startXep0357(deps: Xep0357Deps): Xep0357 {
  const { push } = deps.config;
  const { xep0357 } = push;
  const problems: string[] = [];
  const components: KeptComponent[] = [];
  const metrics = xep0357Metrics(deps.metrics);
  for (const [domain, d] of Object.entries(xep0357.domains)) {
    const key = `push.xep0357.domains.${domain}`;
    const creds = push.apps[d.app];
    if (!creds) {
      problems.push(`${key}.app: "${d.app}" is not an app of push.apps: add its credentials there first`);
      continue;
    }
    if (!creds.fcm && !creds.apns && !creds.log) {
      problems.push(`${key}.app: "${d.app}" has neither fcm nor apns credentials in push.apps`);
      continue;
    }
    let password: string;
    try {
      password = readPassword(d.password, deps.config);
    } catch (err) {
      problems.push(`${key}.password: ${(err as Error).message}`);
      continue;
    }
    const component = d.component ?? `push.${domain}`;
    const log = deps.log.child({ xep0357: component });
    const appServer = createAppServer({
      domain,
      component,
      app: d.app,
      private: d.private ?? xep0357.private,
      alertTitle: d.alertTitle,
      key: secretKey(password, component),
      pool: deps.pool,
      push,
      notifier: deps.notifier,
      metrics,
      log,
    });
    components.push({
      component,
      start() {
        const session = new ComponentSession({
          server: d.server,
          component,
          password,
          log,
          mount: (entity) => appServer.mount(entity),
          onOnline: (online) => metrics.connected.set({ domain }, online ? 1 : 0),
        });
        session.start();
        return session;
      },
    });
  }
  if (problems.length > 0) throw new StartupProblems(problems);
  if (components.length === 0) return { held: () => [], stop: async () => {} };
  const keeper = new ComponentKeeper({
    pool: deps.pool,
    ...(deps.listener ? { listener: deps.listener } : {}),
    log: deps.log.child({ xep0357: "keeper" }),
    checkMs: xep0357.checkMs,
    components,
  });
  keeper.start();
  return { held: () => keeper.held, stop: () => keeper.stop() };
}

/**
 * The push deps of services/http-utility/src/service.ts with the app server started on their notifier:
 * closing them stops the components first (their publishes need the senders), then the rest.
 */
export async function withXep0357(
  ctx: Omit<Xep0357Deps, "notifier" | "metrics"> & { metrics: { registry: Registry } },
  push: PushDeps,
): Promise<PushDeps> {
  let started: Xep0357;
  try {
    started = startXep0357({ ...ctx, metrics: ctx.metrics.registry, notifier: push.notifier });
  } catch (err) {
    await push.close();
    throw err;
  }
  return {
    ...push,
    async close() {
      await started.stop();
      await push.close();
    },
  };
}
