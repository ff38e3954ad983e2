import { z } from "zod";
import { errors } from "../errors.ts";
import type { BuddyIdentity } from "./kind.ts";

/**
 * Where a notification may go, shared by the `notify` kind and its Zabbix preset: a user's bare JID as a
 * chat message, or a room the buddy is in as a groupchat message. A room the buddy is not in would take the
 * message and drop it (or bounce an error nobody reads), so that is refused before anything is sent.
 */

export const bareJid = z
  .string()
  .trim()
  .max(3071)
  .regex(
    /^[^@/\s"&'<>:]+@[a-z0-9.-]+$/i,
    "a bare JID such as alice@example.com or ops@conference.example.com",
  )
  .transform((s) => s.toLowerCase());

export type MessageType = "chat" | "groupchat";

export interface Target {
  to: string;
  type: MessageType;
}

export interface Recipients {
  /** The target for `to`, or a catalogue error (409 not_in_room, 400 invalid_request) saying what to change. */
  target(to: string, type?: MessageType): Target;
  deliver(targets: readonly Target[], body: string): Promise<void>;
}

const domainOf = (jid: string) => jid.slice(jid.indexOf("@") + 1);

export function createRecipients(
  buddy: BuddyIdentity,
  send: (to: string, body: string, type: MessageType) => Promise<void>,
): Recipients {
  const rooms = new Set(buddy.rooms.map((r) => r.toLowerCase()));
  // a MUC service hosts rooms only, so a JID there is a room even when the buddy is in none of its rooms
  const mucDomains = new Set([...rooms].map(domainOf));
  const looksLikeRoom = (jid: string) =>
    mucDomains.has(domainOf(jid)) || /^(conference|muc|rooms?|chat)\./.test(domainOf(jid));

  return {
    target(to, type) {
      const jid = to.toLowerCase();
      if (rooms.has(jid)) {
        if (type === "chat") {
          throw errors.invalidRequest("type", `${jid} is a room; send it as groupchat or leave type out`);
        }
        return { to: jid, type: "groupchat" };
      }
      if (type === "groupchat" || looksLikeRoom(jid)) {
        throw errors.notInRoom(buddy.jid, jid, [...rooms]);
      }
      return { to: jid, type: "chat" };
    },
    async deliver(targets, body) {
      for (const t of targets) await send(t.to, body, t.type);
    },
  };
}
