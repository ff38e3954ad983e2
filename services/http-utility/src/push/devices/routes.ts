import { type Response, Router } from "express";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import { validated } from "#common/http/validate.ts";
import type { Jid } from "#common/users/jid.ts";
import { appJid, type Callers } from "../../callers.ts";
import type { Notifier } from "../notifier.ts";
import {
  deleteAllTokens,
  deleteToken,
  registerToken,
  resetBadge,
  subscribe,
  unsubscribe,
} from "../token-store.ts";
import {
  channelBody,
  deleteAllTokensBody,
  deleteTokenBody,
  type ResetBadgeAnswer,
  resetBadgeBody,
  type StoreTokenAnswer,
  storeTokenBody,
} from "./schema.ts";

/**
 * An app user's devices and channels (docs/push.md "Tokens"): register and forget device tokens,
 * reset the badge, subscribe to broadcast channels. Each acts on the caller's own account only; `node` (and
 * `domain`) are what the legacy apps send, checked against the caller's JID rather than trusted.
 */

/** Legacy apps send their msisdn as `node`, with or without the `+` their JID may have. */
const bare = (node: string) => node.replace(/^\+/, "");

const notYourDevices = (node: string) =>
  new HttpError(
    403,
    "forbidden",
    `node ${node} is not yours: you can only register your own devices (node is the user part of your JID).`,
  );
const notYourDomain = (domain: string) =>
  new HttpError(
    403,
    "forbidden",
    `domain ${domain} is not yours: you can subscribe in your own domain only (the domain of your JID).`,
  );
const noApp = (domain: string) =>
  new HttpError(
    422,
    "no_app",
    `No app is configured for ${domain}: send \`app\`, or ask the operator to set push.domains."${domain}".app in the config.`,
  );
const unknownApp = (app: string) =>
  new HttpError(
    422,
    "unknown_app",
    `The app "${app}" has no push credentials here: send one of the configured apps, or ask the operator to add push.apps."${app}".`,
  );
/** Says neither whose the token is nor when it was registered: only what the caller can do. */
export const tokenInUse = (moveAfterDays: number) =>
  new HttpError(
    409,
    "token_in_use",
    `This device token is registered to another account. Send the deviceSecret this app install registered it with, or register it again once that registration is ${moveAfterDays} days old without renewal.`,
  );
const notYourToken = () =>
  new HttpError(404, "not_found", "No such token among your devices: register it with store_token first.");

export interface DeviceRoutesDeps {
  pool: Pool;
  config: Pick<Config, "push">;
  callers: Callers;
  notifier: Notifier;
}

export function deviceRoutes(deps: DeviceRoutesDeps): Router {
  const { pool, callers, notifier } = deps;
  const push = deps.config.push;
  const router = Router();

  /** The caller's JID, once `node` (when given) is checked to be theirs. */
  function owner(res: Response, node: string | undefined): Jid {
    const jid = appJid(res);
    if (!jid) throw new Error("notifications: a device route reached without an app caller");
    if (node !== undefined && bare(node) !== bare(jid.node)) throw notYourDevices(node);
    return jid;
  }

  function appOf(jid: Jid, given: string | undefined): string {
    const app = given ?? push.domains[jid.domain]?.app;
    if (app === undefined) throw noApp(jid.domain);
    if (!Object.hasOwn(push.apps, app)) throw unknownApp(app);
    return app;
  }

  router.post(
    "/store_token",
    callers.app,
    validated({ body: storeTokenBody }, async ({ body }, req, res) => {
      const jid = owner(res, body.node);
      const app = appOf(jid, body.app);
      const r = await registerToken(
        pool,
        { ...jid, service: body.service, token: body.token, app },
        push.maxTokensPerUser,
        { moveAfterDays: push.tokenMoveAfterDays, deviceSecret: body.deviceSecret },
      );
      if (r.outcome === "refused") throw tokenInUse(push.tokenMoveAfterDays);
      // whose it was is for the operator debugging a device, never for the caller (nor for info logs)
      if (r.outcome === "moved") req.log?.debug({ service: body.service, from: r.from }, "push token moved");
      const answer: StoreTokenAnswer = {
        stored: true,
        outcome: r.outcome === "refreshed" ? "refreshed" : "new",
        app,
        evicted: r.evicted,
      };
      res.json(answer);
    }),
  );

  router.post(
    "/delete_token",
    callers.app,
    validated({ body: deleteTokenBody }, async ({ body }, _req, res) => {
      res.json({ deleted: await deleteToken(pool, owner(res, body.node), body.token) });
    }),
  );

  router.post(
    "/delete_all_tokens",
    callers.app,
    validated({ body: deleteAllTokensBody }, async ({ body }, _req, res) => {
      res.json({ deleted: await deleteAllTokens(pool, owner(res, body.node)) });
    }),
  );

  router.post(
    "/reset_badge",
    callers.app,
    validated({ body: resetBadgeBody }, async ({ body }, _req, res) => {
      const rows = await resetBadge(pool, owner(res, body.node), body.token);
      if (rows.length === 0) throw notYourToken();
      // only an APNs alert carries the icon's badge; FCM apps and PushKit keep their count in the app
      const apns = rows.find((r) => r.service === "apns");
      const answer: ResetBadgeAnswer = {
        reset: true,
        update: apns ? await notifier.toToken(apns, { silent: true, badge: 0 }) : null,
      };
      res.json(answer);
    }),
  );

  /** The caller, subscribing in their own domain: `domain`, when given, must be theirs. */
  function subscriber(res: Response, body: { node: string; domain?: string | undefined }): Jid {
    const jid = owner(res, body.node);
    if (body.domain !== undefined && body.domain !== jid.domain) throw notYourDomain(body.domain);
    return jid;
  }

  router.post(
    "/channel_subscribe",
    callers.app,
    validated({ body: channelBody }, async ({ body }, _req, res) => {
      res.json({ subscribed: await subscribe(pool, subscriber(res, body), body.channel) });
    }),
  );

  router.post(
    "/channel_unsubscribe",
    callers.app,
    validated({ body: channelBody }, async ({ body }, _req, res) => {
      res.json({ unsubscribed: await unsubscribe(pool, subscriber(res, body), body.channel) });
    }),
  );

  return router;
}
