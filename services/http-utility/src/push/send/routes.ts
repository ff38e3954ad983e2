import { randomUUID } from "node:crypto";
import { type Response, Router } from "express";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import { createOutboundPolicy, OutboundRefused } from "#common/http/outbound-address.ts";
import { validated } from "#common/http/validate.ts";
import { type Callers, callerOf } from "../../callers.ts";
import type { Origin, Relay } from "../mongooseim/relay.ts";
import type { Notifier } from "../notifier.ts";
import { tokensOf } from "../token-store.ts";
import type { Broadcasts } from "./broadcast.ts";
import {
  broadcastBody,
  broadcastParams,
  originOf,
  pushMessage,
  replyBody,
  resolveBody,
  sendBody,
} from "./schema.ts";

/**
 * What servers send and what users answer (legacy-api.md "Notifications"): `send` to one user (scope
 * `push`), channel broadcasts (scope `broadcast`), and the replies and resolves an app user types into a
 * notification, relayed to the notification's origin. Paths are relative to /api/v1/notifications.
 */

const noTokens = (node: string, domain: string, token: string | undefined) =>
  new HttpError(
    404,
    "no_tokens",
    token
      ? `${node}@${domain} has no device with that token: check the token, or leave it out to push to every device.`
      : `${node}@${domain} has no device registered for push (store_token).`,
  );
const noNotification = () =>
  new HttpError(404, "not_found", "No such notification of yours: check the id (the data's notificationId).");
const noOrigin = () =>
  new HttpError(
    409,
    "no_origin",
    "This notification was sent without callbackUrl or buddy: there is nowhere to relay to.",
  );
const refusedCallback = (why: string) =>
  new HttpError(400, "forbidden_callback", `callbackUrl: ${why} (docs/security.md).`);
const noBroadcast = () => new HttpError(404, "not_found", "No such broadcast: check the id.");

export interface SendRoutesDeps {
  pool: Pool;
  config: Pick<Config, "domains" | "push">;
  callers: Callers;
  notifier: Notifier;
  broadcasts: Broadcasts;
  relay: Relay;
}

export function sendRoutes(deps: SendRoutesDeps): Router {
  const { pool, callers, notifier, broadcasts, relay } = deps;
  const router = Router();
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
      if (err instanceof OutboundRefused) throw refusedCallback(err.message);
      throw err;
    }
  }

  /** The domain named, or the only one this server serves. */
  function domainOf(given: string | undefined): string {
    const served = Object.keys(deps.config.domains);
    if (given === undefined) {
      if (served.length === 1) return served[0] as string;
      throw new HttpError(
        400,
        "invalid_request",
        `domain: required: this server serves several domains (${served.join(", ")})`,
      );
    }
    if (!served.includes(given)) {
      throw new HttpError(400, "invalid_request", `domain: ${given} is not a domain of this server`);
    }
    return given;
  }

  /**
   * The user a push is for: exactly the node given. `+X` and `X` are two accounts (two JIDs): falling back
   * from one spelling to the other would push one user's notifications to another's devices.
   */
  async function recipient(domain: string, node: string, token: string | undefined) {
    const owner = { domain, node };
    if ((await tokensOf(pool, owner, token)).length > 0) return owner;
    throw noTokens(node, domain, token);
  }

  router.post(
    "/send",
    callers.server("push"),
    validated({ body: sendBody }, async ({ body }, _req, res) => {
      checkCallback(body.callbackUrl);
      const owner = await recipient(domainOf(body.domain), body.node, body.token);
      const id = randomUUID();
      await pool.query("INSERT INTO push_notifications (id, domain, node, origin) VALUES ($1, $2, $3, $4)", [
        id,
        owner.domain,
        owner.node,
        originOf(body),
      ]);
      const message = pushMessage(body);
      message.data = { ...message.data, notificationId: id };
      const results = await notifier.toUser(owner, message, body.token);
      // the user's last device went away between the check and the push
      if (results.length === 0) throw noTokens(owner.node, owner.domain, body.token);
      res.json({ id, results });
    }),
  );

  router.post(
    "/channel_broadcast",
    callers.server("broadcast"),
    validated({ body: broadcastBody }, async ({ body }, _req, res) => {
      const id = await broadcasts.enqueue({
        domain: domainOf(body.domain),
        channel: body.channel,
        message: pushMessage(body),
      });
      res.status(202).json({ id, status: "queued" });
    }),
  );

  router.get(
    "/channel_broadcast/:id",
    callers.server("broadcast"),
    validated({ params: broadcastParams }, async ({ params }, _req, res) => {
      const progress = await broadcasts.progress(params.id);
      if (!progress) throw noBroadcast();
      res.json(progress);
    }),
  );

  /** The origin of a notification sent to the calling app user; only its recipient may act on it. */
  async function originFor(res: Response, id: string): Promise<{ origin: Origin; from: string }> {
    const caller = callerOf(res);
    if (caller.kind !== "app") throw new Error("notifications: a reply reached without an app caller");
    const { rows } = await pool.query<{ origin: Origin | null }>(
      "SELECT origin FROM push_notifications WHERE id = $1 AND domain = $2 AND node = $3",
      [id, caller.jid.domain, caller.jid.node],
    );
    const row = rows[0];
    if (!row) throw noNotification();
    if (!row.origin) throw noOrigin();
    return { origin: row.origin, from: `${caller.jid.node}@${caller.jid.domain}` };
  }

  router.post(
    "/replies",
    callers.app,
    validated({ body: replyBody }, async ({ body }, _req, res) => {
      const { origin, from } = await originFor(res, body.id);
      const at = new Date().toISOString();
      await relay.enqueue(origin, { notificationId: body.id, action: "reply", text: body.text, from, at });
      res.status(202).json({ relayed: "queued" });
    }),
  );

  router.post(
    "/resolves",
    callers.app,
    validated({ body: resolveBody }, async ({ body }, _req, res) => {
      const { origin, from } = await originFor(res, body.id);
      const at = new Date().toISOString();
      await relay.enqueue(origin, { notificationId: body.id, action: "resolve", from, at });
      res.status(202).json({ relayed: "queued" });
    }),
  );

  return router;
}
