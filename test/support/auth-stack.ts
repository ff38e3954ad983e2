import http from "node:http";
import express from "express";
import { pino } from "pino";
import { type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Config } from "#common/config/schema.ts";
import { finishApp } from "#common/http/app-base.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { defineRoute, routesRouter } from "#common/http/route.ts";
import { type RunningServer, startServer } from "#common/http/server.ts";
import { createAuthApp } from "../../services/auth/src/app.ts";
import { caller, createCallers } from "../../services/http-utility/src/callers.ts";
import type { TestDatabase } from "./database.ts";

/**
 * Both doors to a password, in-process on one test database and one real auth core: MongooseIM's HTTP
 * contract (the auth service's app, with its basic_auth) and an app endpoint behind http-utility's callers
 * (`GET /api/v1/me` answers who the caller is). Requests go out from a loopback address of the test's choosing
 * (all of 127.0.0.0/8 reaches a loopback server), so clients differ by their real source address.
 */
export interface AuthStack {
  config: Config;
  core: AuthCore;
  /** GET /api/v1/me with HTTP Basic `jid:password`, from `from`. */
  appLogin(jid: string, password: string, from?: string): Promise<Answer>;
  /** MongooseIM's GET /authorize/<method>, with its basic_auth: status and body, e.g. "200 true". */
  mongooseim(method: string, params: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  code?: string;
  text: string;
}

export const MONGOOSEIM_BASIC_AUTH = "mongooseim:secret";

export async function startAuthStack(
  db: TestDatabase,
  options: { guard?: Record<string, number>; domains?: Record<string, unknown> } = {},
): Promise<AuthStack> {
  const config = loadConfig({
    env: { APP_ENV: "test" },
    overrides: {
      database: { url: db.url },
      services: {
        auth: { basicAuth: MONGOOSEIM_BASIC_AUTH, ...(options.guard ? { guard: options.guard } : {}) },
      },
      ...(options.domains ? { domains: options.domains } : {}),
    },
  });
  const log = pino({ level: "silent" });
  const core = await createAuthCore({ config, pool: db.pool, listener: db.listener, log });
  const callers = createCallers({ core, apiKeys: {} });
  const app = express();
  const me = defineRoute({
    method: "get",
    path: "/api/v1/me",
    summary: "the app caller, as the public API's routes get it",
    caller: caller.app,
    responses: { 200: { description: "the caller" } },
    handler: ({ caller: c, res }) => res.json(c),
  });
  app.use(routesRouter([me], { resolveCaller: callers.resolve }));
  finishApp(app, log);
  const api = await startServer(app, { name: "api", host: "127.0.0.1", port: 0, log });
  const auth = await startAuthServer({ config, core, db });
  return {
    config,
    core,
    appLogin(jid, password, from = "127.0.0.1") {
      const authorization = `Basic ${Buffer.from(`${jid}:${password}`).toString("base64")}`;
      return get(api, "/api/v1/me", { authorization }, from);
    },
    async mongooseim(method, params) {
      const authorization = `Basic ${Buffer.from(MONGOOSEIM_BASIC_AUTH).toString("base64")}`;
      const r = await get(
        auth,
        `/authorize/${method}?${new URLSearchParams(params)}`,
        { authorization },
        "127.0.0.1",
      );
      return `${r.status} ${r.text}`;
    },
    async close() {
      await api.close(100);
      await auth.close(100);
      await core.close();
    },
  };
}

/**
 * The auth service's real app (MongooseIM's HTTP contract) on a loopback port, in this process, for a test of
 * the other apps (the CLI's doctor) that must not import the service's internals itself.
 */
export function startAuthServer(deps: {
  config: Config;
  core: AuthCore;
  db: TestDatabase;
}): Promise<RunningServer> {
  const log = pino({ level: "silent" });
  return startServer(
    createAuthApp({
      config: deps.config,
      log,
      pool: deps.db.pool,
      core: deps.core,
      metrics: createMetrics("auth"),
    }),
    { name: "auth", host: "127.0.0.1", port: 0, rawRequestBytes: true, log },
  );
}

function get(
  server: RunningServer,
  path: string,
  headers: Record<string, string>,
  from: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port: server.port, path, headers, localAddress: from, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let code: string | undefined;
          try {
            code = JSON.parse(text).error?.code;
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, ...(code ? { code } : {}) });
        });
      },
    );
    req.on("error", reject);
  });
}
