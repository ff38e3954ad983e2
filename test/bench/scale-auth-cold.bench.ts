import type { Benchmark } from "./frame.ts";
import {
  AUTH_CONNECTIONS,
  COLD,
  checkPath,
  checkSide,
  expectAuthAnswer,
  startAuthPair,
} from "./scale-auth.ts";
import { USERS as BIG_USERS } from "./scale-data.ts";

/** Distinct users taken in turn, nothing cached: every check looks its row up and verifies (PBKDF2). */
const USERS = 1000;
const PASSWORD = "cold-password";
const nodes = Array.from({ length: USERS }, (_, i) => `bench-cold-${String(i).padStart(4, "0")}`);

export const benchmark: Benchmark = {
  name: "scale-auth-cold",
  figure: "checks/s",
  description:
    `GET check_password of ${USERS} distinct users in turn by wrk, ${AUTH_CONNECTIONS} connections, nothing ` +
    `cached (cacheTtlSeconds 0): auth on a database of ${BIG_USERS} web_users vs auth on an empty one; ` +
    "goal ratio >= 0.8",
  async start(ctx) {
    const pair = await startAuthPair(ctx, COLD, { nodes, password: PASSWORD });
    const paths = nodes.map((n) => checkPath(n, COLD, PASSWORD));
    for (const s of [pair.big, pair.empty]) await expectAuthAnswer(s.url + paths[0], "true");
    const verify = ({ ok = 0, ...other }: Record<string, number>, total: number) =>
      Object.keys(other).length > 0 || ok < total ? "not every check was a verification" : undefined;
    return {
      project: checkSide("1M web_users", pair.big, { domain: COLD, paths, verify }),
      baseline: checkSide("empty", pair.empty, { domain: COLD, paths, verify }),
    };
  },
};
