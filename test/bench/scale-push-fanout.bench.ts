import type pg from "pg";
import { pino } from "pino";
import { Registry } from "prom-client";
import { loadConfig } from "#common/config/load.ts";
import { createNotifier, type Notifier } from "../../services/http-utility/src/push/notifier.ts";
import { createLogSender } from "../../services/http-utility/src/push/senders/log-sender.ts";
import type { PushSender, PushService } from "../../services/http-utility/src/push/senders/sender.ts";
import type { TokenRow } from "../../services/http-utility/src/push/token-store.ts";
import type { BenchContext, Benchmark, Side } from "./frame.ts";
import { IN_FLIGHT, MESSAGE } from "./push-fanout-support.ts";
import { TOKENS } from "./scale-data.ts";
import { scaleDatabases, scalePools } from "./scale-support.ts";

/**
 * A channel broadcast to DEVICES devices as services/http-utility/src/push/send/broadcast.ts runs one (its
 * `nextBatch`: a page of subscribers along the subscriptions' key, then their tokens; then the notifier's
 * `toTokens`, whose badge counts are one UPDATE per batch), through the log sender (no provider: what is left
 * is the database and the notifier), on the big database and on the empty one. The claim and record of
 * deliveries (push_broadcast_deliveries) are left out: they write the same rows whatever the tables hold.
 */

const DEVICES = 10_000;
const DOMAIN = "fanout.scale.bench";
const CHANNEL = "bench-fanout";
const APP = "ScaleApp";
/** broadcast.ts's default batchSize. */
const BATCH = 500;

async function seed(pool: pg.Pool): Promise<void> {
  await pool.query(
    `INSERT INTO push_channel_subscriptions (domain, channel, node)
     SELECT $1, $2, 'bench-' || lpad(i::text, 5, '0') FROM generate_series(0, $3 - 1) AS i`,
    [DOMAIN, CHANNEL, DEVICES],
  );
  await pool.query(
    `INSERT INTO push_tokens (service, token, app, domain, node)
     SELECT 'fcm', 'fbench' || i || ':APA91b' || encode(sha512(int8send(i)), 'hex'), $2, $1,
       'bench-' || lpad(i::text, 5, '0')
     FROM generate_series(0::bigint, $3 - 1) AS i`,
    [DOMAIN, APP, DEVICES],
  );
}

/** broadcast.ts `nextBatch`: the statements it runs, as it runs them. */
async function nextBatch(
  pool: pg.Pool,
  after: string,
): Promise<{ last: string | undefined; rows: TokenRow[] }> {
  const subscribers = await pool.query<{ node: string }>(
    `SELECT node FROM push_channel_subscriptions WHERE domain = $1 AND channel = $2 AND node > $3
     ORDER BY node LIMIT $4`,
    [DOMAIN, CHANNEL, after, BATCH],
  );
  const nodes = subscribers.rows.map((r) => r.node);
  if (nodes.length === 0) return { last: undefined, rows: [] };
  const { rows } = await pool.query<TokenRow>(
    `SELECT service, token, app, domain, node, badge FROM push_tokens WHERE domain = $1 AND node = ANY($2)
     ORDER BY node, service, token`,
    [DOMAIN, nodes],
  );
  return { last: nodes[nodes.length - 1], rows };
}

async function broadcast(pool: pg.Pool, notifier: Notifier): Promise<number> {
  let sent = 0;
  for (let after = ""; ; ) {
    const { last, rows } = await nextBatch(pool, after);
    if (last === undefined) return sent;
    after = last;
    const results = await notifier.toTokens(rows, MESSAGE, IN_FLIGHT);
    const notSent = results.find((r) => r.status !== "sent");
    if (notSent) throw new Error(`not sent: ${notSent.status} ${notSent.reason ?? ""}`);
    sent += results.length;
  }
}

function fanOutSide(ctx: BenchContext, label: string, pool: pg.Pool): Side {
  const config = loadConfig({ env: { ...process.env, APP_ENV: "test" } });
  const log = pino({ level: "silent" });
  const senders = new Map<string, Map<PushService, PushSender>>([
    [APP, new Map([["fcm", createLogSender("fcm", { app: APP, log })]])],
  ]);
  const notifier = createNotifier({ pool, senders, retry: config.push.retry, log, metrics: new Registry() });
  void ctx;
  return {
    label,
    async measure(durationS) {
      // whole fan-outs, as many as fit in the round (at least one)
      let sent = 0;
      const t0 = performance.now();
      do {
        const n = await broadcast(pool, notifier);
        if (n !== DEVICES) throw new Error(`${label}: ${n} devices reached, not ${DEVICES}`);
        sent += n;
      } while (performance.now() - t0 < durationS * 1000);
      return { value: sent / ((performance.now() - t0) / 1000) };
    },
  };
}

export const benchmark: Benchmark = {
  name: "scale-push-fanout",
  figure: "notifications/s",
  description:
    `a channel broadcast to ${DEVICES} FCM devices as broadcast.ts runs one (subscribers in pages of ${BATCH}, ` +
    `their tokens, toTokens with ${IN_FLIGHT} in flight and the badge UPDATEs), log sender: among ${TOKENS} ` +
    "push tokens and 400000 subscriptions vs an empty database; goal ratio >= 0.8",
  async start(ctx) {
    const dbs = await scaleDatabases(ctx);
    const pools = scalePools(ctx, dbs);
    for (const pool of [pools.big, pools.empty]) {
      await seed(pool);
      await pool.query("ANALYZE push_tokens, push_channel_subscriptions");
    }
    return {
      project: fanOutSide(ctx, "1M push tokens", pools.big),
      baseline: fanOutSide(ctx, "empty", pools.empty),
    };
  },
};
