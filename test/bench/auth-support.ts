import type { DomainConfig } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { freePort } from "../support/free-port.ts";
import { benchConfigDir, benchServiceDatabase } from "./bench-database.ts";
import { type ChildServer, startChildServer } from "./child-server.ts";
import type { BenchContext, Side } from "./frame.ts";
import { processTree } from "./process-cpu.ts";
import { type WrkSample, wrkLoad } from "./wrk.ts";

/**
 * What the auth benchmarks share: the auth service (services/auth/src/main.ts, APP_ENV=test) in its own
 * process with bench domains of its own (a copy of config/ through CONFIG_DIR), its users written to the
 * database the service uses and removed afterwards, the bare `true` baseline, and wrk load whose every
 * answer is checked.
 */

/** As MongooseIM's HTTP auth pool in the issue: 32 connections, one request in flight on each. */
export const AUTH_CONNECTIONS = 32;

const BASIC_AUTH = "bench:bench-secret";
export const AUTHORIZATION = `Basic ${Buffer.from(BASIC_AUTH).toString("base64")}`;

export const DOMAINS = {
  /** check_password with the success cache: format plain, default cacheTtlSeconds (60). */
  check: "bench.test",
  /** get_password: format scram, ==MULTI_SCRAM== answers. */
  scram: "scram.bench.test",
  /** check_password with nothing cached: cacheTtlSeconds 0, so every check verifies. */
  cold: "cold.bench.test",
  /** check_password of tokens: a jwt domain (HS256, JWT_BENCH), default cacheTtlSeconds (60). */
  jwt: "jwt.bench.test",
  /** the same with nothing cached (cacheTtlSeconds 0): every token verified. */
  jwtCold: "cold.jwt.bench.test",
} as const;

/** The key and claims of the jwt bench domain (auth-check-jwt.bench.ts signs its token with them). */
export const JWT_BENCH = {
  secret: "the HS256 secret of the jwt bench domain, 32+ bytes",
  issuer: "https://id.bench.test",
  audience: "xmpp-sidecars-bench",
} as const;

const BENCH_DOMAINS: Record<string, Record<string, unknown>> = {
  [DOMAINS.check]: { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
  [DOMAINS.scram]: { passwordFormat: "scram", scramFormat: "multi" },
  [DOMAINS.cold]: { passwordFormat: "plain", cacheTtlSeconds: 0 },
  [DOMAINS.jwt]: {
    authenticator: { kind: "jwt", options: { ...JWT_BENCH, algorithms: ["HS256"] } },
    passwordFormat: "plain",
  },
  [DOMAINS.jwtCold]: {
    authenticator: { kind: "jwt", options: { ...JWT_BENCH, algorithms: ["HS256"] } },
    passwordFormat: "plain",
    cacheTtlSeconds: 0,
  },
};

async function deleteBenchUsers(pool: Pool): Promise<void> {
  const domains = Object.values(DOMAINS);
  await pool.query("DELETE FROM web_users WHERE domain = ANY($1)", [domains]);
}

export interface BenchDatabase {
  pool: Pool;
  /** A bench domain's configuration as the service sees it (schema defaults filled in). */
  domain(name: string): DomainConfig;
}

/**
 * Config copy, database (started and migrated if need be), users from `seed`, then the auth service. All of
 * it is undone once the benchmark ends: service stopped, bench users deleted, config copy removed.
 */
export async function startAuthService(
  ctx: BenchContext,
  seed: (db: BenchDatabase) => Promise<void>,
): Promise<ChildServer> {
  const configDir = benchConfigDir(ctx, { domains: BENCH_DOMAINS });
  const { env, config, pool } = await benchServiceDatabase(ctx, configDir, 8);
  await deleteBenchUsers(pool); // left over by an interrupted run
  ctx.defer(() => deleteBenchUsers(pool));
  await seed({
    pool,
    domain(name) {
      const d = config.domains[name];
      if (!d) throw new Error(`${name} is not a bench domain`);
      return d;
    },
  });

  const port = await freePort();
  const service = await startChildServer({
    name: "auth",
    script: "services/auth/src/main.ts",
    env: { ...env, AUTH_PORT: String(port), AUTH_BASIC_AUTH: BASIC_AUTH },
    url: `http://127.0.0.1:${port}`,
    readyPath: "/healthz",
  });
  ctx.defer(service.stop);
  return service;
}

export async function startBareTrueServer(ctx: BenchContext): Promise<ChildServer> {
  const port = await freePort();
  const server = await startChildServer({
    name: "bare node:http",
    script: "test/bench/bare-http-server.ts",
    args: [String(port), "text/plain; charset=utf-8", "true"],
    url: `http://127.0.0.1:${port}`,
    readyPath: "/",
  });
  ctx.defer(server.stop);
  return server;
}

export function query(method: string, params: { user: string; server: string; pass: string }): string {
  return `/authorize/${method}?${new URLSearchParams(params).toString()}`;
}

/** One request before the load, so both sides are known to answer as the contract says. */
export async function expectAuthAnswer(url: string, body: string): Promise<void> {
  const res = await fetch(url, {
    headers: { authorization: AUTHORIZATION },
    signal: AbortSignal.timeout(5000),
  });
  const got = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !/^text\/plain\b/.test(contentType) || got !== body) {
    throw new Error(`${url}: answered ${res.status} ${contentType} ${JSON.stringify(got)}`);
  }
}

