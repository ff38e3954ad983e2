import type { Benchmark } from "./frame.ts";
import { TOKENS } from "./scale-data.ts";
import { startHttpUtilityPair, USER, USER_AUTHORIZATION } from "./scale-http-utility.ts";
import { wrkSide } from "./wrk.ts";

const CONNECTIONS = 16;
const PATH = "/api/v1/notifications/store_token";
/** An FCM registration token's shape. */
const TOKEN = `fbench:APA91b${"x".repeat(140)}`;
const BODY = JSON.stringify({ node: USER.node, token: TOKEN, service: "fcm" });

/**
 * An app registering its device again and again (every start of the app does): the upsert path of
 * token-store.ts `registerToken` (read for update, upsert, eviction beyond the cap per user and app). wrk sends
 * one body, so every request refreshes the same row: the rows' locks make the requests take turns on it, the
 * same on both sides.
 */
export const benchmark: Benchmark = {
  name: "scale-store-token",
  figure: "req/s",
  description:
    `POST ${PATH} (the same user and FCM token, refreshed) by wrk, ${CONNECTIONS} connections: http-utility on ` +
    `a database of ${TOKENS} push tokens vs on an empty one; goal ratio >= 0.8`,
  async start(ctx) {
    const pair = await startHttpUtilityPair(ctx);
    const headers = { authorization: USER_AUTHORIZATION, "content-type": "application/json" };
    for (const s of [pair.big, pair.empty]) {
      const res = await fetch(s.url + PATH, { method: "POST", headers, body: BODY });
      const answer = await res.text();
      if (res.status !== 200)
        throw new Error(`${s.server.name}: store_token answered ${res.status} ${answer}`);
    }
    const load = {
      paths: [PATH],
      connections: CONNECTIONS,
      method: "POST" as const,
      headers,
      body: BODY,
      expectStatus: 200,
    };
    return {
      project: wrkSide("1M push tokens", { ...load, base: pair.big.url }, pair.big.pids),
      baseline: wrkSide("empty", { ...load, base: pair.empty.url }, pair.empty.pids),
    };
  },
};
