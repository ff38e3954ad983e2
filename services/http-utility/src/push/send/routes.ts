import type { z } from "zod";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { createOutboundPolicy, OutboundRefused } from "#common/http/outbound-address.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import { type AppCaller, type CallerPolicy, caller, serverDomain } from "../../callers.ts";
import { errors } from "../../errors.ts";
import type { Origin, Relay } from "../mongooseim/relay.ts";
import { findNotification, recordNotification } from "../notification-store.ts";
import type { Notifier } from "../notifier.ts";
import { tokensOf } from "../token-store.ts";
import type { Broadcasts } from "./broadcast.ts";
import {
  broadcastBody,
  broadcastParams,
  broadcastProgress,
  broadcastQueued,
  originOf,
  pushMessage,
  relayQueued,
  replyBody,
  resolveBody,
  sendAnswer,
  sendBody,
} from "./schema.ts";

/**
 * What servers send and what users answer (docs/push.md "Server endpoints", "App endpoints"): `send` to
 * one user (scope `push`), channel broadcasts (scope `broadcast`), and the replies and resolves an app user
 * types into a notification, relayed to the notification's origin.
 */

const RELAY_DESCRIPTION =
  "Relayed to the notification's origin, at least once, with retries (`push.relay.attempts`, each bounded " +
  "by `push.relay.timeoutMs`), surviving a restart: a `callbackUrl` receives a POST with the JSON " +
  '`{ notificationId, action: "reply" | "resolve", text?, from: "<jid>", at }`; a `buddy` receives the same ' +
  "body at its `notification-action` hook on the buddies service. Only the notification's recipient may act on it.";

