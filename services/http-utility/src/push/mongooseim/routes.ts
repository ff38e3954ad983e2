import express, { type ErrorRequestHandler, type RequestHandler, type Response, Router } from "express";
import { ZodError } from "zod";
import type { PushConfig } from "#common/config/push-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import { createAllowList } from "#common/http/address-allow-list.ts";
import { validated } from "#common/http/validate.ts";
import type { Logger } from "#common/logger.ts";
import type { Notifier, TokenResult } from "../notifier.ts";
import type { PushService } from "../senders/sender.ts";
import { findToken, type TokenRow } from "../token-store.ts";
import {
  APNS_PAYLOAD_LIMIT,
  apnsPayloadBytes,
  chatHookBody,
  chatNotification,
  deviceParams,
  type MongoosePushBody,
  mongoosePushBody,
  mongoosePushMessage,
  type Reason,
} from "./schema.ts";

/**
 * What MongooseIM calls (../shared/mongooseim-contract.md §3, §4): its chat-message hook, answered at once
 * and pushed in the background, and the MongoosePush API of its XEP-0357 push, answered as MongoosePush
 * does. MongooseIM authenticates to neither, so both answer loopback and `push.hooks.allow` only, decided on
 * the connection's address: never `req.ip`, which a trusted proxy's X-Forwarded-For sets, so that a header
 * can never make a stranger local. Mounted on the internal listener's app only (app.ts), whose paths are
 * absolute, with no body parser before it: the hook reads its raw body.
 */

export const CHAT_HOOK_PATH = "/api/v1/mongooseim/messages";
export const MONGOOSEPUSH_PATHS = ["/v2/notification/:deviceId", "/v3/notification/:deviceId"] as const;
const BODY_LIMIT = "64kb";

export interface MongooseImDeps {
  pool: Pool;
  config: { push: Pick<PushConfig, "apps" | "hooks"> };
  notifier: Notifier;
  log: Logger;
}

const forbiddenAddress = (ip: string | undefined) =>
  new HttpError(
    403,
    "forbidden_address",
    `${ip ?? "this address"} may not call MongooseIM's endpoints: add it to push.hooks.allow (loopback always may).`,
  );

/** The reason of a provider's refusal for size (APNs PayloadTooLarge, FCM "message is too big"). */
const TOO_LARGE = /PayloadTooLarge|too (large|big)|payload-size/i;
/** The reason of a give-up after throttling (HTTP 429, APNs TooManyRequests, FCM QUOTA_EXCEEDED, rate-exceeded). */
const THROTTLED = /\b429\b|TooManyRequests|too many requests|QUOTA_EXCEEDED|rate-exceeded|throttl/i;

const STATUS: Record<Reason, number> = {
  invalid_request: 400,
  unregistered: 410,
  payload_too_large: 413,
  too_many_requests: 429,
  unable_to_connect: 503,
  internal_error: 500,
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
  else res.status(STATUS[reason]).json({ reason });
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

/** Lets through connections from loopback and `allow`; the socket's address, whatever the headers say. */
export function fromAddresses(allow: readonly string[]): RequestHandler {
  const allowed = createAllowList(allow);
  return (req, _res, next) => {
    const address = req.socket.remoteAddress;
    next(allowed(address) ? undefined : forbiddenAddress(address));
  };
}

export function mongooseImRoutes(deps: MongooseImDeps): Router {
  const { pool, notifier } = deps;
  const fromMongooseIm = fromAddresses(deps.config.push.hooks.allow);
  const router = Router();

  router.post(
    CHAT_HOOK_PATH,
    fromMongooseIm,
    express.text({ type: () => true, limit: BODY_LIMIT, defaultCharset: "utf-8" }),
    validated({ body: chatHookBody }, ({ body: hook }, req, res) => {
      // MongooseIM waits for this answer inside the sender's session, and ignores its code
      res.status(204).end();
      const log = req.log ?? deps.log;
      const owner = { domain: hook.server, node: hook.receiver };
      // a notifier that throws before its promise is a rejection too: the answer is gone, nothing may reach `next`
      Promise.resolve()
        .then(() => notifier.toUser(owner, chatNotification(hook)))
        .then(
          (results) => {
            const statuses = results.map((r) => r.status);
            log.debug({ receiver: `${owner.node}@${owner.domain}`, statuses }, "chat message pushed");
          },
          (err: unknown) =>
            log.error({ err, receiver: `${owner.node}@${owner.domain}` }, "chat message push failed"),
        );
    }),
  );

  /** The body parser's and zod's refusals in MongoosePush's words; what is not a refusal goes on. */
  const mongoosePushErrors: ErrorRequestHandler = (err, req, res, next) => {
    if (err instanceof HttpError && err.code === "forbidden_address") {
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

  for (const path of MONGOOSEPUSH_PATHS) {
    router.post(
      path,
      fromMongooseIm,
      express.json({ type: () => true, limit: BODY_LIMIT }),
      validated({ params: deviceParams, body: mongoosePushBody }, async ({ params, body }, req, res) => {
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
      }),
      mongoosePushErrors,
    );
  }
  // an error before a route's own handlers (a device id that cannot be decoded fails the path's match): in
  // MongoosePush's words for the method it serves, the common ones for any other
  router.use(["/v2/notification", "/v3/notification"], ((err, req, res, next) =>
    req.method === "POST" ? mongoosePushErrors(err, req, res, next) : next(err)) as ErrorRequestHandler);

  return router;
}
