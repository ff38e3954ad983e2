import { CHAT_BODY_LENGTH, truncate } from "../mongooseim/schema.ts";
import type { PushMessage, PushService } from "../senders/sender.ts";
import type { PushSummary } from "./protocol.ts";

/**
 * What a publish becomes on the device (docs/xmpp-clients.md "What the device receives").
 *
 * A publish is "a message" when its summary has a `last-message-body`: ejabberd's mod_push puts one (its
 * `include_body` text, "New message" by default) only for messages with a body, Prosody's mod_cloud_notify
 * (its `push_notification_important_body`, "New Message!") only for important stanzas. Anything else
 * (a receipt, a chat state) only wakes the app.
 *
 * FCM pushes are data-only, as Conversations' app server sends them: an Android app is woken and fetches
 * from its server; a `notification` would be shown by the system instead, with the app left asleep.
 * APNs shows an alert for a message (the badge counted per device by the notifier) and wakes the app
 * silently for anything else. In privacy mode neither carries the sender or the text, whatever the
 * server sent: only that a message came, and the server's `message-count`.
 */

export interface NotificationInput {
  service: PushService;
  /** The account hash of the node (nodes.ts): which of the app's accounts to wake. */
  account: string;
  summary: PushSummary;
  private: boolean;
  alertTitle: string;
}

export function notificationOf(i: NotificationInput): PushMessage {
  const { summary } = i;
  const message = summary.body !== undefined;
  const data: Record<string, string> = { type: "xep0357", account: i.account };
  if (summary.messageCount !== undefined) data.count = String(summary.messageCount);
  if (message) data.message = "1";
  const body = summary.body === undefined ? undefined : truncate(summary.body, CHAT_BODY_LENGTH);
  if (!i.private) {
    if (summary.sender !== undefined) data.sender = summary.sender;
    if (body !== undefined) data.body = body;
  }
  const priority = message ? "high" : "normal";

  if (i.service === "fcm" || !message) return { data, silent: true, priority };
  // ejabberd and Prosody both send the full JID: the alert names the contact, and groups by it as the chat
  // does, not by whichever of the contact's clients wrote (nor shows that client's resource)
  const sender = i.private || summary.sender === undefined ? undefined : bareJid(summary.sender);
  return {
    title: sender ?? i.alertTitle,
    ...(i.private || body === undefined ? {} : { body }),
    data,
    sound: "default",
    priority,
    // a notification service extension may replace the alert with what the app fetches
    mutableContent: true,
    ...(sender === undefined ? {} : { threadId: sender }),
  };
}

/** A JID without its resource (the first `/` starts it: RFC 7622 §3.1). */
function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}
