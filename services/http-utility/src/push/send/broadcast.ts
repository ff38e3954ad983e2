import { randomUUID } from "node:crypto";
import type { JobWithMetadata, PgBoss } from "pg-boss";
import type { Pool } from "#common/db/pool.ts";
import { inTransaction } from "#common/db/transaction.ts";
import type { Logger } from "#common/logger.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { PushMessage } from "../senders/sender.ts";
import type { TokenRow } from "../token-store.ts";

/**
 * Channel broadcasts: one `push_broadcasts` row and one durable pg-boss job each. The job walks the
 * channel's subscribers in batches, pushing their devices. Each token is claimed in `push_broadcast_deliveries` before it
 * is pushed (insert … ON CONFLICT DO NOTHING, push only what was inserted), so a job resumed after its
 * worker died (pg-boss fails a job whose heartbeat stops and hands it to another worker) never pushes
 * twice to a device: at most once per token, the price being that a token claimed by the dead worker but
 * not yet pushed is not pushed (its outcome reads `unknown`, counted as failed).
 */

export const BROADCAST_QUEUE = "push-broadcast";

export type BroadcastState = "queued" | "running" | "done" | "failed";

export interface BroadcastProgress {
  id: string;
  domain: string;
  channel: string;
  state: BroadcastState;
  /** Tokens to push: counted when the job starts (null before), the tokens claimed once it is done. */
  total: number | null;
  sent: number;
  dead: number;
  failed: number;
  createdAt: string;
  finishedAt: string | null;
}

export interface Broadcasts {
  /** Creates the queue and, unless `concurrency` is 0, starts working on it. The PgBoss must be started. */
  start(): Promise<void>;
  /** Stops taking broadcasts; one running here stops after its batch and resumes on another worker. */
  stop(): Promise<void>;
  /** Records a broadcast and queues its job in one transaction; its id. */
  enqueue(broadcast: { domain: string; channel: string; message: PushMessage }): Promise<string>;
  progress(id: string): Promise<BroadcastProgress | undefined>;
}

export interface BroadcastOptions {
  /** Subscribers whose devices are claimed and pushed per batch (progress is updated per batch). */
  batchSize?: number;
  /** Pushes in flight at once within a batch. */
  pushConcurrency?: number;
  /** A job whose worker has not reported for this long is handed to another (pg-boss, at least 10). */
  heartbeatSeconds?: number;
  /** How often an idle worker looks for a broadcast. */
  pollingIntervalSeconds?: number;
}

export interface BroadcastDeps {
  pool: Pool;
  /** The process's job queue (push/jobs.ts). */
  boss: PgBoss;
  notifier: Notifier;
  log: Logger;
  /** Broadcasts worked on at once by this process; 0: enqueue and read progress only. */
  concurrency: number;
  options?: BroadcastOptions;
}

interface JobData {
  id: string;
}

const RETRY_LIMIT = 10;

type Outcome = "sent" | "dead" | "failed";
const outcomeOf = (r: TokenResult): Outcome =>
  r.status === "sent" ? "sent" : r.status === "dead_token" ? "dead" : "failed";

class Stopping extends Error {
  override name = "Stopping";
}

