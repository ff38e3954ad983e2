import type { Benchmark } from "./frame.ts";
import {
  AUTH_CONNECTIONS,
  checkPath,
  checkSide,
  expectAuthAnswer,
  startAuthPair,
  WARM,
} from "./scale-auth.ts";
import { USERS as BIG_USERS } from "./scale-data.ts";

const NODE = "bench-cached";
const PASSWORD = "cached-password";
const PATH = checkPath(NODE, WARM, PASSWORD);
const WARM_REQUESTS = 5;

export const benchmark: Benchmark = {
  name: "scale-auth-cached",
  figure: "req/s",
  description:
    `GET check_password of one user, success cache warm, by wrk, ${AUTH_CONNECTIONS} connections: auth on a ` +
    `database of ${BIG_USERS} web_users vs auth on an empty one; goal ratio >= 0.8`,
  async start(ctx) {
    const pair = await startAuthPair(ctx, WARM, { nodes: [NODE], password: PASSWORD });
    for (const s of [pair.big, pair.empty]) {
      for (let i = 0; i < WARM_REQUESTS; i++) await expectAuthAnswer(s.url + PATH, "true");
    }
    const verify = ({ cached = 0, ok = 0, ...other }: Record<string, number>, total: number) => {
      if (Object.keys(other).length > 0) return "outcomes other than cached or ok";
      if (cached < total) return "fewer checks answered from the cache than requests answered";
      if (ok > AUTH_CONNECTIONS) return "the cache was bypassed";
      return undefined;
    };
    return {
      project: checkSide("1M web_users", pair.big, { domain: WARM, paths: [PATH], verify }),
      baseline: checkSide("empty", pair.empty, { domain: WARM, paths: [PATH], verify }),
    };
  },
};
