import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Agent } from "node:https";
import { type App, cert, deleteApp, initializeApp } from "firebase-admin/app";
import { getMessaging, type Messaging, type TokenMessage } from "firebase-admin/messaging";
import { fcmCredentials } from "#common/config/push-schema.ts";
import { fromRoot } from "#common/paths.ts";
import { OptionError } from "#common/plugins/problems.ts";
import {
  definePushSender,
  type PushMessage,
  type PushSender,
  type SenderDeps,
  type SendOutcome,
} from "./sender.ts";

/**
 * FCM through the firebase-admin SDK: `messages.send` of the HTTP v1 API, one message a request
 * (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages), OAuth 2.0 tokens from the
 * service-account key. The SDK's `send()` speaks HTTP/1.1 through `AppOptions.httpAgent`; `sendEach()` would
 * open its own HTTP/2 session, which no agent reaches.
 *
 * Two things the SDK does itself: it caches the access token (fetching a new one five minutes before expiry),
 * and it retries a 503 (honouring a Retry-After up to 60 s) and ECONNRESET/ETIMEDOUT up to four times. A 503
 * that reaches us has outlasted those; other errors come at once.
 */

export default definePushSender({
  kind: "fcm",
  summary: "Firebase Cloud Messaging (Android, and iOS through Firebase)",
  options: fcmCredentials,
  create: (options, ctx) => [
    createFcmSender(options, {
      app: ctx.app,
      log: ctx.log,
      ...(ctx.endpoints?.fcmAgent ? { httpAgent: ctx.endpoints.fcmAgent } : {}),
    }),
  ],
});

export interface FcmSenderOptions {
  serviceAccountFile: string;
  projectId?: string;
}

/** The token of `check()`'s dry run: well-formed, registered to no device. */
const DRY_RUN_TOKEN = "sidecars-doctor-dry-run-token";

/** One firebase-admin App per key file and project, shared by the senders using them. */
const shared = new Map<string, { app: App; messaging: Messaging; users: number }>();

export function createFcmSender(
  options: FcmSenderOptions,
  deps: SenderDeps & { httpAgent?: Agent },
): PushSender {
  const file = fromRoot(options.serviceAccountFile);
  const name = `fcm:${createHash("sha256")
    .update(`${file}\0${options.projectId ?? ""}`)
    .digest("hex")
    .slice(0, 16)}`;
  let entry = shared.get(name);
  if (!entry) {
    const key = readServiceAccount(options.serviceAccountFile, file);
    const projectId = options.projectId ?? key.project_id;
    if (typeof projectId !== "string" || !projectId) {
      throw new Error(
        `push.apps.${deps.app}.fcm: no projectId and no project_id in ${options.serviceAccountFile}`,
      );
    }
    // cert() gets the path, not the parsed key: given an object, firebase-admin 14 builds the token client
    // without the agent (firebase/firebase-admin-node#2960). google-auth-library warns once per key file
    // that `keyFilename` is deprecated either way. The agent of the first sender of a key file serves all
    // of them (it is a test hook).
    const credential = cert(file, deps.httpAgent);
    const app = initializeApp({ credential, projectId, httpAgent: deps.httpAgent }, name);
    entry = { app, messaging: getMessaging(app), users: 0 };
    shared.set(name, entry);
  }
  entry.users++;
  const { messaging } = entry;
  const log = deps.log.child({ push: "fcm", app: deps.app });
  let closed = false;

  return {
    service: "fcm",
    async send(token, message) {
      let outcome: SendOutcome;
      try {
        outcome = { status: "sent", id: await messaging.send(toFcmMessage(token, message)) };
      } catch (err) {
        outcome = outcomeOf(err);
      }
      // never the whole token, nor the error object (its cause holds the request: token, bearer)
      const line = { tokenPrefix: token.slice(0, 8), ...outcome };
      if (outcome.status === "failed") log.warn(line, "fcm send failed");
      else log.debug(line, "fcm send");
      return outcome;
    },
    /**
     * FCM's dry run (`validate_only`) to a made-up token: an answer about the token means the access token was
     * granted and the project accepts our key; nothing reaches a device.
     */
    async check() {
      let outcome: SendOutcome;
      try {
        outcome = {
          status: "sent",
          id: await messaging.send(toFcmMessage(DRY_RUN_TOKEN, { title: "check" }), true),
        };
      } catch (err) {
        outcome = outcomeOf(err);
      }
      if (outcome.status === "sent" || outcome.status === "dead_token") {
        return { status: "ok", detail: "credentials accepted (a dry run to a made-up token)" };
      }
      if (outcome.status === "retry") return { status: "unreachable", detail: `dry run: ${outcome.reason}` };
      return { status: "refused", detail: `dry run refused: ${outcome.reason}` };
    },
    async close() {
      if (closed) return;
      closed = true;
      const current = shared.get(name);
      if (current && --current.users === 0) {
        shared.delete(name);
        await deleteApp(current.app);
      }
    },
  };
}

