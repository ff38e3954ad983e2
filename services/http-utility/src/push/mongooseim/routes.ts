import express, { type ErrorRequestHandler, type Response } from "express";
import { ZodError, z } from "zod";
import type { PushConfig } from "#common/config/push-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import { defineRoute, type Route, type RouteResponse } from "#common/http/route.ts";
import type { Logger } from "#common/logger.ts";
import { caller, type InternalPolicy } from "../../callers.ts";
import { errors } from "../../errors.ts";
import { isMuted } from "../mutes.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { PushService } from "../senders/sender.ts";
import { findToken, type TokenRow } from "../token-store.ts";
import {
  APNS_PAYLOAD_LIMIT,
  apnsPayloadBytes,
  chatHookBody,
  chatNotification,
  deviceParams,
  documentedChatHook,
  type MongoosePushBody,
  mongoosePushBody,
  mongoosePushMessage,
  type Reason,
  reasonAnswer,
} from "./schema.ts";
import { createSessionChecker } from "./sessions.ts";

/**
 * What MongooseIM calls (docs/push.md "MongooseIM"): its chat-message hook
 * (https://esl.github.io/MongooseDocs/latest/modules/mod_event_pusher_http/), answered at once and pushed in
 * the background, and the MongoosePush API (https://esl.github.io/MongoosePush/v2.3.0/http_api.html) that its
 * XEP-0357 push calls (https://esl.github.io/MongooseDocs/latest/modules/mod_push_service_mongoosepush/),
 * answered as MongoosePush does. MongooseIM authenticates to neither, so both are `caller.internal`: loopback
 * and `push.hooks.allow`, decided on the connection's address. Mounted on the internal listener's app only
 * (app.ts), with no body parser before them: each route parses its own body (`use`).
 */

const BODY_LIMIT = "64kb";
/** Where the MongoosePush API's answers, its refusals included, are MongoosePush's `{ reason }`. */
export const MONGOOSEPUSH_PREFIXES = ["/v2/notification", "/v3/notification"];

export interface MongooseImDeps {
  pool: Pool;
  config: { push: Pick<PushConfig, "apps" | "hooks"> };
  notifier: Notifier;
  log: Logger;
}

/** The reason of a provider's refusal for size (APNs PayloadTooLarge, FCM "message is too big"). */
const TOO_LARGE = /PayloadTooLarge|too (large|big)|payload-size/i;
/** The reason of a give-up after throttling (HTTP 429, APNs TooManyRequests, FCM QUOTA_EXCEEDED, rate-exceeded). */
const THROTTLED = /\b429\b|TooManyRequests|too many requests|QUOTA_EXCEEDED|rate-exceeded|throttl/i;

/** Each of MongoosePush's answers but 200, with what it means here. */
const REFUSALS: Record<Reason, { status: number; description: string }> = {
  invalid_request: {
    status: 400,
    description: "invalid_request: a bad body, or a device no app can be chosen for",
  },
  unregistered: {
    status: 410,
    description: "unregistered: the token is dead (MongooseIM disables the device's push node)",
  },
  payload_too_large: {
    status: 413,
    description: "payload_too_large: over 4 KB for APNs (5 KB PushKit), or the provider said so",
  },
  too_many_requests: { status: 429, description: "too_many_requests: the provider kept throttling" },
  internal_error: { status: 500, description: "internal_error: the provider refused it for another reason" },
  unable_to_connect: {
    status: 503,
    description: "unable_to_connect: the provider failed or is unreachable, or the app has no sender",
  },
};

/** A TokenResult as MongoosePush would have answered it; undefined: sent. */
export function reasonOf(result: Pick<TokenResult, "status" | "reason">): Reason | undefined {
  switch (result.status) {
    case "sent":
      return undefined;
    case "dead_token":
      return "unregistered";
    case "no_sender":
      return "unable_to_connect";
    case "gave_up":
      return THROTTLED.test(result.reason ?? "") ? "too_many_requests" : "unable_to_connect";
    case "failed":
      return TOO_LARGE.test(result.reason ?? "") ? "payload_too_large" : "internal_error";
  }
}

const answer = (res: Response, reason: Reason | undefined) => {
  if (reason === undefined) res.status(200).json(null);
  else res.status(REFUSALS[reason].status).json({ reason });
};

/**
 * The app (and service) of a device MongooseIM knows and we never stored (an app that enables XEP-0357
 * push itself): the app whose bundle id is the APNs topic (`.voip`: PushKit), else an app named in `tags`,
 * else the only app with credentials for that service.
 */
