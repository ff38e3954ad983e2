import { loadConfig } from "#common/config/load.ts";
import type { DomainConfig } from "#common/config/schema.ts";
import { credentialsFor } from "#common/users/web-users.ts";
import {
  AUTH_CONNECTIONS,
  AUTHORIZATION,
  expectAuthAnswer,
  outcomeDelta,
  outcomes,
  query,
} from "./auth-support.ts";
import { benchConfigDir } from "./bench-database.ts";
import type { BenchContext, Side } from "./frame.ts";
import { DOMAINS } from "./scale-data.ts";
import { type ScaleService, scaleDatabases, scalePools, startScaleService } from "./scale-support.ts";
import { wrkSide } from "./wrk.ts";

/**
 * The auth service (services/auth/src/main.ts) once on the big database and once on the empty one, as
 * auth-support.ts starts it, with the bench's users in both; check_password loads by wrk whose every answer
 * must be `true`, and whose outcomes the service counted must be the path meant (verified or cached).
 */

/** Every check verifies (cacheTtlSeconds 0), as auth-check-cold's domain. */
export const COLD = "cold.scale.bench";
/** The success cache at its default, as auth-check-cached's domain. */
export const WARM = "warm.scale.bench";
const BASIC_AUTH = "bench:bench-secret"; // AUTHORIZATION's

const plain = { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" };

export interface AuthPair {
  big: ScaleService;
  empty: ScaleService;
}

/** `users` (node → password) in `domain` on both databases, then one auth service on each. */
export async function startAuthPair(
  ctx: BenchContext,
  domain: string,
  users: { nodes: string[]; password: string },
): Promise<AuthPair> {
  const dbs = await scaleDatabases(ctx);
  const pools = scalePools(ctx, dbs);
  const configDir = benchConfigDir(ctx, {
    domains: {
      ...Object.fromEntries(DOMAINS.map((d) => [d, plain])),
      [COLD]: { ...plain, cacheTtlSeconds: 0 },
      [WARM]: plain,
    },
  });
  const config = loadConfig({ env: { ...process.env, APP_ENV: "test", CONFIG_DIR: configDir } });
  const domainConfig = config.domains[domain] as DomainConfig;
  // one derivation for all rows (a check's work does not depend on the salt); each row is its own user
  const { token, scram } = await credentialsFor({ cleartext: users.password }, domainConfig);
  for (const pool of [pools.big, pools.empty]) {
    await pool.query(
      `INSERT INTO web_users (node, domain, token, scram) SELECT n, $2, $3, $4 FROM unnest($1::text[]) AS n`,
      [users.nodes, domain, token, scram],
    );
  }
  const start = (name: string, databaseUrl: string) =>
    startScaleService(ctx, {
      name,
      service: "auth",
      configDir,
      databaseUrl,
      env: { AUTH_BASIC_AUTH: BASIC_AUTH },
    });
  return {
    big: await start("auth (big database)", dbs.big),
    empty: await start("auth (empty database)", dbs.empty),
  };
}

/** wrk's check_password load on one service, with the outcomes it counted checked by `verify`. */
export function checkSide(
  label: string,
  service: ScaleService,
  o: {
    domain: string;
    paths: string[];
    verify: (delta: Record<string, number>, total: number) => string | undefined;
  },
): Side {
  const side = wrkSide(
    label,
    {
      base: service.url,
      paths: o.paths,
      connections: AUTH_CONNECTIONS,
      headers: { authorization: AUTHORIZATION },
      expectStatus: 200,
      expectBody: "true",
    },
    service.pids,
  );
  return {
    ...side,
    async measure(durationS) {
      const before = await outcomes(service.url, o.domain, "check_password");
      const sample = await side.measure(durationS);
      const delta = outcomeDelta(before, await outcomes(service.url, o.domain, "check_password"));
      const total = (sample as { total?: number }).total ?? 0;
      const problem = o.verify(delta, total);
      if (problem)
        throw new Error(`${label}: ${problem} (${total} answered; outcomes ${JSON.stringify(delta)})`);
      return sample;
    },
  };
}

export const checkPath = (node: string, domain: string, pass: string) =>
  query("check_password", { user: node, server: domain, pass });

export { AUTH_CONNECTIONS, expectAuthAnswer };
