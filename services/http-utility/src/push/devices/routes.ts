import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import type { Jid } from "#common/users/jid.ts";
import { type CallerPolicy, caller } from "../../callers.ts";
import { errors } from "../../errors.ts";
import { type Mute, mute, mutesOf, unmute } from "../mutes.ts";
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
  deletedAnswer,
  deleteTokenBody,
  muteAnswer,
  muteBody,
  mutesAnswer,
  type ResetBadgeAnswer,
  resetBadgeAnswer,
  resetBadgeBody,
  type StoreTokenAnswer,
  storeTokenAnswer,
  storeTokenBody,
  subscribedAnswer,
  unmuteBody,
  unmutedAnswer,
  unsubscribedAnswer,
} from "./schema.ts";

const muteJson = (m: Mute) => ({ peer: m.peer, until: m.until ? m.until.toISOString() : null });

/**
 * An app user's devices and channels (docs/push.md "Tokens"): register and forget device tokens,
 * reset the badge, subscribe to broadcast channels. Each acts on the caller's own account only; `node` (and
 * `domain`) are what the legacy apps send, checked against the caller's JID rather than trusted.
 */

/** Legacy apps send their msisdn as `node`, with or without the `+` their JID may have. */
const bare = (node: string) => node.replace(/^\+/, "");

/** The caller's JID, once `node` (when given) is checked to be theirs. */
function owner(jid: Jid, node: string | undefined): Jid {
  if (node !== undefined && bare(node) !== bare(jid.node)) throw errors.nodeNotYours(node);
  return jid;
}

/** The caller, subscribing in their own domain: `domain`, when given, must be theirs. */
function subscriber(jid: Jid, body: { node: string; domain?: string | undefined }): Jid {
  owner(jid, body.node);
  if (body.domain !== undefined && body.domain !== jid.domain) throw errors.domainNotYours(body.domain);
  return jid;
}

/** Installed legacy apps name themselves by `node` in the body (callers.ts `appOrLegacy`). */
const legacyCaller = (endpoint: string) =>
  caller.appOrLegacy(endpoint, (req) => (req.body as { node?: unknown } | undefined)?.node);