function readServiceAccount(configured: string, file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new OptionError(
      "serviceAccountFile",
      `cannot read ${configured} (${(err as NodeJS.ErrnoException).code}): fix the path or the file's permissions`,
    );
  }
  try {
    const json: unknown = JSON.parse(text);
    if (json && typeof json === "object" && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch {}
  throw new OptionError(
    "serviceAccountFile",
    `${configured} is not a service-account JSON key: download the key again from the Firebase console`,
  );
}

/** Drops undefined fields; an object left empty becomes undefined. */
function compact<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } | undefined {
  const kept = Object.entries(o).filter(([, v]) => v !== undefined);
  return kept.length ? (Object.fromEntries(kept) as { [K in keyof T]: Exclude<T[K], undefined> }) : undefined;
}

/**
 * One message for both platforms: FCM uses `android` for an Android token and `apns` for an iOS one (FCM
 * turns `notification` into the alert). A silent message has no notification anywhere: data only on Android,
 * `content-available` with push type background and priority 5 (Apple's rule for background pushes) on iOS.
 */
export function toFcmMessage(token: string, m: PushMessage): TokenMessage {
  const silent = m.silent === true;
  const ttl = m.ttlSeconds;
  const apnsPriority = silent || m.priority === "normal" ? "5" : m.priority === "high" ? "10" : undefined;
  return {
    token,
    notification: silent ? undefined : compact({ title: m.title, body: m.body }),
    data: m.data,
    android: compact({
      priority: m.priority,
      ttl: ttl === undefined ? undefined : ttl * 1000,
      collapseKey: m.collapseKey,
      notification: silent
        ? undefined
        : compact({ sound: m.sound, tag: m.threadId, clickAction: m.category, notificationCount: m.badge }),
    }),
    apns: {
      headers: compact({
        "apns-push-type": silent ? "background" : "alert",
        "apns-priority": apnsPriority,
        "apns-collapse-id": m.collapseKey,
        // 0: deliver now or never; otherwise the epoch second until which APNs keeps it
        "apns-expiration":
          ttl === undefined ? undefined : String(ttl === 0 ? 0 : Math.floor(Date.now() / 1000) + ttl),
      }),
      payload: {
        aps: silent
          ? { contentAvailable: true, badge: m.badge }
          : (compact({
              badge: m.badge,
              sound: m.sound,
              threadId: m.threadId,
              mutableContent: m.mutableContent || undefined,
              category: m.category,
            }) ?? {}),
      },
    },
  };
}

interface SdkError {
  code?: string;
  message?: string;
  httpResponse?: { status?: number; headers?: Record<string, string | string[] | undefined>; data?: unknown };
  cause?: { code?: unknown; status?: unknown; response?: { status?: unknown }; cause?: { code?: unknown } };
}

