import xml, { type Element } from "@xmpp/xml";

/**
 * The part of XEP-0045 (Multi-User Chat) a buddy needs: join without history, unlock a room it created
 * (an "instant room", §10.1.2), and read what the room says about the buddy itself (status codes, §15.6).
 */

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_USER = "http://jabber.org/protocol/muc#user";
const NS_OWNER = "http://jabber.org/protocol/muc#owner";

export type MucEvent =
  | { type: "joined"; room: string }
  | { type: "created"; room: string }
  | { type: "removed"; room: string; reason: string; rejoin: boolean }
  | { type: "error"; room: string; reason: string };

export function joinPresence(room: string, nick: string): Element {
  return xml(
    "presence",
    { to: `${room}/${nick}` },
    xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" })),
  );
}

/** Accepts the default configuration of a room the buddy just created, which unlocks it. */
export async function unlockRoom(
  c: { iqCaller: { request(el: Element, timeout?: number): Promise<Element> } },
  room: string,
): Promise<void> {
  await c.iqCaller.request(
    xml(
      "iq",
      { type: "set", to: room },
      xml("query", { xmlns: NS_OWNER }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
    ),
    10_000,
  );
}

/** Why the room removed us, by status code; 332 and 333 are the server's doing, so the buddy comes back. */
const REMOVALS: Record<string, { reason: string; rejoin: boolean }> = {
  "301": { reason: "banned", rejoin: false },
  "307": { reason: "kicked by a moderator", rejoin: false },
  "321": { reason: "no longer a member", rejoin: false },
  "322": { reason: "the room became members-only", rejoin: false },
  "332": { reason: "the room's service is shutting down", rejoin: true },
  "333": { reason: "removed for technical reasons", rejoin: true },
};

/** What a presence says about this buddy in a room, or undefined when it is about someone else. */
export function readMucPresence(stanza: Element, nick: string): MucEvent | undefined {
  if (!stanza.is("presence")) return undefined;
  const from = String(stanza.attrs.from ?? "");
  const slash = from.indexOf("/");
  if (slash < 0) return undefined;
  const room = from.slice(0, slash).toLowerCase();
  const who = from.slice(slash + 1);
  if (stanza.attrs.type === "error") {
    const error = stanza.getChild("error");
    const condition =
      error?.children.find((c): c is Element => typeof c !== "string")?.name ?? "unknown error";
    return who === nick ? { type: "error", room, reason: condition } : undefined;
  }
  const x = stanza.getChild("x", NS_USER);
  if (!x) return undefined;
  const codes = x.getChildren("status").map((s) => String(s.attrs.code));
  if (!codes.includes("110") && who !== nick) return undefined; // 110: this presence is about us
  if (stanza.attrs.type === "unavailable") {
    for (const code of codes) {
      const removal = REMOVALS[code];
      if (removal) return { type: "removed", room, ...removal };
    }
    return { type: "removed", room, reason: "left the room", rejoin: false };
  }
  if (codes.includes("201")) return { type: "created", room };
  return { type: "joined", room };
}
