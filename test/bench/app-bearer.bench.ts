import type { DomainConfig } from "#common/config/schema.ts";
import { addUser } from "#common/users/web-users.ts";
import { freePort } from "../support/free-port.ts";
import { outcomeDelta, outcomes } from "./auth-support.ts";
import { benchConfigDir, benchServiceDatabase } from "./bench-database.ts";
import { startChildServer } from "./child-server.ts";
import type { Benchmark, Sample, Side } from "./frame.ts";
import { cpuSecondsOfAll, processTree } from "./process-cpu.ts";
import { expectAnswer, type WrkLoad, wrkLoad } from "./wrk.ts";

/**
 * What an app call costs the server with an app session's bearer access token (services/http-utility/src/
 * sessions/tokens.ts: a JWT verified in the process, no database) against HTTP Basic with a warm success cache
 * (an HMAC of JID and password looked up in the auth core's cache: services/auth/src/core/success-cache.ts),
 * on the same cheap app operation, the caller's own video list (one indexed query of `attachments`, an empty
 * page). The figure is requests per CPU-second of the server process (its CPU read from /proc around each
 * wrk run), so the ratio says how many times cheaper a bearer call is than a Basic one. The extra side is
 * Basic with a cold cache (`cacheTtlSeconds: 0`: every call checks the password, PBKDF2 with the production
 * default of 10 000 iterations, and counts the guard), which is what a bearer call saves when the cache is cold.
 */

const PATH = "/api/v1/attachments/videos";
const BODY = JSON.stringify({ videos: [], next: null });
const WARM = "warm.bearer.bench.test";
const COLD = "cold.bearer.bench.test";
const NODE = "bench-app-user";
const PASSWORD = "bench-app-user-secret";
const basic = (domain: string) => `Basic ${Buffer.from(`${NODE}@${domain}:${PASSWORD}`).toString("base64")}`;

/**
 * A wrk load whose figure is requests per CPU-second of the server's processes, checked against the auth
 * core's own count of app logins in the same window (`verify`): the path meant is the path taken.
 */
function cpuSide(
  label: string,
  load: WrkLoad,
  pid: number,
  verify: (delta: Record<string, number>, total: number) => string | undefined,
  domain: string,
): Side {
  const pids = () => processTree(pid);
  return {
    label,
    pids,
    async measure(durationS): Promise<Sample> {
      const before = await outcomes(load.base, domain, "app_login");
      const cpu0 = await cpuSecondsOfAll(pids());
      const sample = await wrkLoad(label, load, durationS);
      const cpu = (await cpuSecondsOfAll(pids())) - cpu0;
      const delta = outcomeDelta(before, await outcomes(load.base, domain, "app_login"));
      const problem = verify(delta, sample.total);
      if (problem)
        throw new Error(
          `${label}: ${problem} (${sample.total} answered; app logins ${JSON.stringify(delta)})`,
        );
      console.error(
        `app-bearer  ${label}: ${Math.round(sample.value)} req/s, ${((cpu / sample.total) * 1e6).toFixed(0)} µs server CPU per request`,
      );
      return { ...sample, value: sample.total / cpu };
    },
  };
}

export const benchmark: Benchmark = {
  name: "app-bearer",
  figure: "req/CPU-s",
  description:
    `GET ${PATH} (the caller's videos) by wrk, same connections, one http-utility process: requests per ` +
    "server CPU-second with an app session's bearer access token vs HTTP Basic with a warm success cache; " +
    "extra: Basic with a cold cache (cacheTtlSeconds 0, PBKDF2 10 000 iterations). The ratio is how many " +
    "times cheaper a bearer call is than a warm Basic one (the issue: less than half the cost); goal ratio >= 2",
  async start(ctx) {
    const configDir = benchConfigDir(ctx, {
      services: { httpUtility: { sessions: { accessTtl: "60m" } } },
      domains: {
        [WARM]: { authenticator: { kind: "web_users", options: {} }, passwordFormat: "plain" },
        [COLD]: {
          authenticator: { kind: "web_users", options: {} },
          passwordFormat: "plain",
          cacheTtlSeconds: 0,
        },
      },
    });
    const { env, config, pool } = await benchServiceDatabase(ctx, configDir, 2);
    const clean = async () => {
      for (const d of [WARM, COLD]) {
        await pool.query("DELETE FROM app_sessions WHERE domain = $1", [d]);
        await pool.query("DELETE FROM web_users WHERE domain = $1", [d]);
      }
    };
    await clean(); // left over by an interrupted run
    ctx.defer(clean);
    for (const d of [WARM, COLD]) {
      await addUser(
        pool,
        { node: NODE, domain: d },
        { cleartext: PASSWORD },
        config.domains[d] as DomainConfig,
      );
    }

    const port = await freePort();
    const server = await startChildServer({
      name: "http-utility",
      script: "services/http-utility/src/main.ts",
      env: { ...env, HTTP_UTILITY_PORT: String(port) },
      url: `http://127.0.0.1:${port}`,
      readyPath: "/healthz",
    });
    ctx.defer(server.stop);

    const login = await fetch(`${server.url}/api/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jid: `${NODE}@${WARM}`, password: PASSWORD }),
      signal: AbortSignal.timeout(10_000),
    });
    if (login.status !== 201) throw new Error(`POST /api/v1/sessions: ${login.status} ${await login.text()}`);
    const { accessToken } = (await login.json()) as { accessToken: string };
    const bearer = `Bearer ${accessToken}`;
    const want = { contentType: /^application\/json\b/, body: BODY };
    for (const authorization of [bearer, basic(WARM), basic(COLD)]) {
      await expectAnswer(server.url + PATH, want, { authorization });
    }

    const load = (authorization: string): WrkLoad => ({
      base: server.url,
      paths: [PATH],
      connections: ctx.config.connections,
      headers: { authorization },
      expectStatus: 200,
      expectBody: BODY,
    });
    const pid = server.pid as number;
    return {
      project: cpuSide(
        "bearer access token",
        load(bearer),
        pid,
        (d) => (Object.keys(d).length > 0 ? "a bearer call checked a password" : undefined),
        WARM,
      ),
      baseline: cpuSide(
        "Basic, warm cache",
        load(basic(WARM)),
        pid,
        (d, total) =>
          (d.cached ?? 0) < total * 0.99
            ? "fewer than 99 % of the Basic checks came from the cache"
            : undefined,
        WARM,
      ),
      extras: [
        cpuSide(
          "Basic, cold cache",
          load(basic(COLD)),
          pid,
          (d, total) => ((d.ok ?? 0) < total ? "some Basic checks did not check the password" : undefined),
          COLD,
        ),
      ],
    };
  },
};
