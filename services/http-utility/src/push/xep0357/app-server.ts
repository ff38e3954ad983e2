import type { Component, Element, IncomingContext } from "@xmpp/component";
import type { PushConfig } from "#common/config/push-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import type { Notifier } from "../notifier.ts";
import { deviceRow, registerDevice, unregisterDevice } from "./devices.ts";
import type { PublishOutcome, RegistrationOutcome, Xep0357Metrics } from "./metrics.ts";
import {
  accountHash,
  type DeviceService,
  decodeNode,
  encodeNode,
  publishSecret,
  secretMatches,
} from "./nodes.ts";
import { notificationOf } from "./notification.ts";
import {
  completedCommand,
  discoInfo,
  discoItems,
  fieldValue,
  NS,
  parseCommand,
  parsePublish,
  stanzaError,
} from "./protocol.ts";

/**
 * One domain's XEP-0357 app server (https://xmpp.org/extensions/xep-0357.html), mounted on its component:
 *
 * - devices register with the ad-hoc commands of Conversations' app server, p2
 *   (https://github.com/iNPUTmice/p2, `PushController`): `register-push-fcm` / `register-push-apns` with the
 *   fields `token` and `device-id` (or `android-id`), answered with `jid`, `node` and `secret`;
 *   `unregister-push-fcm` / `unregister-push-apns` with `device-id`;
 * - the user's server publishes to that node (ejabberd's mod_push, Prosody's mod_cloud_notify, both from the
 *   domain's JID) with the secret in its publish-options; the device is pushed through the notifier.
 *
 * Only the domain's users register, and only the domain's server publishes. Errors follow what the servers do
 * with them: `wait` for our own trouble (a provider down), which they retry later; `auth`/`cancel` for a wrong
 * secret or a device that is gone, after which they disable the push (ejabberd at once, Prosody after
 * `push_max_errors`).
 */

export interface AppServerDeps {
  /** The XMPP domain whose users and server this app server serves. */
  domain: string;
  /** The component's JID, answered as `jid` at registration. */
  component: string;
  app: string;
  private: boolean;
  alertTitle: string;
  /** The key of the publish secrets (nodes.ts secretKey). */
  key: Buffer;
  pool: Pool;
  push: Pick<PushConfig, "apps" | "maxTokensPerUser" | "tokenMoveAfterDays">;
  notifier: Notifier;
  metrics: Xep0357Metrics;
  log: Logger;
}

type Reply = Element | boolean;

const COMMAND = /^(register|unregister)-push-(fcm|apns)$/;
const TOKEN = /^[\x21-\x7e]{1,4096}$/;
const DEVICE_ID = /^[\x21-\x7e]{1,200}$/;

/** A JID's parts as the stanza names them (the bare JID kept as written: p2 hashes it so). */
function parts(from: string | undefined): { local: string; domain: string; resource: string; bare: string } {
  const raw = from ?? "";
  const slash = raw.indexOf("/");
  const bare = slash < 0 ? raw : raw.slice(0, slash);
  const at = bare.indexOf("@");
  return {
    local: at < 0 ? "" : bare.slice(0, at),
    domain: (at < 0 ? bare : bare.slice(at + 1)).toLowerCase(),
    resource: slash < 0 ? "" : raw.slice(slash + 1),
    bare,
  };
}

