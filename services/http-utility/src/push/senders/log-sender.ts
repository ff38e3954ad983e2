import { randomUUID } from "node:crypto";
import { logSenderOptions } from "#common/config/push-schema.ts";
import {
  definePushSender,
  PUSH_SERVICES,
  type PushMessage,
  type PushSender,
  type PushSenderContext,
  type PushService,
} from "./sender.ts";

/**
 * Development: every push of the app is written to the service's log instead of reaching a device, so that
 * docs/push.md "Push in development" can be followed without Firebase or Apple credentials. One sender per
 * service, so a token stored as `fcm`, `apns` or `apns-voip` is "delivered" alike.
 *
 * Refused in production rather than warned about: there, every push would vanish while `send` answers
 * `sent` and the metrics count it sent, so nothing tells that no phone rings, and the notifications' text
 * (chat messages, from MongooseIM's hook) would be written to the log. The SMS `log` sender only warns,
 * since a registration that never gets its code is noticed at once. A demo gets a warning.
 */
export default definePushSender({
  kind: "log",
  summary: "development: each push goes to the service's log, no device receives it",
  options: logSenderOptions,
  create(_options, ctx) {
    if (ctx.env === "production") {
      throw new Error(
        `push.apps.${ctx.app}.log: the log sender is for development: in production no device would get a push while every send answers "sent": give the app fcm and/or apns credentials instead (docs/push.md)`,
      );
    }
    if (ctx.env === "demo") {
      ctx.log.warn(
        `pushes of app ${ctx.app} go to the log (push.apps.${ctx.app}.log): no device receives them`,
      );
    }
    return PUSH_SERVICES.map((service) => createLogSender(service, ctx));
  },
});

export function createLogSender(
  service: PushService,
  ctx: Pick<PushSenderContext, "app" | "log">,
): PushSender {
  return {
    service,
    async send(token, message) {
      const id = randomUUID();
      const device = deviceOf(token);
      const push = asSent(message);
      const text = [push.title, push.body].filter((t) => t !== undefined).join(": ");
      ctx.log.info(
        { push: service, device, id, ...push },
        `push to ${ctx.app} ${service} ${device}${push.silent ? " (silent)" : ""}${text ? `: ${text}` : ""}`,
      );
      return { status: "sent", id };
    },
    async check() {
      return { status: "ok", detail: "the log sender (development): pushes are written to the log" };
    },
    async close() {},
  };
}

/**
 * The end of a token, enough to tell a developer's devices apart (as the APNs sender logs them) and never the
 * whole of it, however short: a token in a log could be registered by whoever reads it (docs/push.md "Tokens").
 */
export function deviceOf(token: string): string {
  return `…${token.slice(token.length - Math.min(6, Math.floor(token.length / 3)))}`;
}

/**
 * The message as the real senders put it on the wire (fcm-message.ts toFcmMessage, apns.ts payloadOf): a
 * silent push carries no title, body or sound, only its badge and data; fields not given are left out.
 */
function asSent(m: PushMessage): PushMessage {
  const shown: PushMessage = m.silent
    ? { silent: true, badge: m.badge, data: m.data }
    : {
        title: m.title,
        body: m.body,
        badge: m.badge,
        sound: m.sound,
        data: m.data,
        threadId: m.threadId,
        category: m.category,
        mutableContent: m.mutableContent,
      };
  Object.assign(shown, {
    collapseKey: m.collapseKey,
    ttlSeconds: m.ttlSeconds,
    priority: m.priority,
    topic: m.topic,
    sandbox: m.sandbox,
  });
  return Object.fromEntries(Object.entries(shown).filter(([, v]) => v !== undefined)) as PushMessage;
}
