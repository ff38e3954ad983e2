import type { PushConfig } from "#common/config/push-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { Secrets } from "#common/config/secrets.ts";
import type { Logger } from "#common/logger.ts";
import { pluginDefiner } from "#common/plugins/definition.ts";
import type { PluginPoint } from "#common/plugins/registry.ts";

/**
 * How a notification reaches a device (docs/architecture.md "Plugins"): one `PushSender` per app and service,
 * built at startup from `push.apps` by the definitions of registry.ts (fcm.ts, apns.ts, log-sender.ts; this
 * file imports none of them). A sender answers with what happened to that token, as a value; it
 * throws only for a bug or a broken configuration. The orchestrator (push/send/routes.ts) decides about
 * retries, dead tokens and metrics from those values.
 */

/** What a token is: `fcm` (Android, also iOS through Firebase), `apns`, `apns-voip` (PushKit). */
export const PUSH_SERVICES = ["fcm", "apns", "apns-voip"] as const;
export type PushService = (typeof PUSH_SERVICES)[number];

export interface PushMessage {
  title?: string;
  body?: string;
  /** Custom data, string values (FCM requires strings; APNs gets them at the payload's top level). */
  data?: Record<string, string>;
  badge?: number;
  sound?: string;
  /** A data-only / background push: no alert (APNs content-available, push type background). */
  silent?: boolean;
  /** Notifications with the same key replace each other (FCM collapse_key, APNs apns-collapse-id). */
  collapseKey?: string;
  /** APNs thread-id / FCM notification tag: grouping on the device. */
  threadId?: string;
  /** Seconds the provider keeps it for an offline device (0: now or never). */
  ttlSeconds?: number;
  priority?: "normal" | "high";
  /** APNs mutable-content (a notification service extension may change it). */
  mutableContent?: boolean;
  /** APNs category / FCM click_action: which actions the notification offers. */
  category?: string;
  /** APNs topic instead of the app's bundle id (MongoosePush's `topic`). */
  topic?: string;
  /** APNs sandbox for this message (MongoosePush `mode: "dev"`). */
  sandbox?: boolean;
}

export type SendOutcome =
  | { status: "sent"; id?: string }
  /** The token will never work again (uninstalled, expired, not of this app): forget it. */
  | { status: "dead_token"; reason: string }
  /** Try again later: throttled (429) or the provider failed (5xx, network); `afterMs` from Retry-After. */
  | { status: "retry"; reason: string; afterMs?: number }
  /** Refused for good, the token is fine (a payload too large, bad credentials): do not retry. */
  | { status: "failed"; reason: string };

/** What a sender's credentials check found (`sidecars doctor`). */
export type CheckOutcome =
  | { status: "ok"; detail: string }
  /** the provider refused our credentials or project */
  | { status: "refused"; detail: string }
  /** the provider could not be reached or failed: nothing said about the credentials */
  | { status: "unreachable"; detail: string };

export interface PushSender {
  readonly service: PushService;
  send(token: string, message: PushMessage): Promise<SendOutcome>;
  /** The credentials tried without reaching a device (a provider's dry run), where the provider has one. */
  check?(): Promise<CheckOutcome>;
  /** Closes connections (HTTP/2 sessions, agents) at shutdown. */
  close(): Promise<void>;
}

export interface SenderDeps {
  app: string;
  log: Logger;
}

/** Tests only: the providers' local stand-ins the real SDKs are pointed at. */
export interface ProviderEndpoints {
  fcmAgent?: import("node:https").Agent;
  apnsEndpoint?: { address: string; port: number; ca: string };
}

/** What a push sender's definition gets besides its options. */
export interface PushSenderContext extends SenderDeps {
  /** The config's environment: the `log` sender refuses production. */
  env: Config["env"];
  /** Where secrets the options name are read (the APNs certificate's `passphraseEnv`). */
  secrets?: Pick<Secrets, "env">;
  endpoints?: ProviderEndpoints;
}

export const pushSenderPoint: PluginPoint<readonly PushSender[]> = {
  name: "push sender",
  docs: "docs/push.md",
};

/**
 * A kind is a key of `push.apps.<app>` (`fcm`, `apns`) whose value is its options; one kind may serve several
 * services (apns: alerts and VoIP), hence a list of senders.
 */
export const definePushSender = pluginDefiner<PushSenderContext, readonly PushSender[]>();

/** By app, then by service: what `createPushSenders` returns. */
export type PushSenders = ReadonlyMap<string, ReadonlyMap<PushService, PushSender>>;

export type PushApps = PushConfig["apps"];
