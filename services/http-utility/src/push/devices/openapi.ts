import type { z } from "zod";
import type { ZodOpenApiOperationObject, ZodOpenApiPathsObject } from "zod-openapi";
import { errorResponse, invalidRequest, security } from "../../openapi/components.ts";
import {
  channelBody,
  deleteAllTokensBody,
  deletedAnswer,
  deleteTokenBody,
  resetBadgeAnswer,
  resetBadgeBody,
  storeTokenAnswer,
  storeTokenBody,
  subscribedAnswer,
  unsubscribedAnswer,
} from "./schema.ts";

/** The OpenAPI paths of the app's device and channel routes (routes.ts), from their schemas. */

const notYours = (what: string) =>
  errorResponse(`forbidden: \`node\` is not the user part of the caller's JID${what}; nothing was changed`);

/** An app operation whose body is JSON or a form, answered 200 with `answer`. */
function appPost(
  op: Pick<ZodOpenApiOperationObject, "summary" | "description"> & {
    body: z.ZodType;
    answer: z.ZodType;
    answered: string;
    errors: ZodOpenApiOperationObject["responses"];
  },
): { post: ZodOpenApiOperationObject } {
  return {
    post: {
      summary: op.summary,
      description: op.description,
      security: security.app,
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: op.body },
          "application/x-www-form-urlencoded": { schema: op.body },
        },
      },
      responses: {
        "200": { description: op.answered, content: { "application/json": { schema: op.answer } } },
        ...invalidRequest,
        ...op.errors,
      },
    },
  };
}

export const paths: ZodOpenApiPathsObject = {
  "/api/v1/notifications/store_token": appPost({
    summary: "Register a device token of the caller",
    description:
      "Idempotent: registering a token again makes it the caller's most recently registered device. A token " +
      "(per `service`) belongs to one user: registered to another, it moves to the caller (badge back to 0) " +
      "only with the `deviceSecret` it was registered with (the same app install) or once that registration " +
      "is older than `push.tokenMoveAfterDays` (30 by default); otherwise 409 token_in_use. The answer never " +
      "tells whether or whose the token was before. A user keeps at most `push.maxTokensPerUser` (10 by " +
      "default) tokens per app; one more forgets the least recently registered. `app` defaults to " +
      "`push.domains.<caller's domain>.app`.",
    body: storeTokenBody,
    answer: storeTokenAnswer,
    answered: "Stored",
    errors: {
      "403": notYours(" (legacy apps send their msisdn)"),
      "409": errorResponse(
        "token_in_use: the token is registered to another account and neither `deviceSecret` matches nor is that registration older than `push.tokenMoveAfterDays`; nothing was changed",
      ),
      "422": errorResponse(
        "no_app: no `app` was sent and the operator configured none for the caller's domain (`push.domains.<domain>.app`); unknown_app: the app has no entry in `push.apps`",
      ),
    },
  }),
  "/api/v1/notifications/delete_token": appPost({
    summary: "Forget one of the caller's device tokens",
    description:
      "Whatever its service. A token that is not the caller's (another user's, or unknown) is left alone: `deleted` is 0.",
    body: deleteTokenBody,
    answer: deletedAnswer,
    answered: "Done: `deleted` is the number of tokens forgotten",
    errors: { "403": notYours("") },
  }),
  "/api/v1/notifications/delete_all_tokens": appPost({
    summary: "Forget all the caller's device tokens",
    description: "Of every app and service, e.g. at logout on every device.",
    body: deleteAllTokensBody,
    answer: deletedAnswer,
    answered: "Done: `deleted` is the number of tokens forgotten",
    errors: { "403": notYours("") },
  }),
  "/api/v1/notifications/reset_badge": appPost({
    summary: "Set the badge of one of the caller's devices back to 0",
    description:
      "The stored count restarts at 0 (the next alert shows 1); for an `apns` token a silent push sets the " +
      "icon's badge to 0 now, and `update` says how that went. `node` is optional here.",
    body: resetBadgeBody,
    answer: resetBadgeAnswer,
    answered: "Reset",
    errors: {
      "403": notYours(""),
      "404": errorResponse("not_found: the caller has no such token"),
    },
  }),
  "/api/v1/notifications/channel_subscribe": appPost({
    summary: "Subscribe the caller to a broadcast channel of their domain",
    description: "Idempotent: subscribing again changes nothing (`subscribed` is then false).",
    body: channelBody,
    answer: subscribedAnswer,
    answered: "Subscribed",
    errors: { "403": notYours(", or `domain` is not the caller's domain") },
  }),
  "/api/v1/notifications/channel_unsubscribe": appPost({
    summary: "Unsubscribe the caller from a broadcast channel",
    description:
      "Idempotent: unsubscribing from a channel the caller is not subscribed to answers `unsubscribed: false`.",
    body: channelBody,
    answer: unsubscribedAnswer,
    answered: "Not subscribed (any more)",
    errors: { "403": notYours(", or `domain` is not the caller's domain") },
  }),
};
