import type { PushMessage, SendOutcome } from "./sender.ts";

/**
 * The FCM HTTP v1 message of a PushMessage, as JSON on the wire
 * (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages), and FCM's answers as outcomes
 * (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
 */

/** A v1 `Message` as FCM reads it: snake_case, `ttl` a duration string, APNs keys as Apple names them. */
export interface FcmWireMessage {
  token: string;
  notification?: { title?: string; body?: string };
  data?: Record<string, string>;
  android?: {
    priority?: "normal" | "high";
    ttl?: string;
    collapse_key?: string;
    notification?: { sound?: string; tag?: string; click_action?: string; notification_count?: number };
  };
  /** undefined values are left out of the JSON */
  apns: {
    headers?: Record<string, string | undefined>;
    payload: { aps: Record<string, string | number | undefined> };
  };
}

/**
 * The object, or undefined when all its fields are: JSON.stringify leaves undefined fields out, so they are
 * not deleted (a deleted property makes the object a slow dictionary).
 */
function nonEmpty<T extends object>(o: T): T | undefined {
  for (const key in o) if (o[key] !== undefined) return o;
  return undefined;
}

/**
 * One message for both platforms: FCM uses `android` for an Android token and `apns` for an iOS one (FCM
 * turns `notification` into the alert). A silent message has no notification anywhere: data only on Android,
 * `content-available` with push type background and priority 5 (Apple's rule for background pushes) on iOS.
 */
export function toFcmMessage(token: string, m: PushMessage): FcmWireMessage {
  const silent = m.silent === true;
  const ttl = m.ttlSeconds;
  const apnsPriority = silent || m.priority === "normal" ? "5" : m.priority === "high" ? "10" : undefined;
  const message: Omit<FcmWireMessage, "apns"> & { apns?: FcmWireMessage["apns"] } = { token };
  const notification = silent ? undefined : nonEmpty({ title: m.title, body: m.body });
  if (notification) message.notification = notification;
  if (m.data) message.data = m.data;
  const android = nonEmpty({
    priority: m.priority,
    ttl: ttl === undefined ? undefined : `${ttl}s`,
    collapse_key: m.collapseKey,
    notification: silent
      ? undefined
      : nonEmpty({
          sound: m.sound,
          tag: m.threadId,
          click_action: m.category,
          notification_count: m.badge,
        }),
  });
  if (android) message.android = android;
  message.apns = {
    headers: nonEmpty({
      "apns-push-type": silent ? "background" : "alert",
      "apns-priority": apnsPriority,
      "apns-collapse-id": m.collapseKey,
      // 0: deliver now or never; otherwise the epoch second until which APNs keeps it
      "apns-expiration":
        ttl === undefined ? undefined : String(ttl === 0 ? 0 : Math.floor(Date.now() / 1000) + ttl),
    }),
    payload: {
      aps: silent
        ? (nonEmpty({ "content-available": 1, badge: m.badge }) ?? {})
        : (nonEmpty({
            badge: m.badge,
            sound: m.sound,
            "thread-id": m.threadId,
            "mutable-content": m.mutableContent ? 1 : undefined,
            category: m.category,
          }) ?? {}),
    },
  };
  return message as FcmWireMessage;
}

/** FCM's error body: `{ error: { code, message, status, details } }` (google.rpc.Status). */
interface FcmErrorBody {
  error?: { message?: unknown; status?: unknown; details?: unknown };
}

const FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

function errorOf(body: string): { errorCode?: string; status?: string; message: string; fields: string[] } {
  const out: { errorCode?: string; status?: string; message: string; fields: string[] } = {
    message: "",
    fields: [],
  };
  let error: FcmErrorBody["error"];
  try {
    error = (JSON.parse(body) as FcmErrorBody).error;
  } catch {
    return out;
  }
  if (!error || typeof error !== "object") return out;
  if (typeof error.message === "string") out.message = error.message;
  if (typeof error.status === "string") out.status = error.status;
  if (!Array.isArray(error.details)) return out;
  for (const d of error.details as Array<Record<string, unknown>>) {
    if (d["@type"] === FCM_ERROR && typeof d.errorCode === "string") out.errorCode = d.errorCode;
    if (Array.isArray(d.fieldViolations)) {
      for (const v of d.fieldViolations as Array<{ field?: unknown }>) {
        if (typeof v.field === "string") out.fields.push(v.field);
      }
    }
  }
  return out;
}

/** What a non-200 answer of `messages:send` means for the token (sender.ts SendOutcome). */
export function outcomeOfAnswer(status: number, body: string, retryAfter: string | undefined): SendOutcome {
  const e = errorOf(body);
  const reason = e.errorCode ?? e.status ?? `HTTP ${status}`;
  switch (e.errorCode) {
    case "UNREGISTERED":
      return { status: "dead_token", reason };
    case "SENDER_ID_MISMATCH":
      // the token belongs to another project; a bare PERMISSION_DENIED (below) is our key's IAM
      return { status: "dead_token", reason };
  }
  if (status === 404 && e.errorCode === undefined) return { status: "dead_token", reason: "UNREGISTERED" };
  if (reason === "INVALID_ARGUMENT") {
    // INVALID_ARGUMENT is also a malformed message: the token is at fault only when FCM says so
    if (e.fields.includes("message.token") || /registration token/i.test(e.message)) {
      return { status: "dead_token", reason: "INVALID_REGISTRATION_TOKEN" };
    }
    return { status: "failed", reason: `${reason}: ${e.message}` };
  }
  if (status === 429 || status >= 500) {
    const afterMs = retryAfterMs(retryAfter);
    return { status: "retry", reason, ...(afterMs === undefined ? {} : { afterMs }) };
  }
  return { status: "failed", reason: `${reason}: ${e.message}` };
}

/**
 * The access token could not be had (google-auth-library's GaxiosError: `status` for an HTTP answer, `code`
 * for an I/O error). Google's token endpoint unreachable or failing is worth a retry; a refused grant
 * (revoked key, wrong clock) is not.
 */
export function tokenFetchOutcome(err: unknown): SendOutcome {
  const e = (err ?? {}) as {
    message?: string;
    status?: unknown;
    code?: unknown;
    response?: { status?: unknown };
    cause?: { code?: unknown };
  };
  const status = [e.status, e.response?.status].find((s) => typeof s === "number") as number | undefined;
  const io = [e.code, e.cause?.code].find((c) => typeof c === "string" && /^E[A-Z]+$/.test(c));
  if (status === 429 || (status !== undefined && status >= 500)) {
    return { status: "retry", reason: `oauth: HTTP ${status}` };
  }
  if (status === undefined && io) return { status: "retry", reason: `oauth: ${String(io)}` };
  return { status: "failed", reason: `oauth: ${e.message ?? "no access token"}` };
}

/** Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
export function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
