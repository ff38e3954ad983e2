import { databaseUnavailable, defineErrors, notFound } from "../errors.ts";

/**
 * The errors the common HTTP layer answers by itself: input validation (validate.ts), the body parsers' and
 * the router's refusals translated in app-base.ts, the database being away, and the shared rate limits. A
 * service's catalogue spreads these in (`{ ...commonErrors, ...defineErrors({ … }) }`), so that every code
 * its API can answer is listed in one place.
 */

const human = (bytes: number) =>
  bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(bytes >= 10 * 1024 ** 2 ? 0 : 1)} MiB`;

export const commonErrors = {
  notFound,
  databaseUnavailable,
  ...defineErrors({
    invalidRequest: {
      status: 400,
      code: "invalid_request",
      description: "a field is missing or wrong, named in the message as `<field>: <problem>`",
      message: (field: string | undefined, problem: string) => (field ? `${field}: ${problem}` : problem),
    },
    invalidBody: {
      status: 400,
      code: "invalid_body",
      description: "the body is not valid JSON or form data",
      message: "The body could not be parsed: send valid JSON or form data.",
    },
    payloadTooLarge: {
      status: 413,
      code: "payload_too_large",
      description: "the body is over the size limit",
      message: (limit: number | undefined) => `The body is over the limit of ${limit} bytes.`,
    },
    unreadableRequest: {
      status: 400,
      code: "bad_request",
      description: "the request could not be read (e.g. a path that is not valid percent-encoding)",
      message: "The request could not be read.",
    },
    tooManyParameters: {
      status: 413,
      code: "bad_request",
      description: "a form body with too many fields",
      message: "The request could not be read.",
    },
    unsupportedEncoding: {
      status: 415,
      code: "bad_request",
      description: "a body in a charset or content encoding that is not supported",
      message: "The request could not be read.",
    },
    internalError: {
      status: 500,
      code: "internal_error",
      description: "a fault on the server's side, logged there; retry later",
      message: "Something went wrong on our side; retry later.",
    },
    metricsForbidden: {
      status: 403,
      code: "forbidden",
      description: "/metrics from an address outside loopback and metrics.allow",
      message: "Metrics are readable from loopback and metrics.allow addresses only.",
    },
    rateLimited: {
      status: 429,
      code: "rate_limited",
      description: "too many requests of this kind; retry after `Retry-After` (seconds)",
      message: (text: string, _retryAfterS: number) => text,
      headers: (_text: string, retryAfterS: number) => ({ "retry-after": String(retryAfterS) }),
    },
    uploadBudgetExceeded: {
      status: 429,
      code: "upload_budget_exceeded",
      description: "the day's upload budget (`media.dailyUploadBytes`) is spent; retry after `Retry-After`",
      message: (dailyBytes: number, used: number, adding: number, resetsAt: Date) =>
        `This upload (${adding} bytes) would take you over your daily upload budget of ${dailyBytes} bytes ` +
        `(${human(dailyBytes)}; ${human(used)} used): the budget resets at ${resetsAt.toISOString()} ` +
        `(in ${Math.ceil(secondsUntil(resetsAt) / 60)} min); send it then, or a smaller file.`,
      headers: (_dailyBytes: number, _used: number, _adding: number, resetsAt: Date) => ({
        "retry-after": String(secondsUntil(resetsAt)),
      }),
    },
  }),
};

function secondsUntil(at: Date): number {
  return Math.max(1, Math.ceil((at.getTime() - Date.now()) / 1000));
}