export function guessApp(
  push: Pick<PushConfig, "apps">,
  b: Pick<MongoosePushBody, "service"> & { topic?: string | undefined; tags?: string[] | undefined },
): { app: string; service: PushService } | undefined {
  const apps = Object.entries(push.apps);
  if (b.service === "apns" && b.topic !== undefined) {
    for (const [app, creds] of apps) {
      if (creds.apns?.bundleId === b.topic) return { app, service: "apns" };
      if (creds.apns && `${creds.apns.bundleId}.voip` === b.topic) return { app, service: "apns-voip" };
    }
  }
  const service: PushService = b.service === "apns" && b.topic?.endsWith(".voip") ? "apns-voip" : b.service;
  const able = apps.filter(([, creds]) => creds[b.service] !== undefined).map(([app]) => app);
  const tagged = b.tags?.find((tag) => able.includes(tag));
  if (tagged !== undefined) return { app: tagged, service };
  const [only, ...more] = able;
  return only !== undefined && more.length === 0 ? { app: only, service } : undefined;
}

/** The stored row of a device; an APNs token may be stored as PushKit's (the topic says which first). */
async function storedRow(pool: Pool, b: MongoosePushBody, deviceId: string): Promise<TokenRow | undefined> {
  const services: PushService[] =
    b.service === "fcm"
      ? ["fcm"]
      : b.topic?.endsWith(".voip")
        ? ["apns-voip", "apns"]
        : ["apns", "apns-voip"];
  for (const service of services) {
    const row = await findToken(pool, service, deviceId);
    if (row) return row;
  }
  return undefined;
}

/** MongoosePush's answers: `null` when sent, else `{ reason }` alone, in place of the common error format. */
const mongoosePushResponses: Record<number, RouteResponse> = {
  200: { description: "Sent", schema: z.null() },
  ...Object.fromEntries(
    Object.values(REFUSALS).map(({ status, description }) => [
      status,
      { description, schema: reasonAnswer, replacesErrors: true },
    ]),
  ),
};

