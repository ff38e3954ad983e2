import { randomUUID } from "node:crypto";
import { type Element, xml } from "@xmpp/component";

/**
 * The stanzas of the app server, read and written: XEP-0357 publishes (https://xmpp.org/extensions/xep-0357.html
 * §7) with their publish-options (XEP-0060 §7.1.5) and summary form, XEP-0050 ad-hoc commands carrying
 * XEP-0004 data forms, and RFC 6120 §8.3 stanza errors. Replies are made with @xmpp/component's own `xml`.
 */

export const NS = {
  commands: "http://jabber.org/protocol/commands",
  data: "jabber:x:data",
  pubsub: "http://jabber.org/protocol/pubsub",
  push: "urn:xmpp:push:0",
  discoInfo: "http://jabber.org/protocol/disco#info",
  discoItems: "http://jabber.org/protocol/disco#items",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
} as const;

const PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";
const SUMMARY = "urn:xmpp:push:summary";

/** The values of a data form's fields, by `var`. */
export function formValues(x: Element | undefined): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const field of x?.getChildren("field") ?? []) {
    const name = field.attrs.var;
    if (typeof name !== "string") continue;
    values.set(
      name,
      field.getChildren("value").map((v) => v.text()),
    );
  }
  return values;
}

/** A field's first value, trimmed; undefined when absent or empty. */
export const fieldValue = (values: Map<string, string[]>, name: string): string | undefined => {
  const v = values.get(name)?.[0]?.trim();
  return v === undefined || v === "" ? undefined : v;
};

/** What the server says about the notification (XEP-0357 §7, "push summary"); each field optional. */
export interface PushSummary {
  messageCount?: number;
  pendingSubscriptions?: number;
  sender?: string;
  body?: string;
}

export interface Publish {
  node: string;
  /** The `secret` of the publish-options the client gave its server at `enable`. */
  secret?: string;
  summary: PushSummary;
}

const count = (s: string | undefined): number | undefined => {
  if (s === undefined || !/^\d{1,9}$/.test(s)) return undefined;
  return Number(s);
};

/** A publish as ejabberd's mod_push and Prosody's mod_cloud_notify send it; undefined when it is none. */
export function parsePublish(pubsub: Element): Publish | undefined {
  const publish = pubsub.getChild("publish");
  const node = publish?.attrs.node;
  if (!publish || typeof node !== "string" || node === "") return undefined;
  const options = formValues(
    pubsub
      .getChild("publish-options")
      ?.getChildren("x", NS.data)
      .find((x) => fieldValue(formValues(x), "FORM_TYPE") === PUBLISH_OPTIONS),
  );
  const summaryForm = publish
    .getChild("item")
    ?.getChild("notification", NS.push)
    ?.getChildren("x", NS.data)
    .find((x) => fieldValue(formValues(x), "FORM_TYPE") === SUMMARY);
  const s = formValues(summaryForm);
  // the body is the one field not trimmed: it is shown as it came
  const body = s.get("last-message-body")?.[0];
  const summary: PushSummary = {};
  const messages = count(fieldValue(s, "message-count"));
  const pending = count(fieldValue(s, "pending-subscription-count"));
  const sender = fieldValue(s, "last-message-sender");
  if (messages !== undefined) summary.messageCount = messages;
  if (pending !== undefined) summary.pendingSubscriptions = pending;
  if (sender !== undefined) summary.sender = sender;
  if (body !== undefined && body.trim() !== "") summary.body = body;
  const secret = options.get("secret")?.[0];
  return { node, ...(secret === undefined ? {} : { secret }), summary };
}

export interface Command {
  node: string;
  action: string;
  fields: Map<string, string[]>;
}

/** An ad-hoc command request (XEP-0050 §3.2): its node, action (`execute` when absent) and submitted form. */
export function parseCommand(command: Element): Command {
  const x = command.getChildren("x", NS.data).find((f) => (f.attrs.type ?? "submit") === "submit");
  return {
    node: String(command.attrs.node ?? ""),
    action: String(command.attrs.action ?? "execute"),
    fields: formValues(x),
  };
}

/**
 * A completed command with its answer form, as Conversations' app server (p2) answers `register-push-*`:
 * `jid`, `node` and `secret`, which the client puts in its XEP-0357 `enable`.
 */
export function completedCommand(node: string, fields?: Array<{ var: string; type: string; value: string }>) {
  return xml(
    "command",
    { xmlns: NS.commands, node, sessionid: randomUUID(), status: "completed" },
    ...(fields
      ? [
          xml(
            "x",
            { xmlns: NS.data, type: "form" },
            ...fields.map((f) => xml("field", { var: f.var, type: f.type }, xml("value", {}, f.value))),
          ),
        ]
      : []),
  );
}

export type ErrorType = "auth" | "cancel" | "modify" | "wait";

/** An RFC 6120 stanza error with a text for the log of whoever receives it. */
export function stanzaError(type: ErrorType, condition: string, text?: string): Element {
  return xml(
    "error",
    { type },
    xml(condition, { xmlns: NS.stanzas }),
    ...(text ? [xml("text", { xmlns: NS.stanzas }, text)] : []),
  );
}

export function isError(el: unknown): el is Element {
  return typeof el === "object" && el !== null && (el as Element).name === "error";
}

/** The commands we offer, for disco#items on the commands node (XEP-0050 §2.2). */
export const COMMANDS = [
  { node: "register-push-fcm", name: "Register an FCM device" },
  { node: "register-push-apns", name: "Register an APNs device" },
  { node: "unregister-push-fcm", name: "Unregister an FCM device" },
  { node: "unregister-push-apns", name: "Unregister an APNs device" },
] as const;

export function discoInfo(node: string | undefined): Element {
  if (node === NS.commands) {
    return xml("query", { xmlns: NS.discoInfo, node });
  }
  return xml(
    "query",
    { xmlns: NS.discoInfo },
    xml("identity", { category: "pubsub", type: "push", name: "Push notifications" }),
    xml("identity", { category: "automation", type: "command-list", name: "Push registration" }),
    ...[NS.discoInfo, NS.discoItems, NS.commands, NS.push].map((f) => xml("feature", { var: f })),
  );
}

export function discoItems(node: string | undefined, jid: string): Element {
  if (node !== NS.commands) return xml("query", { xmlns: NS.discoItems });
  return xml(
    "query",
    { xmlns: NS.discoItems, node },
    ...COMMANDS.map((c) => xml("item", { jid, node: c.node, name: c.name })),
  );
}
