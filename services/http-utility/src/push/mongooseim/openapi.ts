import { z } from "zod";
import type { ZodOpenApiOperationObject, ZodOpenApiPathsObject } from "zod-openapi";
import { errorResponse, security } from "../../openapi/components.ts";
import { deviceParams, documentedChatHook, mongoosePushBody, reasonAnswer } from "./schema.ts";

/**
 * The OpenAPI paths of what MongooseIM calls (routes.ts), served on the internal listener only
 * (`services.httpUtility.internal`). None takes credentials: each answers loopback and `push.hooks.allow`
 * addresses only, on the connection's address. `paths` is under /api/v1; `mongoosePushPaths` are where
 * MongoosePush has them (`/v2/…`, `/v3/…`), outside /api/.
 */

const forbidden = errorResponse(
  "forbidden_address: the connection comes neither from loopback nor from `push.hooks.allow` (X-Forwarded-For never counts)",
);

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/mongooseim/messages": {
    post: {
      summary: "MongooseIM's chat-message hook: push a \"new message\" to the receiver's devices",
      description:
        "Called by `mod_http_notification` (MongooseIM 2.1.0) and `mod_event_pusher_http` (6.x) for each " +
        "one-to-one message with a body. Answered at once; the push to `receiver@server`'s devices follows " +
        "in the background (title: the author, body: the message cut to 200 characters, data " +
        '`{ "type": "chat", "from": "author@server" }`, grouped per sender). 2.1.0 does not encode the ' +
        "values: everything after the first `&message=` is the message, taken as it is unless it is cleanly " +
        "form-encoded (6.x). On the internal listener only (`services.httpUtility.internal`, 127.0.0.1:3001 by " +
        "default; 404 on the public one), from loopback and `push.hooks.allow`.",
      security: security.public,
      requestBody: {
        required: true,
        content: { "application/x-www-form-urlencoded": { schema: documentedChatHook } },
      },
      responses: {
        "204": { description: "Accepted: the push is under way" },
        "400": errorResponse("invalid_request: no receiver, author, server or message"),
        "403": forbidden,
        "413": errorResponse("payload_too_large: the body is over 64 KB"),
      },
    },
  },
};

const mongoosePush: ZodOpenApiOperationObject = {
  summary: "MongoosePush API: push to one device",
  description:
    "What `mod_push_service_mongoosepush` calls (v3; MongooseIM 2.1.0 calls v2, which behaves the same). " +
    "A device we never stored is pushed with the app whose `apns.bundleId` is the `topic` " +
    "(`<bundleId>.voip`: PushKit), else an app named in `tags`, else the only app with credentials for " +
    "`service`. Errors answer `{ reason }` only, as MongoosePush does. On the internal listener only " +
    "(`services.httpUtility.internal`; 404 on the public one), from loopback and `push.hooks.allow`.",
  security: security.public,
  requestParams: { path: deviceParams },
  requestBody: { required: true, content: { "application/json": { schema: mongoosePushBody } } },
  responses: {
    "200": { description: "Sent", content: { "application/json": { schema: z.null() } } },
    ...Object.fromEntries(
      (
        [
          ["400", "invalid_request: a bad body, or a device no app can be chosen for"],
          ["410", "unregistered: the token is dead (MongooseIM disables the device's push node)"],
          ["413", "payload_too_large: over 4 KB for APNs (5 KB PushKit), or the provider said so"],
          ["429", "too_many_requests: the provider kept throttling"],
          ["500", "internal_error: the provider refused it for another reason"],
          ["503", "unable_to_connect: the provider failed or is unreachable, or the app has no sender"],
        ] as const
      ).map(([status, description]) => [
        status,
        { description, content: { "application/json": { schema: reasonAnswer } } },
      ]),
    ),
    "403": forbidden,
  },
};

export const mongoosePushPaths: ZodOpenApiPathsObject = {
  "/v2/notification/{deviceId}": { post: mongoosePush },
  "/v3/notification/{deviceId}": { post: mongoosePush },
};