export function sendRoutes(deps: {
  pool: Pool;
  config: Pick<Config, "domains" | "push">;
  notifier: Notifier;
  broadcasts: Broadcasts;
  relay: Relay;
}): Route<CallerPolicy>[] {
  const { pool, notifier, broadcasts, relay } = deps;
  const callbacks = createOutboundPolicy(deps.config.push.relay.allowTargets, "push.relay.allowTargets");

  /**
   * A callbackUrl whose host is a special-use address literal is refused now, while the backend can hear it;
   * a name is resolved and checked when relaying (relay.ts), where DNS cannot answer otherwise later.
   */
  function checkCallback(url: string | undefined): void {
    if (url === undefined) return;
    try {
      callbacks.checkUrl(url);
    } catch (err) {
      if (err instanceof OutboundRefused) throw errors.forbiddenCallback(err.message);
      throw err;
    }
  }

  /** The domain named, or the only one this server serves. */
  function domainOf(given: string | undefined): string {
    const served = Object.keys(deps.config.domains);
    if (given === undefined) {
      if (served.length === 1) return served[0] as string;
      throw errors.invalidRequest(
        "domain",
        `required: this server serves several domains (${served.join(", ")})`,
      );
    }
    if (!served.includes(given))
      throw errors.invalidRequest("domain", `${given} is not a domain of this server`);
    return given;
  }

  /**
   * The user a push is for: exactly the node given. `+X` and `X` are two accounts (two JIDs): falling back
   * from one spelling to the other would push one user's notifications to another's devices.
   */
  async function recipient(domain: string, node: string, token: string | undefined) {
    const owner = { domain, node };
    if ((await tokensOf(pool, owner, token)).length > 0) return owner;
    throw errors.noTokens(node, domain, token);
  }

  /** The origin of a notification sent to the calling app user; only its recipient may act on it. */
  async function originFor(who: AppCaller, id: string): Promise<{ origin: Origin; from: string }> {
    const found = await findNotification(pool, id, who.jid);
    if (!found) throw errors.noNotification();
    if (!found.origin) throw errors.noOrigin();
    return { origin: found.origin, from: `${who.jid.node}@${who.jid.domain}` };
  }

  /** A reply or a resolve of a notification the caller received: queued for relaying to its origin. */
  const relayRoute = <B extends z.ZodType<{ id: string }>>(
    path: `/${string}`,
    summary: string,
    schema: B,
    action: (body: z.output<B>) => { action: "reply"; text: string } | { action: "resolve" },
  ) =>
    defineRoute({
      method: "post",
      path,
      summary,
      description: path.startsWith("/api/")
        ? RELAY_DESCRIPTION
        : `${RELAY_DESCRIPTION} The legacy path, kept for installed apps: the same as \`/api/v1/notifications${path}\`.`,
      ...(path.startsWith("/api/") ? {} : { deprecated: true }),
      caller: caller.app,
      request: { body: schema },
      responses: { 202: { description: "Queued for relaying", schema: relayQueued } },
      errors: [errors.noNotification, errors.noOrigin],
      async handler({ body, caller: who, res }) {
        const { origin, from } = await originFor(who, body.id);
        const at = new Date().toISOString();
        await relay.enqueue(origin, { notificationId: body.id, ...action(body), from, at });
        res.status(202).json({ relayed: "queued" });
      },
    });

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/notifications/send",
      summary: "Push a notification to a user's devices",
      description:
        "Pushes to every device the user registered (or the one `token` names), in parallel, and answers " +
        "what happened to each. A provider that is busy (429, 5xx) is retried with exponential backoff, " +
        "honouring its Retry-After up to `push.retry.maxMs`; a device the provider says is gone is forgotten. " +
        "An alert without `badge` shows one more than the device's last count; a given `badge` becomes the " +
        "count. The notification's id is added to its data as `notificationId`; replies and resolves typed " +
        "into it are relayed to `callbackUrl` or `buddy` when one is given. `node` is taken as written: " +
        "`+X` and `X` are two users. A `callbackUrl` reaches public addresses only, unless the operator " +
        "lists it in `push.relay.allowTargets`.",
      caller: caller.server("push"),
      request: { body: sendBody },
      responses: { 200: { description: "Pushed: one result per device (see `status`)", schema: sendAnswer } },
      errors: [errors.forbiddenCallback, errors.noTokens],
      async handler({ body, caller: who, res }) {
        checkCallback(body.callbackUrl);
        const owner = await recipient(domainOf(serverDomain(who, body.domain)), body.node, body.token);
        const id = await recordNotification(pool, owner, originOf(body));
        const message = pushMessage(body);
        message.data = { ...message.data, notificationId: id };
        const results = await notifier.toUser(owner, message, body.token);
        // the user's last device went away between the check and the push
        if (results.length === 0) throw errors.noTokens(owner.node, owner.domain, body.token);
        res.json({ id, results });
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/channel_broadcast",
      summary: "Push a notification to every subscriber of a channel",
      description:
        "Queued as a durable job and answered at once; the devices of the channel's subscribers are pushed " +
        "in batches, each device once even when the job is resumed after a crash. Follow it with " +
        "GET …/channel_broadcast/{id}.",
      caller: caller.server("broadcast"),
      request: { body: broadcastBody },
      responses: { 202: { description: "Queued", schema: broadcastQueued } },
      async handler({ body, caller: who, res }) {
        const id = await broadcasts.enqueue({
          domain: domainOf(serverDomain(who, body.domain)),
          channel: body.channel,
          message: pushMessage(body),
        });
        res.status(202).json({ id, status: "queued" });
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/notifications/channel_broadcast/{id}",
      summary: "The progress of a channel broadcast",
      caller: caller.server("broadcast"),
      request: { params: broadcastParams },
      responses: { 200: { description: "Its state and counts so far", schema: broadcastProgress } },
      errors: [errors.noBroadcast],
      async handler({ params, res }) {
        const progress = await broadcasts.progress(params.id);
        if (!progress) throw errors.noBroadcast();
        res.json(progress);
      },
    }),

    // each at its path and at the root, where the legacy services answered them and installed apps call them
    ...["/api/v1/notifications/replies", "/replies"].map((path) =>
      relayRoute(path as `/${string}`, "A reply typed into a notification", replyBody, (body) => ({
        action: "reply",
        text: body.text,
      })),
    ),
    ...["/api/v1/notifications/resolves", "/resolves"].map((path) =>
      relayRoute(path as `/${string}`, "Resolve (acknowledge) a notification", resolveBody, () => ({
        action: "resolve",
      })),
    ),
  ];
}
