import { setTimeout as delay } from "node:timers/promises";
import type { Registry } from "prom-client";
import type { PushConfig } from "#common/config/push-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { pushMetrics, reasonLabel } from "./senders/metrics.ts";
import type { PushMessage, PushSenders, PushService, SendOutcome } from "./senders/sender.ts";
import { createBadgeCounter, forgetToken, type Owner, type TokenRow, tokensOf } from "./token-store.ts";

/**
 * What every way of pushing (the `send` endpoint, channel broadcasts, MongooseIM's hooks and the
 * MongoosePush API) goes through, and its one implementation (`createNotifier`): the sender of the token's
 * app and service, retries on 429/5xx with exponential backoff honouring Retry-After (bounded by
 * `push.retry`), the badge kept per token, dead tokens forgotten, every outcome counted.
 */

export type TokenStatus = "sent" | "dead_token" | "failed" | "gave_up" | "no_sender";

export interface TokenResult {
  service: PushService;
  token: string;
  status: TokenStatus;
  reason?: string;
  /** The provider's message id when sent. */
  id?: string;
}

export interface Notifier {
  /** Pushes to one stored token. `message.badge` undefined: the stored badge plus one (alerts only). */
  toToken(row: TokenRow, message: PushMessage): Promise<TokenResult>;
  /** Pushes to many tokens (a fan-out): the badges counted in one statement, `limit` pushes in flight. */
  toTokens(rows: readonly TokenRow[], message: PushMessage, limit?: number): Promise<TokenResult[]>;
  /** Pushes to all of a user's tokens (or the one named), in parallel; one result per token. */
  toUser(owner: Owner, message: PushMessage, token?: string): Promise<TokenResult[]>;
}

export interface NotifierDeps {
  pool: Pool;
  senders: PushSenders;
  retry: PushConfig["retry"];
  log: Logger;
  metrics: Registry;
  /** Waits between tries; tests pass one that records instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
  /** How many of a user's tokens are pushed at once. */
  concurrency?: number;
}

const USER_CONCURRENCY = 16;

/** `fn` over `items`, at most `limit` at a time; the results in the order of `items`. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const { pool, senders, retry } = deps;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  const metrics = pushMetrics(deps.metrics);
  const log = deps.log.child({ component: "notifier" });
  const badges = createBadgeCounter(pool);

  /** Counts a token's final result; `label` for reasons of ours whose text is longer than their name. */
  function finish(row: TokenRow, result: TokenResult, label?: string): TokenResult {
    metrics.sends.inc({
      provider: row.service,
      outcome: result.status,
      reason: label ?? reasonLabel(result.reason),
    });
    return result;
  }

  /** One provider call; a sender that throws (a bug, a broken configuration) is a `failed` token. */
  async function call(row: TokenRow, send: () => Promise<SendOutcome>): Promise<SendOutcome> {
    const end = metrics.duration.startTimer({ provider: row.service });
    let outcome: SendOutcome;
    try {
      outcome = await send();
    } catch (err) {
      log.error({ err, app: row.app, service: row.service }, "push sender threw");
      outcome = { status: "failed", reason: "sender_error" };
    }
    end({ outcome: outcome.status });
    return outcome;
  }

  /**
   * An alert shows the next count unless the caller gives one, which becomes the stored count; a silent push
   * leaves the count alone. The counts of tokens asked together are one statement (createBadgeCounter).
   */
  function badgeOf(row: TokenRow, message: PushMessage): Promise<number | undefined> | number | undefined {
    if (message.silent || !senders.get(row.app)?.get(row.service)) return message.badge;
    return badges.next({ service: row.service, token: row.token, given: message.badge });
  }

  function toToken(row: TokenRow, message: PushMessage): Promise<TokenResult> {
    return Promise.resolve(badgeOf(row, message)).then((badge) => deliver(row, message, badge));
  }

  async function deliver(
    row: TokenRow,
    message: PushMessage,
    badge: number | undefined,
  ): Promise<TokenResult> {
    const base = { service: row.service, token: row.token };
    const sender = senders.get(row.app)?.get(row.service);
    if (!sender) {
      const reason = `no ${row.service} credentials for app ${row.app} (push.apps)`;
      return finish(row, { ...base, status: "no_sender", reason }, "no_sender");
    }
    const payload: PushMessage = badge === undefined ? message : { ...message, badge };

    for (let attempt = 1; ; attempt++) {
      const outcome = await call(row, () => sender.send(row.token, payload));
      switch (outcome.status) {
        case "sent":
          return finish(row, {
            ...base,
            status: "sent",
            ...(outcome.id !== undefined && { id: outcome.id }),
          });
        case "dead_token":
          await forgetToken(pool, row.service, row.token);
          return finish(row, { ...base, status: "dead_token", reason: outcome.reason });
        case "failed":
          return finish(row, { ...base, status: "failed", reason: outcome.reason });
        case "retry": {
          metrics.retries.inc({ provider: row.service, reason: reasonLabel(outcome.reason) });
          if (attempt >= retry.attempts) {
            return finish(row, { ...base, status: "gave_up", reason: outcome.reason });
          }
          if (outcome.afterMs !== undefined && outcome.afterMs > retry.maxMs) {
            // the provider asks for longer than we may hold the caller: say so instead of waiting
            const reason = `the provider asks to wait ${outcome.afterMs} ms, over push.retry.maxMs (${retry.maxMs})`;
            return finish(row, { ...base, status: "gave_up", reason }, "retry_after_too_long");
          }
          const backoff = Math.min(retry.initialMs * 2 ** (attempt - 1), retry.maxMs);
          await sleep(outcome.afterMs ?? backoff);
        }
      }
    }
  }

  /**
   * Many tokens: every badge asked for at once (statements of up to 1000 tokens), the pushes `limit` at a
   * time, each as soon as its own count is there, so the first pushes do not wait for the last counts.
   */
  async function toTokens(
    rows: readonly TokenRow[],
    message: PushMessage,
    limit: number,
  ): Promise<TokenResult[]> {
    const counts = rows.map((row) => Promise.resolve(badgeOf(row, message)));
    // a count that fails fails its push below; no rejection may go unseen meanwhile
    for (const c of counts) c.catch(() => {});
    return mapConcurrent(
      rows.map((row, i) => ({ row, badge: counts[i] as Promise<number | undefined> })),
      limit,
      async ({ row, badge }) => deliver(row, message, await badge),
    );
  }

  return {
    toToken,
    toTokens: (rows, message, limit = deps.concurrency ?? USER_CONCURRENCY) => toTokens(rows, message, limit),
    async toUser(owner, message, token) {
      const rows = await tokensOf(pool, owner, token);
      return toTokens(rows, message, deps.concurrency ?? USER_CONCURRENCY);
    },
  };
}