const NETWORK_CODES = ["app/network-error", "app/network-timeout"];
const RETRY_CODES = [
  "messaging/message-rate-exceeded",
  "messaging/device-message-rate-exceeded",
  "messaging/internal-error",
  "messaging/server-unavailable",
];

/** What an error of `messaging.send()` means for the token (sender.ts SendOutcome). */
export function outcomeOf(err: unknown): SendOutcome {
  const e = (err ?? {}) as SdkError;
  const code = e.code ?? "unknown";
  const response = e.httpResponse;
  const status = response?.status;
  const fcm = fcmErrorOf(response?.data);
  const reason = fcm.errorCode ?? code.replace(/^messaging\//, "");

  switch (code) {
    case "messaging/registration-token-not-registered":
    case "messaging/invalid-registration-token":
      return { status: "dead_token", reason };
    case "messaging/invalid-argument":
      // INVALID_ARGUMENT is also a malformed message: the token is at fault only when FCM says so
      if (fcm.fields.includes("message.token") || /registration token/i.test(e.message ?? "")) {
        return { status: "dead_token", reason: "INVALID_REGISTRATION_TOKEN" };
      }
      return { status: "failed", reason: `${reason}: ${e.message ?? ""}` };
    case "messaging/mismatched-credential":
      // SENDER_ID_MISMATCH: the token belongs to another project. A bare PERMISSION_DENIED is our key's IAM.
      if (fcm.errorCode === "SENDER_ID_MISMATCH") return { status: "dead_token", reason };
      return { status: "failed", reason: `PERMISSION_DENIED: ${e.message ?? ""}` };
    case "app/invalid-credential":
      return tokenFetchOutcome(e);
  }
  if (status === 429 || (status !== undefined && status >= 500) || RETRY_CODES.includes(code)) {
    const afterMs = retryAfterMs(response?.headers?.["retry-after"]);
    return { status: "retry", reason, ...(afterMs === undefined ? {} : { afterMs }) };
  }
  if (NETWORK_CODES.includes(code)) {
    return { status: "retry", reason: `network: ${String(e.cause?.code ?? code)}` };
  }
  return { status: "failed", reason: `${reason}: ${e.message ?? ""}` };
}

/**
 * The access token could not be had. Google's token endpoint unreachable or failing is worth a retry; a
 * refused grant (revoked key, wrong clock) is not.
 */
function tokenFetchOutcome(e: SdkError): SendOutcome {
  // the cause is google-auth-library's GaxiosError: `status` for an HTTP answer, `code` for an I/O error
  const gaxios = e.cause;
  const status = [gaxios?.status, gaxios?.response?.status].find((s) => typeof s === "number");
  const io = [gaxios?.code, gaxios?.cause?.code].find((c) => typeof c === "string" && /^E[A-Z]+$/.test(c));
  if (status === 429 || (status !== undefined && status >= 500)) {
    return { status: "retry", reason: `oauth: HTTP ${status}` };
  }
  if (status === undefined && io) return { status: "retry", reason: `oauth: ${String(io)}` };
  return { status: "failed", reason: `oauth: ${e.message ?? "no access token"}` };
}

function fcmErrorOf(data: unknown): { errorCode?: string; fields: string[] } {
  const details = (data as { error?: { details?: unknown } } | undefined)?.error?.details;
  const out: { errorCode?: string; fields: string[] } = { fields: [] };
  if (!Array.isArray(details)) return out;
  for (const d of details as Array<Record<string, unknown>>) {
    if (
      d["@type"] === "type.googleapis.com/google.firebase.fcm.v1.FcmError" &&
      typeof d.errorCode === "string"
    ) {
      out.errorCode = d.errorCode;
    }
    if (Array.isArray(d.fieldViolations)) {
      for (const v of d.fieldViolations as Array<{ field?: unknown }>) {
        if (typeof v.field === "string") out.fields.push(v.field);
      }
    }
  }
  return out;
}

/** Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
export function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