export function mongooseImRoutes(deps: MongooseImDeps): Route<InternalPolicy>[] {
  const { pool, notifier } = deps;
  const fromMongooseIm = caller.internal(deps.config.push.hooks.allow);
  const sessionsConfig = deps.config.push.hooks.sessions;
  const sessions = sessionsConfig ? createSessionChecker(sessionsConfig, deps.log) : undefined;
  /**
   * Whether the receiver needs the push: not when they muted the chat with its author (push/mutes.ts), and
   * with MongooseIM 2.1.0's session list only when not connected.
   */
  const needsPush = async (owner: { domain: string; node: string }, author: string): Promise<boolean> => {
    const receiver = { domain: owner.domain.toLowerCase(), node: owner.node.toLowerCase() };
    if (await isMuted(pool, receiver, author)) return false;
    if (!sessions || !sessionsConfig) return true;
    const online = await sessions.online(owner);
    return online === undefined ? sessionsConfig.onError === "push" : !online;
  };

  const mongoosePush = (version: "v2" | "v3") =>
    defineRoute({
      method: "post",
      path: `/${version}/notification/{deviceId}`,
      summary: "MongoosePush API: push to one device",
      description:
        "What `mod_push_service_mongoosepush` calls (v3; MongooseIM 2.1.0 calls v2, which behaves the same). " +
        "A device we never stored is pushed with the app whose `apns.bundleId` is the `topic` " +
        "(`<bundleId>.voip`: PushKit), else an app named in `tags`, else the only app with credentials for " +
        "`service`. Errors answer `{ reason }` only, as MongoosePush does. On the internal listener only " +
        "(`services.httpUtility.internal`; 404 on the public one), from loopback and `push.hooks.allow`.",
      caller: fromMongooseIm,
      request: {
        params: deviceParams,
        body: mongoosePushBody,
        documentedBody: { "application/json": mongoosePushBody },
      },
      responses: mongoosePushResponses,
      // whatever its content type says: MongooseIM sends JSON
      use: [express.json({ type: () => true, limit: BODY_LIMIT })],
      async handler({ params, body, req, res }) {
        const log = req.log ?? deps.log;
        const message = mongoosePushMessage(body);
        let row = await storedRow(pool, body, params.deviceId);
        if (!row) {
          const guess = guessApp(deps.config.push, body);
          if (!guess) {
            log.warn(
              { service: body.service, topic: body.topic, tags: body.tags },
              "MongoosePush: a device we never stored, and no app matches its topic or tags (or several apps could push to it)",
            );
            answer(res, "invalid_request");
            return;
          }
          // whose device it is we do not know: no badge of our own, only the one MongooseIM counts
          row = { ...guess, token: params.deviceId, domain: "", node: "", badge: 0 };
        }
        if (row.service !== "fcm" && apnsPayloadBytes(message) > APNS_PAYLOAD_LIMIT[row.service]) {
          answer(res, "payload_too_large");
          return;
        }
        const result = await notifier.toToken(row, message);
        if (result.status !== "sent")
          log.info({ status: result.status, reason: result.reason }, "MongoosePush: not sent");
        answer(res, reasonOf(result));
      },
    });

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/mongooseim/messages",
      summary: "MongooseIM's chat-message hook: push a \"new message\" to the receiver's devices",
      description:
        "Called by `mod_http_notification` (MongooseIM 2.1.0) and `mod_event_pusher_http` (6.x) for each " +
        "one-to-one message with a body. Answered at once; the push to `receiver@server`'s devices follows " +
        "in the background (title: the author, body: the message cut to 200 characters, data " +
        '`{ "type": "chat", "from": "author@server" }`, grouped per sender). 2.1.0 does not encode the ' +
        "values: everything after the first `&message=` is the message, taken as it is unless it is cleanly " +
        "form-encoded (6.x); at most 64 KB. On the internal listener only (`services.httpUtility.internal`, " +
        "127.0.0.1:3001 by default; 404 on the public one), from loopback and `push.hooks.allow`. With " +
        "`push.hooks.sessions` (MongooseIM 2.1.0, which calls this for every message), a receiver with an open " +
        "session gets no push; nor does one who muted the chat with its author (`POST …/notifications/mute`).",
      caller: fromMongooseIm,
      request: {
        body: chatHookBody,
        documentedBody: { "application/x-www-form-urlencoded": documentedChatHook },
      },
      responses: { 204: { description: "Accepted: the push is under way" } },
      // the raw body whatever its content type: 2.1.0's is not form-encoded (schema.ts reads it)
      use: [express.text({ type: () => true, limit: BODY_LIMIT, defaultCharset: "utf-8" })],
      handler({ body: hook, req, res }) {
        // MongooseIM waits for this answer inside the sender's session, and ignores its code
        res.status(204).end();
        const log = req.log ?? deps.log;
        const owner = { domain: hook.server, node: hook.receiver };
        const author = `${hook.author}@${hook.server}`.toLowerCase();
        // a notifier that throws before its promise is a rejection too: the answer is gone, nothing may reach `next`
        Promise.resolve()
          .then(async () =>
            (await needsPush(owner, author)) ? notifier.toUser(owner, chatNotification(hook)) : undefined,
          )
          .then(
            (results) => {
              if (!results) {
                log.debug(
                  { receiver: `${owner.node}@${owner.domain}` },
                  "chat message not pushed: receiver online, or the chat muted",
                );
                return;
              }
              const statuses = results.map((r) => r.status);
              log.debug({ receiver: `${owner.node}@${owner.domain}`, statuses }, "chat message pushed");
            },
            (err: unknown) =>
              log.error({ err, receiver: `${owner.node}@${owner.domain}` }, "chat message push failed"),
          );
      },
    }),
    mongoosePush("v2"),
    mongoosePush("v3"),
  ];
}

/**
 * What the MongoosePush routes refuse, in MongoosePush's words: the body parser's and zod's refusals, a device
 * id that does not decode (which fails before the route), and what the handler throws. Mounted after their
 * routes at `MONGOOSEPUSH_PREFIXES`; a refused address stays a `forbidden_address` in the common format, and
 * any other method is the common 404.
 */
export function mongoosePushErrors(deps: { log: Logger }): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (req.method !== "POST" || (err instanceof HttpError && err.code === errors.forbiddenAddress.code)) {
      next(err);
      return;
    }
    const log = req.log ?? deps.log;
    const type = (err as { type?: unknown }).type;
    // what body-parser and the router refuse as the client's fault (a charset that is not UTF-8 is a 415, a
    // device id that is not UTF-8 once decoded a 400): both carry a 4xx `status`
    const status = (err as { status?: unknown }).status;
    const clientFault = typeof status === "number" && status >= 400 && status < 500;
    if (type === "entity.too.large") {
      answer(res, "payload_too_large");
    } else if (err instanceof ZodError || type === "entity.parse.failed" || clientFault) {
      // MongoosePush answers the reason only: the log says what was wrong
      log.warn(
        { problem: err instanceof ZodError ? err.issues[0] : (err as Error).message },
        "MongoosePush: invalid request",
      );
      answer(res, "invalid_request");
    } else {
      log.error({ err }, "MongoosePush: unexpected error");
      answer(res, "internal_error");
    }
  };
}