export function deviceRoutes(deps: {
  pool: Pool;
  config: Pick<Config, "push">;
  notifier: Notifier;
}): Route<CallerPolicy>[] {
  const { pool, notifier } = deps;
  const push = deps.config.push;

  function appOf(jid: Jid, given: string | undefined): string {
    const app = given ?? push.domains[jid.domain]?.app;
    if (app === undefined) throw errors.noPushApp(jid.domain);
    if (!Object.hasOwn(push.apps, app)) throw errors.unknownPushApp(app);
    return app;
  }

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/notifications/store_token",
      summary: "Register a device token of the caller",
      description:
        "Idempotent: registering a token again makes it the caller's most recently registered device. A token " +
        "(per `service`) belongs to one user: registered to another, it moves to the caller (badge back to 0) " +
        "only with the `deviceSecret` it was registered with (the same app install) or once that registration " +
        "is older than `push.tokenMoveAfterDays` (30 by default); otherwise 409 token_in_use. The answer never " +
        "tells whether or whose the token was before. A user keeps at most `push.maxTokensPerUser` (10 by " +
        "default) tokens per app; one more forgets the least recently registered. `app` defaults to " +
        "`push.domains.<caller's domain>.app`.",
      caller: legacyCaller("store_token"),
      request: { body: storeTokenBody },
      responses: { 200: { description: "Stored", schema: storeTokenAnswer } },
      errors: [errors.nodeNotYours, errors.tokenInUse, errors.noPushApp, errors.unknownPushApp],
      async handler({ body, caller: who, req, res }) {
        const jid = owner(who.jid, body.node);
        const app = appOf(jid, body.app);
        const r = await registerToken(
          pool,
          { ...jid, service: body.service, token: body.token, app },
          push.maxTokensPerUser,
          { moveAfterDays: push.tokenMoveAfterDays, deviceSecret: body.deviceSecret },
        );
        if (r.outcome === "refused") throw errors.tokenInUse(push.tokenMoveAfterDays);
        // whose it was is for the operator debugging a device, never for the caller (nor for info logs)
        if (r.outcome === "moved")
          req.log?.debug({ service: body.service, from: r.from }, "push token moved");
        const answer: StoreTokenAnswer = {
          stored: true,
          outcome: r.outcome === "refreshed" ? "refreshed" : "new",
          app,
          evicted: r.evicted,
        };
        res.json(answer);
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/delete_token",
      summary: "Forget one of the caller's device tokens",
      description:
        "Whatever its service. A token that is not the caller's (another user's, or unknown) is left alone: `deleted` is 0.",
      caller: legacyCaller("delete_token"),
      request: { body: deleteTokenBody },
      responses: {
        200: { description: "Done: `deleted` is the number of tokens forgotten", schema: deletedAnswer },
      },
      errors: [errors.nodeNotYours],
      async handler({ body, caller: who, res }) {
        res.json({ deleted: await deleteToken(pool, owner(who.jid, body.node), body.token) });
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/delete_all_tokens",
      summary: "Forget all the caller's device tokens",
      description: "Of every app and service, e.g. at logout on every device.",
      caller: legacyCaller("delete_all_tokens"),
      request: { body: deleteAllTokensBody },
      responses: {
        200: { description: "Done: `deleted` is the number of tokens forgotten", schema: deletedAnswer },
      },
      errors: [errors.nodeNotYours],
      async handler({ body, caller: who, res }) {
        res.json({ deleted: await deleteAllTokens(pool, owner(who.jid, body.node)) });
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/reset_badge",
      summary: "Set the badge of one of the caller's devices back to 0",
      description:
        "The stored count restarts at 0 (the next alert shows 1); for an `apns` token a silent push sets the " +
        "icon's badge to 0 now, and `update` says how that went. `node` is optional here.",
      caller: legacyCaller("reset_badge"),
      request: { body: resetBadgeBody },
      responses: { 200: { description: "Reset", schema: resetBadgeAnswer } },
      errors: [errors.nodeNotYours, errors.noDevice],
      async handler({ body, caller: who, res }) {
        const rows = await resetBadge(pool, owner(who.jid, body.node), body.token);
        if (rows.length === 0) throw errors.noDevice();
        // only an APNs alert carries the icon's badge; FCM apps and PushKit keep their count in the app
        const apns = rows.find((r) => r.service === "apns");
        const answer: ResetBadgeAnswer = {
          reset: true,
          update: apns ? await notifier.toToken(apns, { silent: true, badge: 0 }) : null,
        };
        res.json(answer);
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/channel_subscribe",
      summary: "Subscribe the caller to a broadcast channel of their domain",
      description: "Idempotent: subscribing again changes nothing (`subscribed` is then false).",
      caller: legacyCaller("channel_subscribe"),
      request: { body: channelBody },
      responses: { 200: { description: "Subscribed", schema: subscribedAnswer } },
      errors: [errors.nodeNotYours, errors.domainNotYours],
      async handler({ body, caller: who, res }) {
        res.json({ subscribed: await subscribe(pool, subscriber(who.jid, body), body.channel) });
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/channel_unsubscribe",
      summary: "Unsubscribe the caller from a broadcast channel",
      description:
        "Idempotent: unsubscribing from a channel the caller is not subscribed to answers `unsubscribed: false`.",
      caller: legacyCaller("channel_unsubscribe"),
      request: { body: channelBody },
      responses: { 200: { description: "Not subscribed (any more)", schema: unsubscribedAnswer } },
      errors: [errors.nodeNotYours, errors.domainNotYours],
      async handler({ body, caller: who, res }) {
        res.json({ unsubscribed: await unsubscribe(pool, subscriber(who.jid, body), body.channel) });
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/mute",
      summary: "Mute a chat: no push for its messages",
      description:
        "MongooseIM's chat-message hook pushes nothing to the caller for messages from `peer` until `minutes` " +
        "pass, or until unmuted without it. Muting again replaces the end. Pushes servers send with " +
        "`POST …/send` are not affected.",
      caller: caller.app,
      request: { body: muteBody },
      responses: { 200: { description: "Muted", schema: muteAnswer } },
      async handler({ body, caller: who, res }) {
        res.json(muteJson(await mute(pool, who.jid, body.peer, body.minutes)));
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/notifications/unmute",
      summary: "Unmute a chat",
      description: "Idempotent: unmuting a chat that is not muted answers `unmuted: false`.",
      caller: caller.app,
      request: { body: unmuteBody },
      responses: { 200: { description: "Not muted (any more)", schema: unmutedAnswer } },
      async handler({ body, caller: who, res }) {
        res.json({ unmuted: await unmute(pool, who.jid, body.peer) });
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/notifications/mutes",
      summary: "The caller's muted chats",
      description: "Those still muted, by peer.",
      caller: caller.app,
      responses: { 200: { description: "The muted chats", schema: mutesAnswer } },
      async handler({ caller: who, res }) {
        res.json({ mutes: (await mutesOf(pool, who.jid)).map(muteJson) });
      },
    }),
  ];
}