export function createBroadcasts(deps: BroadcastDeps): Broadcasts {
  const { pool, boss, notifier } = deps;
  const log = deps.log.child({ component: "broadcasts" });
  const batchSize = deps.options?.batchSize ?? 500;
  const pushConcurrency = deps.options?.pushConcurrency ?? 16;
  let stopping = false;

  /**
   * The next `batchSize` subscribers after `after` (in node order, along the subscriptions' primary key)
   * and their devices; `last` undefined when none are left.
   */
  async function nextBatch(
    b: { domain: string; channel: string },
    after: string,
  ): Promise<{ last: string | undefined; rows: TokenRow[] }> {
    const subscribers = await pool.query<{ node: string }>(
      `SELECT node FROM push_channel_subscriptions WHERE domain = $1 AND channel = $2 AND node > $3
       ORDER BY node LIMIT $4`,
      [b.domain, b.channel, after, batchSize],
    );
    const nodes = subscribers.rows.map((r) => r.node);
    if (nodes.length === 0) return { last: undefined, rows: [] };
    const { rows } = await pool.query<TokenRow>(
      `SELECT service, token, app, domain, node, badge FROM push_tokens WHERE domain = $1 AND node = ANY($2)
       ORDER BY node, service, token`,
      [b.domain, nodes],
    );
    return { last: nodes[nodes.length - 1], rows };
  }

  /** The rows of `batch` claimed by this run: those no run of this broadcast has claimed before. */
  async function claim(id: string, batch: TokenRow[]): Promise<TokenRow[]> {
    if (batch.length === 0) return [];
    const { rows } = await pool.query<{ service: string; token: string }>(
      `INSERT INTO push_broadcast_deliveries (broadcast_id, service, token, outcome)
       SELECT $1, service, token, 'pending' FROM unnest($2::text[], $3::text[]) AS c (service, token)
       ON CONFLICT DO NOTHING RETURNING service, token`,
      [id, batch.map((r) => r.service), batch.map((r) => r.token)],
    );
    const claimed = new Set(rows.map((r) => `${r.service}\u0000${r.token}`));
    return batch.filter((r) => claimed.has(`${r.service}\u0000${r.token}`));
  }

  /** Outcomes and counters of a batch, together: a crash keeps both or neither. */
  async function record(id: string, results: TokenResult[]): Promise<void> {
    const outcomes = results.map(outcomeOf);
    const count = (o: Outcome) => outcomes.filter((x) => x === o).length;
    await inTransaction(pool, async (c) => {
      await c.query(
        `UPDATE push_broadcast_deliveries d SET outcome = r.outcome, at = now()
         FROM unnest($2::text[], $3::text[], $4::text[]) AS r (service, token, outcome)
         WHERE d.broadcast_id = $1 AND d.service = r.service AND d.token = r.token`,
        [id, results.map((r) => r.service), results.map((r) => r.token), outcomes],
      );
      await c.query(
        "UPDATE push_broadcasts SET sent = sent + $2, dead = dead + $3, failed = failed + $4 WHERE id = $1",
        [id, count("sent"), count("dead"), count("failed")],
      );
    });
  }

  async function finish(id: string): Promise<void> {
    await inTransaction(pool, async (c) => {
      // claimed by a worker that died before it recorded what the provider said
      const unknown = await c.query(
        "UPDATE push_broadcast_deliveries SET outcome = 'unknown' WHERE broadcast_id = $1 AND outcome = 'pending'",
        [id],
      );
      await c.query(
        `UPDATE push_broadcasts SET state = 'done', finished_at = now(), failed = failed + $2,
           total = (SELECT count(*) FROM push_broadcast_deliveries WHERE broadcast_id = $1)
         WHERE id = $1`,
        [id, unknown.rowCount ?? 0],
      );
    });
  }

  async function run(job: JobWithMetadata<JobData>): Promise<void> {
    const { id } = job.data;
    const { rows } = await pool.query<{ domain: string; channel: string; message: PushMessage }>(
      `UPDATE push_broadcasts SET state = 'running',
         total = COALESCE(total, (SELECT count(*) FROM push_channel_subscriptions s
           JOIN push_tokens t ON t.domain = s.domain AND t.node = s.node
           WHERE s.domain = push_broadcasts.domain AND s.channel = push_broadcasts.channel))
       WHERE id = $1 AND state IN ('queued', 'running') RETURNING domain, channel, message`,
      [id],
    );
    const b = rows[0];
    if (!b) return; // done already, or gone
    const blog = log.child({ broadcast: id, attempt: job.retryCount + 1 });
    blog.info({ domain: b.domain, channel: b.channel }, "broadcast running");
    for (let after = ""; ; ) {
      if (stopping || job.signal.aborted) throw new Stopping("stopped between batches; resumes on a retry");
      const { last, rows: batch } = await nextBatch(b, after);
      if (last === undefined) break;
      after = last;
      const mine = await claim(id, batch);
      const results = await notifier.toTokens(mine, b.message, pushConcurrency);
      if (results.length > 0) await record(id, results);
    }
    await finish(id);
    blog.info("broadcast done");
  }

  return {
    async start() {
      await boss.createQueue(BROADCAST_QUEUE, {
        heartbeatSeconds: deps.options?.heartbeatSeconds ?? 30,
        expireInSeconds: 24 * 3600,
        retryLimit: RETRY_LIMIT,
        retryBackoff: true,
        retryDelay: 1,
        retryDelayMax: 300,
        deleteAfterSeconds: 7 * 86_400,
      });
      if (deps.concurrency <= 0) return;
      await boss.work(
        BROADCAST_QUEUE,
        {
          includeMetadata: true,
          localConcurrency: deps.concurrency,
          pollingIntervalSeconds: deps.options?.pollingIntervalSeconds ?? 2,
        },
        async ([job]: JobWithMetadata<JobData>[]) => {
          if (!job) return;
          try {
            await run(job);
          } catch (err) {
            const last = job.retryCount >= job.retryLimit;
            if (err instanceof Stopping) log.info({ broadcast: job.data.id }, err.message);
            else log.error({ err, broadcast: job.data.id, last }, "broadcast failed");
            if (last) {
              await pool.query(
                "UPDATE push_broadcasts SET state = 'failed', finished_at = now() WHERE id = $1",
                [job.data.id],
              );
            }
            throw err;
          }
        },
      );
    },

    async stop() {
      stopping = true;
      await boss.offWork(BROADCAST_QUEUE, { wait: true });
    },

    async enqueue({ domain, channel, message }) {
      const id = randomUUID();
      const stored: PushMessage = { ...message, data: { ...message.data, broadcastId: id } };
      await inTransaction(pool, async (c) => {
        await c.query("INSERT INTO push_broadcasts (id, domain, channel, message) VALUES ($1, $2, $3, $4)", [
          id,
          domain,
          channel,
          stored,
        ]);
        // the job id is the broadcast's: queued with its row or not at all, and never twice
        await boss.send(
          BROADCAST_QUEUE,
          { id },
          { id, db: { executeSql: (text, values) => c.query(text, values as unknown[]) } },
        );
      });
      return id;
    },

    async progress(id) {
      const { rows } = await pool.query<BroadcastProgress>(
        `SELECT id, domain, channel, state, total, sent, dead, failed,
           to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt",
           to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "finishedAt"
         FROM push_broadcasts WHERE id = $1`,
        [id],
      );
      return rows[0];
    },
  };
}
