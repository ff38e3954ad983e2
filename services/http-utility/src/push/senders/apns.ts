import http2, { type ClientHttp2Session } from "node:http2";
import { apnsCredentials } from "#common/config/push-schema.ts";
import type { Secrets } from "#common/config/secrets.ts";
import {
  type ApnsOptions,
  checkCertificateEnvironment,
  type Environment,
  loadApnsCredentials,
} from "./apns-credentials.ts";
import {
  definePushSender,
  type PushMessage,
  type PushSender,
  type SenderDeps,
  type SendOutcome,
} from "./sender.ts";

export type { ApnsOptions } from "./apns-credentials.ts";

/**
 * APNs over node:http2: Apple's provider API ("Sending notification requests to APNs" and "Handling
 * notification responses from APNs", developer.apple.com/documentation/usernotifications). One HTTP/2
 * connection per environment, reused by every notification and opened again once lost; the configured
 * environment's credentials are checked at startup so broken ones stop the service, the sandbox is connected
 * on the first message asking for it. @parse/node-apn did this before, at a third more CPU per notification
 * (docs/push.md "Senders"). Retries are the orchestrator's, with its backoff (push.retry).
 */

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
  /** Tests only: where APNs is (for both environments) and the CA to trust. */
  endpoint?: { address: string; port: number; ca: string };
  /** Where the certificate's `passphraseEnv` is read: the config's (config/secrets.ts). */
  secrets?: Pick<Secrets, "env">;
}

const HOSTS: Record<Environment, string> = {
  production: "api.push.apple.com",
  sandbox: "api.sandbox.push.apple.com",
};

/** No answer within this time: the request is given up (node-apn's default). */
const REQUEST_TIMEOUT_MS = 5000;
/** close(): streams still open after this are cut. */
const SHUTDOWN_WAIT_MS = 5000;

/** 410 is always a dead token; these 400s too (a sandbox token sent to production is BadDeviceToken). */
const DEAD_TOKEN_REASONS = new Set([
  "BadDeviceToken",
  "DeviceTokenNotForTopic",
  "Unregistered",
  "ExpiredToken",
]);

const HEX = /^[0-9a-f]+$/i;

export function createApnsSender(options: ApnsOptions, deps: ApnsSenderDeps): PushSender {
  const { service } = deps;
  const log = deps.log.child({ app: deps.app, push: service });
  const credentials = loadApnsCredentials(options, deps);
  const configured: Environment = options.production ? "production" : "sandbox";
  if (credentials.kind === "certificate") checkCertificateEnvironment(credentials.certificate, configured);
  const sessions = new Map<Environment, ClientHttp2Session>();
  const topic = service === "apns-voip" ? `${options.bundleId}.voip` : options.bundleId;
  let closed = false;

  /** The environment's connection, opened (again) when there is none or it is going away. */
  function sessionFor(environment: Environment): ClientHttp2Session {
    const open = sessions.get(environment);
    if (open && !open.closed && !open.destroyed) return open;
    if (credentials.kind === "certificate") checkCertificateEnvironment(credentials.certificate, environment);
    const session = http2.connect(
      deps.endpoint
        ? `https://${deps.endpoint.address}:${deps.endpoint.port}`
        : `https://${HOSTS[environment]}`,
      {
        ...(deps.endpoint && { ca: deps.endpoint.ca }),
        ...(credentials.kind === "certificate" && credentials.tls),
      },
    );
    const forget = () => {
      if (sessions.get(environment) === session) sessions.delete(environment);
    };
    // the streams get the error; the next notification opens a new connection
    session.on("error", (err) => {
      forget();
      log.warn({ err: err.message, environment }, "APNs connection failed");
    });
    session.on("goaway", forget);
    session.on("close", forget);
    sessions.set(environment, session);
    return session;
  }

  function request(session: ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: string) {
    return new Promise<{ status?: number; id?: string; body: string; error?: string }>((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers);
      } catch (err) {
        // the connection is going away between our look and the request: the next try opens another
        resolve({ body: "", error: (err as Error).message });
        return;
      }
      let status: number | undefined;
      let id: string | undefined;
      let text = "";
      stream.setEncoding("utf8");
      stream.setTimeout(REQUEST_TIMEOUT_MS, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.on("response", (h) => {
        status = h[":status"];
        const apnsId = h["apns-id"];
        if (typeof apnsId === "string") id = apnsId;
      });
      stream.on("data", (chunk: string) => {
        text += chunk;
      });
      stream.on("error", (err) => resolve({ body: text, error: err.message }));
      stream.on("close", () => {
        if (status === undefined) resolve({ body: text, error: "no answer from APNs (timeout or reset)" });
        else resolve({ status, ...(id !== undefined && { id }), body: text });
      });
      stream.end(body);
    });
  }

  return {
    service,
    async send(token, message) {
      if (closed) throw new Error(`APNs sender of ${deps.app} is closed`);
      // APNs tokens are hex; anything else would also change the request path
      if (!HEX.test(token)) return { status: "dead_token", reason: "BadDeviceToken" };

      const environment = message.sandbox ? "sandbox" : configured;
      let session: ClientHttp2Session;
      try {
        session = sessionFor(environment);
      } catch (err) {
        // certificate auth: a certificate made for production only refuses a sandbox message
        log.warn({ err: String(err), environment }, "APNs environment unavailable");
        return { status: "failed", reason: `${environment} not available: ${String(err)}` };
      }
      const headers = requestHeaders(message, service, message.topic ?? topic);
      headers[":path"] = `/3/device/${token}`;
      // the host alone, as node-apn sent it (the fakes' address in tests)
      headers[":authority"] = deps.endpoint?.address ?? HOSTS[environment];
      const authorization = credentials.kind === "token" ? credentials.token.authorization() : undefined;
      if (authorization !== undefined) headers.authorization = authorization;

      const answer = await request(session, headers, JSON.stringify(payloadOf(message)));
      const outcome = outcomeOf(answer);
      if (outcome.status === "retry" && outcome.reason === "ExpiredProviderToken" && authorization) {
        if (credentials.kind === "token") credentials.token.expired(authorization);
      }
      if (outcome.status === "sent") {
        if (log.isLevelEnabled("debug"))
          log.debug({ device: `…${token.slice(-6)}`, id: outcome.id }, "APNs sent");
      } else if (outcome.status === "dead_token") {
        log.info({ device: `…${token.slice(-6)}`, outcome }, "APNs token is dead");
      } else log.warn({ device: `…${token.slice(-6)}`, environment, outcome }, "APNs did not deliver");
      return outcome;
    },
    async close() {
      closed = true;
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.all(open.map(shutdown));
    },
  };
}

