import { readFileSync } from "node:fs";
import apn, {
  type NotificationAlertOptions,
  type Provider,
  type ProviderOptions,
  type ResponseFailure,
  type ResponseSent,
  type Responses,
} from "@parse/node-apn";
import { apnsCredentials } from "#common/config/push-schema.ts";
import type { Secrets } from "#common/config/secrets.ts";
import {
  definePushSender,
  type PushApps,
  type PushMessage,
  type PushSender,
  type SenderDeps,
  type SendOutcome,
} from "./sender.ts";

/**
 * APNs through @parse/node-apn: Apple's HTTP/2 provider API ("Sending notification requests to APNs" and
 * "Handling notification responses from APNs", developer.apple.com/documentation/usernotifications).
 * One `apn.Provider` (one HTTP/2 connection, reused) per environment: the configured one is built at startup
 * so broken credentials stop the service; the sandbox one on the first message asking for it.
 */

export type ApnsOptions = NonNullable<PushApps[string]["apns"]>;

/** One set of credentials, two senders: alerts, and VoIP (PushKit) on the `<bundleId>.voip` topic. */
export default definePushSender({
  kind: "apns",
  summary: "Apple Push Notification service: alerts and VoIP",
  options: apnsCredentials,
  create: (options, ctx) =>
    (["apns", "apns-voip"] as const).map((service) =>
      createApnsSender(options, {
        app: ctx.app,
        log: ctx.log,
        service,
        ...(ctx.secrets ? { secrets: ctx.secrets } : {}),
        ...(ctx.endpoints?.apnsEndpoint ? { endpoint: ctx.endpoints.apnsEndpoint } : {}),
      }),
    ),
});

export interface ApnsSenderDeps extends SenderDeps {
  service: "apns" | "apns-voip";
  /** Tests only: where APNs is (node-apn's `address`/`port`, for both environments) and the CA to trust. */
  endpoint?: { address: string; port: number; ca: string };
  /** Where the certificate's `passphraseEnv` is read: the config's (config/secrets.ts). */
  secrets?: Pick<Secrets, "env">;
}

type Environment = "production" | "sandbox";

/** 410 is always a dead token; these 400s too (a sandbox token sent to production is BadDeviceToken). */
const DEAD_TOKEN_REASONS = new Set([
  "BadDeviceToken",
  "DeviceTokenNotForTopic",
  "Unregistered",
  "ExpiredToken",
]);

export function createApnsSender(options: ApnsOptions, deps: ApnsSenderDeps): PushSender {
  const { service } = deps;
  const log = deps.log.child({ app: deps.app, push: service });
  const credentials = loadCredentials(options, deps);
  const providers = new Map<Environment, Provider>();
  let closed = false;

  const providerFor = (environment: Environment): Provider => {
    let provider = providers.get(environment);
    if (!provider) {
      provider = new apn.Provider({
        ...credentials,
        production: environment === "production",
        ...(deps.endpoint && {
          address: deps.endpoint.address,
          port: deps.endpoint.port,
          ca: [deps.endpoint.ca],
        }),
        // node-apn retries 429 and 5xx at once and never sees Retry-After (it reads `Retry-After` from
        // HTTP/2's lowercase headers): retries are the orchestrator's, with its backoff (push.retry).
        connectionRetryLimit: 0,
      });
      providers.set(environment, provider);
    }
    return provider;
  };
  const configured: Environment = options.production ? "production" : "sandbox";
  providerFor(configured);

  const topic = service === "apns-voip" ? `${options.bundleId}.voip` : options.bundleId;

  return {
    service,
    async send(token, message) {
      if (closed) throw new Error(`APNs sender of ${deps.app} is closed`);
      const device = `…${token.slice(-6)}`;
      // APNs tokens are hex; anything else would also change the request path
      if (!/^[0-9a-f]+$/i.test(token)) return { status: "dead_token", reason: "BadDeviceToken" };

      const environment = message.sandbox ? "sandbox" : configured;
      let provider: Provider;
      try {
        provider = providerFor(environment);
      } catch (err) {
        // certificate auth: a certificate made for production only refuses a sandbox message
        log.warn({ err: String(err), environment }, "APNs environment unavailable");
        return { status: "failed", reason: `${environment} not available: ${String(err)}` };
      }
      const result = await provider.send(toNotification(message, service, topic), token);
      const outcome = outcomeOf(result);
      if (outcome.status === "sent") log.debug({ device, id: outcome.id }, "APNs sent");
      else if (outcome.status === "dead_token") log.info({ device, outcome }, "APNs token is dead");
      else log.warn({ device, environment, outcome }, "APNs did not deliver");
      return outcome;
    },
    async close() {
      closed = true;
      await Promise.all([...providers.values()].map(shutdown));
      providers.clear();
    },
  };
}