export interface AuthLoadOptions {
  /** Base URL of the server. */
  url: string;
  /** The request path with its query; several are taken in turn. */
  path: string | readonly string[];
  connections: number;
  /** Every answer must be a 200 with exactly this body, or the measurement fails. */
  expectBody: string;
  /** The server's process (its CPU is reported beside wrk's). */
  pid?: number | undefined;
}

export type LoadSample = WrkSample;

/** wrk: keep-alive, one request in flight per connection, basic auth sent, every answer checked. */
export function authLoad(o: AuthLoadOptions, durationS: number): Promise<LoadSample> {
  return wrkLoad(
    o.url,
    {
      base: o.url,
      paths: typeof o.path === "string" ? [o.path] : o.path,
      connections: o.connections,
      headers: { Authorization: AUTHORIZATION },
      expectStatus: 200,
      expectBody: o.expectBody,
    },
    durationS,
  );
}

/** Decisions the service counted (auth_checks_duration_seconds_count), by outcome, for one domain and method. */
export async function outcomes(url: string, domain: string, method: string): Promise<Record<string, number>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}/metrics: answered ${res.status}`);
  const counts: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^auth_checks_duration_seconds_count\{([^}]*)\} (\d+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k as string, v as string]),
    );
    if (labels.domain === domain && labels.method === method && labels.outcome) {
      counts[labels.outcome] = Number(m[2]);
    }
  }
  return counts;
}

export function outcomeDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) delta[k] = d;
  }
  return delta;
}

/**
 * The project side: the load, plus what the service itself counted during it, so a benchmark can assert the
 * path it meant to measure (cached or not) is the one taken.
 */
export function authSide(
  label: string,
  o: AuthLoadOptions & {
    domain: string;
    method: string;
    verify: (delta: Record<string, number>, sample: LoadSample) => string | undefined;
  },
): Side {
  return {
    label,
    async measure(durationS) {
      const before = await outcomes(o.url, o.domain, o.method);
      const sample = await authLoad(o, durationS);
      const after = await outcomes(o.url, o.domain, o.method);
      const delta = outcomeDelta(before, after);
      const problem = o.verify(delta, sample);
      if (problem) {
        throw new Error(
          `${label}: ${problem} (${sample.total} answered; outcomes counted by the service ${JSON.stringify(delta)})`,
        );
      }
      return sample;
    },
    ...pidsOf(o.pid),
  };
}

export function bareSide(label: string, o: AuthLoadOptions): Side {
  return { label, measure: (durationS) => authLoad(o, durationS), ...pidsOf(o.pid) };
}

const pidsOf = (pid: number | undefined) => (pid ? { pids: () => processTree(pid) } : {});
