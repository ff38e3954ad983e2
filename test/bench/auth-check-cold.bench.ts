import { addUser, credentialsFor } from "#common/users/web-users.ts";
import {
  AUTH_CONNECTIONS,
  authSide,
  DOMAINS,
  expectAuthAnswer,
  query,
  startAuthService,
} from "./auth-support.ts";
import { loopSide } from "./closed-loop.ts";
import type { BenchContext, Benchmark, Side } from "./frame.ts";

/** Distinct users, taken in turn; the domain caches nothing (cacheTtlSeconds 0), so every check verifies. */
const USERS = 1000;
const PASSWORD = "cold-password";
const nodeOf = (i: number) => `cold-${String(i).padStart(4, "0")}`;
/** What verifyPassword derives for a row with SHA-256 data: PBKDF2-HMAC-SHA-256 with SHA-256's output length. */
const CHECK_HASH = "sha256";
const CHECK_KEY_LENGTH = 32;

/** The baseline: bare crypto.pbkdf2 in its own process, AUTH_CONNECTIONS derivations in flight. */
function startPbkdf2Loop(ctx: BenchContext, iterations: number): Side {
  return loopSide(
    ctx,
    "crypto.pbkdf2",
    "test/bench/pbkdf2-loop.ts",
    [String(iterations), String(CHECK_KEY_LENGTH), CHECK_HASH, String(AUTH_CONNECTIONS)],
    "derivation",
  );
}

/** A burst of logins (after a restart, or of many distinct users): every check is a PBKDF2 verification. */
export const benchmark: Benchmark = {
  name: "auth-check-cold",
  figure: "checks/s",
  description:
    `GET check_password of ${USERS} distinct users in turn, nothing cached (cacheTtlSeconds 0), stored SCRAM ` +
    `data at the default iterations: auth vs bare crypto.pbkdf2 (SHA-256, same iterations, key length ` +
    `${CHECK_KEY_LENGTH}) derivations/s, ${AUTH_CONNECTIONS} in flight; goal ratio >= 0.8`,
  async start(ctx) {
    let iterations = 0;
    const service = await startAuthService(ctx, async (db) => {
      const domain = db.domain(DOMAINS.cold);
      if (!domain.scramHashes.includes(CHECK_HASH))
        throw new Error(`${DOMAINS.cold} stores no ${CHECK_HASH}`);
      iterations = domain.scramIterations;
      // one derivation for all rows (the check's work does not depend on the salt); each row is its own user
      const { scram } = await credentialsFor({ cleartext: PASSWORD }, domain);
      for (let i = 0; i < USERS; i += 10) {
        await Promise.all(
          Array.from({ length: Math.min(10, USERS - i) }, (_, k) =>
            addUser(db.pool, { node: nodeOf(i + k), domain: DOMAINS.cold }, { scram }, domain),
          ),
        );
      }
    });
    // wrk takes the users in turn
    const paths = Array.from({ length: USERS }, (_, i) =>
      query("check_password", { user: nodeOf(i), server: DOMAINS.cold, pass: PASSWORD }),
    );
    await expectAuthAnswer(service.url + (paths[0] as string), "true");
    const baseline = startPbkdf2Loop(ctx, iterations);

    return {
      project: authSide("auth", {
        url: service.url,
        pid: service.pid,
        path: paths,
        connections: AUTH_CONNECTIONS,
        expectBody: "true",
        domain: DOMAINS.cold,
        method: "check_password",
        verify: ({ ok = 0, ...other }, sample) =>
          Object.keys(other).length > 0 || ok < sample.total
            ? "not every check was a verification"
            : undefined,
      }),
      baseline,
    };
  },
};