/** node-apn's default request timeout: no stream it started can still be open after it. */
const SHUTDOWN_WAIT_MS = 5000;

/**
 * `Provider.shutdown` returns nothing (its typing says a Promise): only its callback tells it is done, and
 * that callback never comes once the connection was lost (an error, a GOAWAY, APNs closing it). node-apn
 * then calls `close(cb)` on an HTTP/2 session that is destroyed but not `closed`, and Node never calls such
 * a callback. Its timers and sockets are released by then, so there is nothing to wait for.
 */
function shutdown(provider: Provider): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
    provider.shutdown(() => {
      clearTimeout(timer);
      resolve();
    });
    const session = (provider as unknown as { client?: { session?: { destroyed?: boolean } | null } }).client
      ?.session;
    if (session?.destroyed) {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** Token auth (a `.p8` signing key) when given, else a certificate and its key; read once, at startup. */
function loadCredentials(options: ApnsOptions, deps: ApnsSenderDeps): ProviderOptions {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new Error(`push.apps.${deps.app}.apns.${what}: cannot read ${file} (${code})`);
    }
  };
  if (options.keyFile && options.keyId && options.teamId) {
    return { token: { key: read("keyFile", options.keyFile), keyId: options.keyId, teamId: options.teamId } };
  }
  if (options.certFile && options.certKeyFile) {
    let passphrase: string | undefined;
    if (options.passphraseEnv) {
      passphrase = deps.secrets?.env(options.passphraseEnv);
      if (passphrase === undefined) {
        throw new Error(`push.apps.${deps.app}.apns.passphraseEnv: ${options.passphraseEnv} is not set`);
      }
    }
    return {
      cert: read("certFile", options.certFile),
      key: read("certKeyFile", options.certKeyFile),
      ...(passphrase !== undefined && { passphrase }),
    };
  }
  throw new Error(`push.apps.${deps.app}.apns: give keyFile, keyId and teamId, or certFile and certKeyFile`);
}

function toNotification(message: PushMessage, service: ApnsSenderDeps["service"], topic: string) {
  const notification = new apn.Notification();
  notification.topic = message.topic ?? topic;
  notification.payload = { ...message.data };
  if (message.collapseKey !== undefined) notification.collapseId = message.collapseKey;
  // apns-expiration: an epoch second; 0 asks APNs to try once and not store it; no header: APNs' own policy
  if (message.ttlSeconds !== undefined) {
    notification.expiry = message.ttlSeconds > 0 ? Math.floor(Date.now() / 1000) + message.ttlSeconds : 0;
  }

  if (message.silent) {
    // background pushes must be priority 5 and carry content-available (and at most a badge) in aps
    notification.contentAvailable = true;
    notification.pushType = "background";
    notification.priority = 5;
    // the one visible thing a silent push may carry: reset_badge sets the icon's count this way
    if (message.badge !== undefined) notification.badge = message.badge;
  } else {
    if (message.title !== undefined || message.body !== undefined) {
      notification.alert = { title: message.title, body: message.body } as NotificationAlertOptions;
    }
    if (message.badge !== undefined) notification.badge = message.badge;
    if (message.sound !== undefined) notification.sound = message.sound;
    if (message.threadId !== undefined) notification.threadId = message.threadId;
    if (message.mutableContent) notification.mutableContent = true;
    if (message.category !== undefined) notification.aps.category = message.category;
    notification.pushType = "alert";
    notification.priority = message.priority === "normal" ? 5 : 10;
  }
  if (service === "apns-voip") notification.pushType = "voip";
  return notification;
}

/** One token, one answer: what node-apn reports, mapped to the sender contract. */
function outcomeOf(result: Responses<ResponseSent, ResponseFailure>): SendOutcome {
  const sent = result.sent[0] as (ResponseSent & { "apns-id"?: string }) | undefined;
  if (sent) return { status: "sent", ...(sent["apns-id"] && { id: sent["apns-id"] }) };
  const failure = result.failed[0];
  if (!failure) throw new Error("node-apn answered neither sent nor failed");
  // node-apn drops the body of some answers (500 InternalServerError, 403 ExpiredProviderToken) and keeps
  // only an error whose message is the reason; `status` is missing for connection errors
  const status = failure.status as number | string | undefined;
  const reason = failure.response?.reason ?? failure.error?.message ?? `status ${status}`;
  if (status === 410 || DEAD_TOKEN_REASONS.has(reason)) return { status: "dead_token", reason };
  if (typeof status !== "number") return { status: "retry", reason };
  // ExpiredProviderToken: node-apn has made a new JWT, the next try carries it
  if (status === 429 || status >= 500 || reason === "ExpiredProviderToken")
    return { status: "retry", reason };
  return { status: "failed", reason };
}