/** Closes a connection once its streams are done; one that is gone already or hangs is destroyed. */
function shutdown(session: ClientHttp2Session): Promise<void> {
  if (session.destroyed || session.closed) {
    session.destroy();
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => session.destroy(), SHUTDOWN_WAIT_MS);
    session.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    session.close();
  });
}

/** The request's headers but its path and provider token ("Sending notification requests to APNs"). */
function requestHeaders(
  message: PushMessage,
  service: ApnsSenderDeps["service"],
  topic: string,
): http2.OutgoingHttpHeaders {
  const silent = message.silent === true;
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": "",
    "apns-topic": topic,
    // background pushes must be priority 5 (Apple's rule)
    "apns-push-type": service === "apns-voip" ? "voip" : silent ? "background" : "alert",
    "apns-priority": silent || message.priority === "normal" ? "5" : "10",
  };
  if (message.collapseKey !== undefined) headers["apns-collapse-id"] = message.collapseKey;
  // apns-expiration: an epoch second; 0 asks APNs to try once and not store it; no header: APNs' own policy
  if (message.ttlSeconds !== undefined) {
    const ttl = message.ttlSeconds;
    headers["apns-expiration"] = String(ttl > 0 ? Math.floor(Date.now() / 1000) + ttl : 0);
  }
  return headers;
}

/** The JSON payload: the custom data at the top level, `aps` the system's keys. */
function payloadOf(message: PushMessage): Record<string, unknown> {
  const aps: Record<string, unknown> = {};
  if (message.silent) {
    aps["content-available"] = 1;
    // the one visible thing a silent push may carry: reset_badge sets the icon's count this way
    if (message.badge !== undefined) aps.badge = message.badge;
  } else {
    if (message.title !== undefined || message.body !== undefined) {
      aps.alert = { title: message.title, body: message.body };
    }
    if (message.badge !== undefined) aps.badge = message.badge;
    if (message.sound !== undefined) aps.sound = message.sound;
    if (message.threadId !== undefined) aps["thread-id"] = message.threadId;
    if (message.mutableContent) aps["mutable-content"] = 1;
    if (message.category !== undefined) aps.category = message.category;
  }
  return message.data ? { ...message.data, aps } : { aps };
}

/** One answer, mapped to the sender contract ("Handling notification responses from APNs"). */
function outcomeOf(answer: { status?: number; id?: string; body: string; error?: string }): SendOutcome {
  const { status } = answer;
  if (status === 200) return { status: "sent", ...(answer.id !== undefined && { id: answer.id }) };
  // no status: the connection failed or the request timed out
  if (status === undefined) return { status: "retry", reason: answer.error ?? "no answer from APNs" };
  let reason = `status ${status}`;
  try {
    const parsed = (JSON.parse(answer.body) as { reason?: unknown }).reason;
    if (typeof parsed === "string") reason = parsed;
  } catch {}
  if (status === 410 || DEAD_TOKEN_REASONS.has(reason)) return { status: "dead_token", reason };
  // ExpiredProviderToken: a new JWT is signed, the next try carries it
  if (status === 429 || status >= 500 || reason === "ExpiredProviderToken")
    return { status: "retry", reason };
  return { status: "failed", reason };
}
