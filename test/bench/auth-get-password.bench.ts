import { isScramSerialization } from "#common/credentials/scram-serialization.ts";
import { addUser } from "#common/users/web-users.ts";
import {
  AUTH_CONNECTIONS,
  AUTHORIZATION,
  authSide,
  bareSide,
  DOMAINS,
  expectAuthAnswer,
  query,
  startAuthService,
  startBareTrueServer,
} from "./auth-support.ts";
import type { Benchmark } from "./frame.ts";

const USER = { node: "scram-user", domain: DOMAINS.scram };
const PATH = query("get_password", { user: USER.node, server: USER.domain, pass: "" });

/** MongooseIM with password_format scram: it fetches the stored SCRAM data at every login. */
export const benchmark: Benchmark = {
  name: "auth-get-password",
  figure: "req/s",
  description:
    `GET get_password of one user with stored SCRAM data (domain format scram, ==MULTI_SCRAM==): auth vs ` +
    `bare node:http answering true; ${AUTH_CONNECTIONS} connections; goal ratio >= 0.3`,
  async start(ctx) {
    const service = await startAuthService(ctx, async (db) => {
      await addUser(db.pool, USER, { cleartext: "scram-password" }, db.domain(USER.domain));
    });
    const baseline = await startBareTrueServer(ctx);
    // the answer the load must get every time: the serialization the service gives now
    const res = await fetch(service.url + PATH, { headers: { authorization: AUTHORIZATION } });
    const serialization = await res.text();
    if (
      res.status !== 200 ||
      !serialization.startsWith("==MULTI_SCRAM==,") ||
      !isScramSerialization(serialization)
    ) {
      throw new Error(`get_password answered ${res.status} ${JSON.stringify(serialization)}`);
    }
    await expectAuthAnswer(service.url + PATH, serialization);
    await expectAuthAnswer(baseline.url + PATH, "true");

    const load = { path: PATH, connections: AUTH_CONNECTIONS };
    return {
      project: authSide("auth", {
        ...load,
        url: service.url,
        pid: service.pid,
        expectBody: serialization,
        domain: USER.domain,
        method: "get_password",
        // answered from the database, or from a cache of answers should the service keep one
        verify: ({ ok = 0, cached = 0, ...other }, sample) =>
          Object.keys(other).length > 0 || ok + cached < sample.total
            ? "not every request answered ok"
            : undefined,
      }),
      baseline: bareSide("node:http", { ...load, url: baseline.url, pid: baseline.pid, expectBody: "true" }),
    };
  },
};
