import type { Job, PgBoss } from "pg-boss";
import type { Config } from "#common/config/schema.ts";
import { createOutboundPolicy, outboundRequest } from "#common/http/outbound-address.ts";
import type { Logger } from "#common/logger.ts";

/**
 * Replies and resolves typed into a notification, relayed to where it came from (docs/push.md
 * "Server endpoints"): a callback URL given at send, or a buddy (its `notification-action` hook on the
 * buddies service). At least once: one durable pg-boss job per action, tried `push.relay.attempts` times
 * with backoff, each try bounded by `push.relay.timeoutMs`, a try lost to a restart retried by pg-boss.
 * The receiver may see an action twice and should key on `notificationId` and `at`.
 * A callback URL is a backend's, given per notification: it reaches public addresses only, checked on the
 * address connected to (outbound-address.ts), unless listed in `push.relay.allowTargets`.
 */

export const RELAY_QUEUE = "push-relay";

/** Where a notification's replies go, as recorded at send (`push_notifications.origin`). */
export type Origin = { kind: "url"; url: string } | { kind: "buddy"; jid: string };

/** The JSON body a callback URL and a buddy's hook receive. */
export interface RelayedAction {
  notificationId: string;
  action: "reply" | "resolve";
  text?: string;
  /** The JID of the user who acted. */
  from: string;
  /** When they did, ISO 8601. */
  at: string;
}

export interface Relay {
  /** Creates the queue and works on it. The PgBoss must be started. */
  start(): Promise<void>;
  stop(): Promise<void>;
  enqueue(origin: Origin, action: RelayedAction): Promise<void>;
}

export interface RelayDeps {
  boss: PgBoss;
  log: Logger;
  /** `push.relay`: tries per action and the bound on one. */
  relay: Config["push"]["relay"];
  /** The buddies service's base URL (`buddiesUrl(config)`). */
  buddiesUrl: string;
  /** `push.relay.hookKey` (env BUDDIES_HOOK_KEY), a key of `services.buddies.hookKeys`; without it relaying to a buddy fails. */
  hookKey: string | undefined;
  /** First wait between tries, in seconds, doubling (pg-boss backoff). */
  retryDelaySeconds?: number;
  pollingIntervalSeconds?: number;
  /** Actions delivered at once by this process. */
  concurrency?: number;
}

interface JobData {
  origin: Origin;
  action: RelayedAction;
}

/** The buddies service as this host reaches it: its listener, a wildcard address read as loopback. */
export function buddiesUrl(config: Pick<Config, "services">): string {
  const { host, port } = config.services.buddies;
  const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

class RelayError extends Error {
  override name = "RelayError";
}

export function createRelay(deps: RelayDeps): Relay {
  const { boss } = deps;
  const log = deps.log.child({ component: "relay" });
  const attempts = deps.relay.attempts;
  const callbacks = createOutboundPolicy(deps.relay.allowTargets, "push.relay.allowTargets");

  /** A buddy's hook on the buddies service, which the operator configured (not a user's URL). */
  function target(origin: Extract<Origin, { kind: "buddy" }>): {
    url: string;
    headers: Record<string, string>;
  } {
    const at = origin.jid.lastIndexOf("@");
    const [username, domain] = [origin.jid.slice(0, at), origin.jid.slice(at + 1)];
    if (!deps.hookKey) {
      throw new RelayError(
        `cannot call the hook of buddy ${origin.jid}: BUDDIES_HOOK_KEY is not set (a key of services.buddies.hookKeys, made with \`sidecars buddies admin-key --hook\`)`,
      );
    }
    return {
      url: `${deps.buddiesUrl}/hooks/${encodeURIComponent(domain)}/${encodeURIComponent(username)}/notification-action`,
      headers: { authorization: `Bearer ${deps.hookKey}` },
    };
  }

  async function deliver({ origin, action }: JobData): Promise<void> {
    if (origin.kind === "url") {
      let answer: { status: number };
      try {
        answer = await outboundRequest(origin.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(action),
          timeoutMs: deps.relay.timeoutMs,
          policy: callbacks,
          maxAnswerBytes: 64 * 1024,
        });
      } catch (err) {
        throw new RelayError(`${describe(origin)} unreachable: ${(err as Error).message}`);
      }
      if (answer.status < 200 || answer.status > 299) {
        throw new RelayError(`${describe(origin)} answered ${answer.status}`);
      }
      return;
    }
    const { url, headers } = target(origin);
    let answer: Response;
    try {
      answer = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(action),
        redirect: "manual",
        signal: AbortSignal.timeout(deps.relay.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: Error };
      const why =
        e.name === "TimeoutError" ? `no answer within ${deps.relay.timeoutMs} ms` : (e.cause ?? e).message;
      throw new RelayError(`${describe(origin)} unreachable: ${why}`);
    }
    await answer.body?.cancel();
    if (answer.status < 200 || answer.status > 299) {
      throw new RelayError(`${describe(origin)} answered ${answer.status}`);
    }
  }

  return {
    async start() {
      await boss.createQueue(RELAY_QUEUE, {
        retryLimit: attempts - 1,
        retryDelay: deps.retryDelaySeconds ?? 5,
        retryBackoff: true,
        retryDelayMax: 600,
        // a try cut short by a crash is retried once this is over
        expireInSeconds: Math.ceil(deps.relay.timeoutMs / 1000) + 30,
        deleteAfterSeconds: 7 * 86_400,
      });
      await boss.work(
        RELAY_QUEUE,
        {
          localConcurrency: deps.concurrency ?? 4,
          pollingIntervalSeconds: deps.pollingIntervalSeconds ?? 2,
        },
        async ([job]: Job<JobData>[]) => {
          if (!job) return;
          const about = { notificationId: job.data.action.notificationId, action: job.data.action.action };
          try {
            await deliver(job.data);
            log.info({ ...about, to: describe(job.data.origin), attempt: job.retryCount + 1 }, "relayed");
          } catch (err) {
            const attempt = job.retryCount + 1;
            const message = (err as Error).message;
            if (attempt >= attempts) {
              log.error(
                { ...about, attempt, err: message },
                `relay gave up after ${attempts} tries: ${message}`,
              );
            } else log.warn({ ...about, attempt, err: message }, "relay try failed; retrying");
            throw err;
          }
        },
      );
    },

    async stop() {
      await boss.offWork(RELAY_QUEUE, { wait: true });
    },

    async enqueue(origin, action) {
      await boss.send(RELAY_QUEUE, { origin, action } satisfies JobData);
    },
  };
}

/** An origin for logs: a callback URL without its query (which may hold a secret), or the buddy's JID. */
function describe(origin: Origin): string {
  if (origin.kind === "buddy") return `buddy ${origin.jid}`;
  try {
    const u = new URL(origin.url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "callback URL";
  }
}