export function createAppServer(deps: AppServerDeps) {
  const { domain, metrics } = deps;
  const { log } = deps;

  const registered = (command: string, outcome: RegistrationOutcome, reply: Reply): Reply => {
    metrics.registrations.inc({ domain, command, outcome });
    return reply;
  };
  const published = (outcome: PublishOutcome, reply: Reply): Reply => {
    metrics.publishes.inc({ domain, outcome });
    return reply;
  };

  function hasCredentials(service: DeviceService): boolean {
    const creds = deps.push.apps[deps.app];
    return Boolean(creds && (creds.log !== undefined || creds[service] !== undefined));
  }

  async function command(ctx: IncomingContext): Promise<Reply> {
    const cmd = parseCommand(ctx.element);
    const m = COMMAND.exec(cmd.node);
    const name = m ? cmd.node : "other";
    if (!m)
      return registered(name, "bad_request", stanzaError("cancel", "item-not-found", "no such command"));
    if (cmd.action !== "execute" && cmd.action !== "complete") {
      return registered(name, "bad_request", stanzaError("modify", "bad-request", "execute the command"));
    }
    const from = parts(ctx.stanza.attrs.from);
    if (from.local === "" || from.domain !== domain) {
      return registered(
        name,
        "forbidden",
        stanzaError("auth", "forbidden", `only users of ${domain} register here`),
      );
    }
    const service = m[2] as DeviceService;
    const owner = { domain, node: from.local.toLowerCase() };
    const deviceId = fieldValue(cmd.fields, "device-id") ?? fieldValue(cmd.fields, "android-id");
    if (deviceId === undefined || !DEVICE_ID.test(deviceId)) {
      return registered(
        name,
        "bad_request",
        stanzaError("modify", "bad-request", "device-id: 1 to 200 printable ASCII characters"),
      );
    }

    if (m[1] === "unregister") {
      const forgotten = await unregisterDevice(deps.pool, owner, service, deviceId);
      if (forgotten === 0) {
        return registered(name, "bad_request", stanzaError("cancel", "item-not-found", "no such device"));
      }
      log.info({ user: `${owner.node}@${domain}`, service }, "XEP-0357 device unregistered");
      return registered(name, "unregistered", completedCommand(cmd.node));
    }

    if (fieldValue(cmd.fields, "muc") !== undefined) {
      return registered(
        name,
        "bad_request",
        stanzaError(
          "cancel",
          "feature-not-implemented",
          "push registrations for group chats are not offered",
        ),
      );
    }
    const token = fieldValue(cmd.fields, "token");
    if (token === undefined || !TOKEN.test(token)) {
      return registered(
        name,
        "bad_request",
        stanzaError("modify", "bad-request", "token: 1 to 4096 printable ASCII characters"),
      );
    }
    if (!hasCredentials(service)) {
      log.warn(
        { app: deps.app, service },
        "XEP-0357 registration for a service the app has no credentials for",
      );
      return registered(
        name,
        "refused",
        stanzaError("cancel", "service-unavailable", `this server does not push to ${service} devices`),
      );
    }
    const registration = await registerDevice(deps.pool, deps.push, {
      ...owner,
      service,
      token,
      app: deps.app,
      deviceId,
    });
    if (registration.outcome === "refused") {
      return registered(
        name,
        "refused",
        stanzaError("cancel", "conflict", "this token is registered to another account from another device"),
      );
    }
    const node = encodeNode({ service, account: accountHash(from.bare, deviceId), token });
    log.info(
      {
        user: `${owner.node}@${domain}`,
        service,
        outcome: registration.outcome,
        tokenPrefix: token.slice(0, 8),
      },
      "XEP-0357 device registered",
    );
    return registered(
      name,
      "registered",
      completedCommand(cmd.node, [
        { var: "jid", type: "jid-single", value: deps.component },
        { var: "node", type: "text-single", value: node },
        { var: "secret", type: "text-single", value: publishSecret(deps.key, domain, node) },
      ]),
    );
  }

  async function publish(ctx: IncomingContext): Promise<Reply> {
    const p = parsePublish(ctx.element);
    if (!p) return published("bad_request", stanzaError("modify", "bad-request", "a publish with a node"));
    const from = parts(ctx.stanza.attrs.from);
    if (from.resource !== "" || from.domain !== domain) {
      return published("forbidden", stanzaError("auth", "forbidden", `only ${domain} publishes here`));
    }
    const device = decodeNode(p.node);
    if (!device) return published("unknown_node", stanzaError("cancel", "item-not-found", "no such node"));
    if (!secretMatches(deps.key, domain, p.node, p.secret)) {
      log.info({ from: from.bare }, "XEP-0357 publish with a wrong or missing secret refused");
      return published("forbidden", stanzaError("auth", "forbidden", "wrong publish secret"));
    }
    const row = await deviceRow(deps.pool, device.service, device.token);
    if (!row) {
      return published(
        "unknown_node",
        stanzaError("cancel", "item-not-found", "the device is no longer registered"),
      );
    }
    const message = notificationOf({
      service: row.service,
      account: device.account,
      summary: p.summary,
      private: deps.private,
      alertTitle: deps.alertTitle,
    });
    const result = await deps.notifier.toToken(row, message);
    log.debug(
      { status: result.status, reason: result.reason, tokenPrefix: device.token.slice(0, 8) },
      "XEP-0357 publish",
    );
    switch (result.status) {
      case "sent":
        return published("sent", true);
      case "dead_token":
        return published("dead_token", stanzaError("cancel", "item-not-found", "the device is gone"));
      default:
        return published(
          "not_sent",
          stanzaError("wait", "recipient-unavailable", "the push provider did not take it"),
        );
    }
  }

  /** Our own failure (the database) is the server's to retry: `wait`, never a reason to disable the push. */
  const guarded =
    (what: string, handler: (ctx: IncomingContext) => Promise<Reply>) =>
    async (ctx: IncomingContext): Promise<Reply> => {
      try {
        return await handler(ctx);
      } catch (err) {
        log.error({ err }, `XEP-0357 ${what} failed`);
        return stanzaError("wait", "internal-server-error");
      }
    };

  return {
    command: guarded("command", command),
    publish: guarded("publish", publish),
    /** Mounts the handlers on a component's iq callee. */
    mount(entity: Component): void {
      entity.iqCallee.set(NS.commands, "command", this.command);
      entity.iqCallee.set(NS.pubsub, "pubsub", this.publish);
      entity.iqCallee.get(NS.discoInfo, "query", (ctx) => discoInfo(ctx.element.attrs.node));
      entity.iqCallee.get(NS.discoItems, "query", (ctx) =>
        discoItems(ctx.element.attrs.node, deps.component),
      );
    },
  };
}

export type AppServer = ReturnType<typeof createAppServer>;
