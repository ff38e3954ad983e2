import { SignJWT } from "jose";
import { addUser } from "#common/users/web-users.ts";
import {
  AUTH_CONNECTIONS,
  authSide,
  DOMAINS,
  expectAuthAnswer,
  JWT_BENCH,
  query,
  startAuthService,
} from "./auth-support.ts";
import type { Benchmark } from "./frame.ts";

const WEB_USER = { node: "cached-user", domain: DOMAINS.check };
const PASSWORD = "cached-password";
const TOKEN_USER = "token-user";
const WARM_REQUESTS = 5;

/** A token as an identity provider signs it for the user: HS256, valid for a day (longer than any run). */
function signToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    sub: TOKEN_USER,
    iss: JWT_BENCH.issuer,
    aud: JWT_BENCH.audience,
    iat: now,
    exp: now + 86_400,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(JWT_BENCH.secret));
}

/**
 * MongooseIM's steady state on a token domain: the same user's token checked again and again, answered from
 * the success cache as a web_users password is. Beside it, the same token on a domain that caches nothing, so
 * every request is a jose HS256 verification: what a new token (a new login) costs.
 */
export const benchmark: Benchmark = {
  name: "auth-check-jwt",
  figure: "req/s",
  description:
    `GET check_password of one user, success cache warm: a jwt (HS256) domain vs a web_users domain, the same ` +
    `auth process (real bootstrap, basic auth); extra: the token verified at every request (cacheTtlSeconds 0); ` +
    `${AUTH_CONNECTIONS} connections; goal ratio >= 0.8 and p99 < 10 ms`,
  async start(ctx) {
    const service = await startAuthService(ctx, async (db) => {
      await addUser(db.pool, WEB_USER, { cleartext: PASSWORD }, db.domain(WEB_USER.domain));
    });
    const token = await signToken();
    const jwtPath = query("check_password", { user: TOKEN_USER, server: DOMAINS.jwt, pass: token });
    const coldPath = query("check_password", { user: TOKEN_USER, server: DOMAINS.jwtCold, pass: token });
    const webPath = query("check_password", { user: WEB_USER.node, server: WEB_USER.domain, pass: PASSWORD });
    // the first check verifies (jose, or PBKDF2) and caches the success; the next ones hit the cache
    for (let i = 0; i < WARM_REQUESTS; i++) {
      await expectAuthAnswer(service.url + jwtPath, "true");
      await expectAuthAnswer(service.url + webPath, "true");
      await expectAuthAnswer(service.url + coldPath, "true");
    }

    const load = { url: service.url, pid: service.pid, connections: AUTH_CONNECTIONS, expectBody: "true" };
    const cached = (delta: Record<string, number>, sample: { total: number }) => {
      const { cached = 0, ok = 0, ...other } = delta;
      if (Object.keys(other).length > 0) return "outcomes other than cached or ok";
      if (cached < sample.total) return "fewer checks answered from the cache than requests answered";
      // a verification only where the cached success expired (cacheTtlSeconds), at most one per connection
      if (ok > AUTH_CONNECTIONS) return "the cache was bypassed";
      return undefined;
    };
    return {
      project: authSide("jwt domain", {
        ...load,
        path: jwtPath,
        domain: DOMAINS.jwt,
        method: "check_password",
        verify: cached,
      }),
      baseline: authSide("web_users domain", {
        ...load,
        path: webPath,
        domain: WEB_USER.domain,
        method: "check_password",
        verify: cached,
      }),
      extras: [
        authSide("jwt, verified every time", {
          ...load,
          path: coldPath,
          domain: DOMAINS.jwtCold,
          method: "check_password",
          verify(delta, sample) {
            const { ok = 0, ...other } = delta;
            if (Object.keys(other).length > 0) return "outcomes other than ok";
            if (ok < sample.total) return "fewer verifications than requests answered";
            return undefined;
          },
        }),
      ],
    };
  },
};
