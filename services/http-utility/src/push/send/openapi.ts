import type { ZodOpenApiPathsObject } from "zod-openapi";
import { errorResponse, invalidRequest, security } from "../../openapi/components.ts";
import {
  broadcastBody,
  broadcastParams,
  broadcastProgress,
  broadcastQueued,
  relayQueued,
  replyBody,
  resolveBody,
  sendAnswer,
  sendBody,
} from "./schema.ts";

/** The OpenAPI paths of routes.ts: sending, channel broadcasts, replies and resolves. */

const json = <T>(schema: T) => ({
  required: true,
  content: {
    "application/json": { schema },
    "application/x-www-form-urlencoded": { schema },
  },
});

const relayDescription =
  "Relayed to the notification's origin, at least once, with retries (`push.relay.attempts`, each bounded " +
  "by `push.relay.timeoutMs`), surviving a restart: a `callbackUrl` receives a POST with the JSON " +
  '`{ notificationId, action: "reply" | "resolve", text?, from: "<jid>", at }`; a `buddy` receives the same ' +
  "body at its `notification-action` hook on the buddies service. Only the notification's recipient may act on it.";

const relayErrors = {
  ...invalidRequest,
  "404": errorResponse("not_found: no notification with that id was sent to the caller"),
  "409": errorResponse("no_origin: the notification was sent without `callbackUrl` or `buddy`"),
};

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/notifications/send": {
    post: {
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
      security: security.server("push"),
      requestBody: json(sendBody),
      responses: {
        "200": {
          description: "Pushed: one result per device (see `status`)",
          content: { "application/json": { schema: sendAnswer } },
        },
        "400": errorResponse(
          "invalid_request: a field is missing or wrong, named in the message as `<field>: <problem>`; invalid_body: the body is not valid JSON; forbidden_callback: `callbackUrl` names a loopback, private, link-local or other special-use address",
        ),
        "404": errorResponse("no_tokens: the user has no registered device (or none with that token)"),
      },
    },
  },
  "/api/v1/notifications/channel_broadcast": {
    post: {
      summary: "Push a notification to every subscriber of a channel",
      description:
        "Queued as a durable job and answered at once; the devices of the channel's subscribers are pushed " +
        "in batches, each device once even when the job is resumed after a crash. Follow it with " +
        "GET …/channel_broadcast/{id}.",
      security: security.server("broadcast"),
      requestBody: json(broadcastBody),
      responses: {
        "202": {
          description: "Queued",
          content: { "application/json": { schema: broadcastQueued } },
        },
        ...invalidRequest,
      },
    },
  },
  "/api/v1/notifications/channel_broadcast/{id}": {
    get: {
      summary: "The progress of a channel broadcast",
      security: security.server("broadcast"),
      requestParams: { path: broadcastParams },
      responses: {
        "200": {
          description: "Its state and counts so far",
          content: { "application/json": { schema: broadcastProgress } },
        },
        ...invalidRequest,
        "404": errorResponse("not_found: no broadcast with that id"),
      },
    },
  },
  "/api/v1/notifications/replies": {
    post: {
      summary: "A reply typed into a notification",
      description: relayDescription,
      security: security.app,
      requestBody: json(replyBody),
      responses: {
        "202": {
          description: "Queued for relaying",
          content: { "application/json": { schema: relayQueued } },
        },
        ...relayErrors,
      },
    },
  },
  "/api/v1/notifications/resolves": {
    post: {
      summary: "Resolve (acknowledge) a notification",
      description: relayDescription,
      security: security.app,
      requestBody: json(resolveBody),
      responses: {
        "202": {
          description: "Queued for relaying",
          content: { "application/json": { schema: relayQueued } },
        },
        ...relayErrors,
      },
    },
  },
};
