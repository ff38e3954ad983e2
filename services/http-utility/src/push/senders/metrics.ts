import { Counter, Histogram, type Registry } from "prom-client";

/**
 * Push metrics. Label values are bounded: a provider's `reason` is free text (an error message, "status
 * 503"), so only the reasons below are kept as they are and anything else counts as `other`.
 */

/** APNs reasons (Apple's "Handling notification responses from APNs") and FCM v1 error codes. */
const KNOWN_REASONS = new Set([
  // APNs
  "BadCollapseId",
  "BadDeviceToken",
  "BadExpirationDate",
  "BadMessageId",
  "BadPriority",
  "BadTopic",
  "DeviceTokenNotForTopic",
  "DuplicateHeaders",
  "IdleTimeout",
  "InvalidPushType",
  "MissingDeviceToken",
  "MissingTopic",
  "PayloadEmpty",
  "TopicDisallowed",
  "BadCertificate",
  "BadCertificateEnvironment",
  "ExpiredProviderToken",
  "Forbidden",
  "InvalidProviderToken",
  "MissingProviderToken",
  "BadPath",
  "MethodNotAllowed",
  "ExpiredToken",
  "Unregistered",
  "PayloadTooLarge",
  "TooManyProviderTokenUpdates",
  "TooManyRequests",
  "InternalServerError",
  "ServiceUnavailable",
  "Shutdown",
  // FCM v1 (ErrorCode) and firebase-admin's messaging codes
  "UNSPECIFIED_ERROR",
  "INVALID_ARGUMENT",
  "UNREGISTERED",
  "SENDER_ID_MISMATCH",
  "QUOTA_EXCEEDED",
  "UNAVAILABLE",
  "INTERNAL",
  "THIRD_PARTY_AUTH_ERROR",
  "messaging/invalid-argument",
  "messaging/invalid-registration-token",
  "messaging/registration-token-not-registered",
  "messaging/mismatched-credential",
  "messaging/message-rate-exceeded",
  "messaging/device-message-rate-exceeded",
  "messaging/server-unavailable",
  "messaging/internal-error",
  "messaging/third-party-auth-error",
  "messaging/payload-size-limit-exceeded",
  "messaging/unknown-error",
  // ours
  "no_sender",
  "retry_after_too_long",
  "sender_error",
]);

/** The `reason` label of a provider's reason: itself when known, `other` otherwise, `none` when absent. */
export function reasonLabel(reason: string | undefined): string {
  if (reason === undefined || reason === "") return "none";
  return KNOWN_REASONS.has(reason) ? reason : "other";
}

export interface PushMetrics {
  /** One per token pushed: its final status (sent, dead_token, failed, gave_up, no_sender). */
  sends: Counter<"provider" | "outcome" | "reason">;
  /** One per provider answer asking to try again (429, 5xx, network). */
  retries: Counter<"provider" | "reason">;
  /** One per provider call, by what it answered. */
  duration: Histogram<"provider" | "outcome">;
}

const known = new WeakMap<Registry, PushMetrics>();

/** The push metrics in `registry`, made once per registry (a second notifier on it shares them). */
export function pushMetrics(registry: Registry): PushMetrics {
  const existing = known.get(registry);
  if (existing) return existing;
  const metrics: PushMetrics = {
    sends: new Counter({
      name: "push_sends_total",
      help: "Tokens pushed, by provider, final outcome and provider reason",
      labelNames: ["provider", "outcome", "reason"] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: "push_send_retries_total",
      help: "Provider answers asking to try again (throttled, unavailable), by provider and reason",
      labelNames: ["provider", "reason"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "push_send_duration_seconds",
      help: "Duration of one provider call, by provider and what it answered",
      labelNames: ["provider", "outcome"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
  known.set(registry, metrics);
  return metrics;
}
