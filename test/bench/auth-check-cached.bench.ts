import { addUser } from "#common/users/web-users.ts";
import {
  AUTH_CONNECTIONS,
  authSide,
  bareSide,
  DOMAINS,
  expectAuthAnswer,
  query,
  startAuthService,
  startBareTrueServer,
} from "./auth-support.ts";
import type { Benchmark } from "./frame.ts";

const USER = { node: "cached-user", domain: DOMAINS.check };
const PASSWORD = "cached-password";
const PATH = query("check_password", { user: USER.node, server: USER.domain, pass: PASSWORD });
const WARM_REQUESTS = 5;

/** MongooseIM's steady state: the same user's password checked again and again, answered from the cache. */
export const benchmark: Benchmark = {
  name: "auth-check-cached",
  figure: "req/s",
  description:
    `GET check_password of one user, success cache warm: auth (real bootstrap, basic auth) vs bare ` +
    `node:http answering true; ${AUTH_CONNECTIONS} connections; goal ratio >= 0.5 and p99 < 10 ms`,
  async start(ctx) {
    const service = await startAuthService(ctx, async (db) => {
      await addUser(db.pool, USER, { cleartext: PASSWORD }, db.domain(USER.domain));
    });
    const baseline = await startBareTrueServer(ctx);
    // the first check verifies the password (PBKDF2) and caches the success; the next ones hit the cache
    for (let i = 0; i < WARM_REQUESTS; i++) await expectAuthAnswer(service.url + PATH, "true");
    await expectAuthAnswer(baseline.url + PATH, "true");

    const load = { path: PATH, connections: AUTH_CONNECTIONS, expectBody: "true" };
    return {
      project: authSide("auth", {
        ...load,
        url: service.url,
        pid: service.pid,
        domain: USER.domain,
        method: "check_password",
        verify(delta, sample) {
          const { cached = 0, ok = 0, ...other } = delta;
          if (Object.keys(other).length > 0) return "outcomes other than cached or ok";
          if (cached < sample.total) return "fewer checks answered from the cache than requests answered";
          // a verification only where the cached success expired (cacheTtlSeconds), at most one per connection
          if (ok > AUTH_CONNECTIONS) return "the cache was bypassed";
          return undefined;
        },
      }),
      baseline: bareSide("node:http", { ...load, url: baseline.url, pid: baseline.pid }),
    };
  },
};
