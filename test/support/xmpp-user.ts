import { randomBytes } from "node:crypto";
import xml, { type Element } from "@xmpp/xml";
import { ignoreDataAfterClose } from "../../services/buddies/src/xmpp/connection.ts";
import { trustingClient } from "./trusting-client.ts";

/**
 * A person at an XMPP client for the end-to-end suites: logs in to the test ejabberd over direct TLS
 * (trusting its certificate through the TLS options, as `login()` in ejabberd.ts does), keeps every stanza
 * it receives, and waits for the one a test expects. MUC (XEP-0045) join as a user does it.
 */

export interface XmppUser {
  jid: string;
  send(stanza: Element): Promise<void>;
  chat(to: string, body: string): Promise<void>;
  /** Resolves with the first stanza (already received or to come) matching `match`, or rejects after `ms`. */
  waitFor(match: (s: Element) => boolean, ms?: number, what?: string): Promise<Element>;
  /** Forgets the stanzas received so far. */
  clear(): void;
  /** Joins a room (unlocking it as an instant room when this join created it). */
  join(room: string, nick: string): Promise<void>;
  stop(): Promise<void>;
}

export interface UserOptions {
  port: number;
  ca: string;
  domain: string;
  username: string;
  password: string;
  resource?: string;
}

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

export const bodyOf = (s: Element) => s.getChildText("body") ?? "";

/** A groupchat or chat message whose body contains `text`, from `from` (bare or full JID prefix). */
export const messageFrom = (from: string, text: string | RegExp) => (s: Element) =>
  s.is("message") &&
  String(s.attrs.from ?? "").startsWith(from) &&
  (typeof text === "string" ? bodyOf(s).includes(text) : text.test(bodyOf(s)));

/** The available presence of `nick` in `room`. */
export const inRoom = (room: string, nick: string) => (s: Element) =>
  s.is("presence") && s.attrs.from === `${room}/${nick}` && s.attrs.type === undefined;

export async function connectUser(o: UserOptions): Promise<XmppUser> {
  const service = `xmpps://127.0.0.1:${o.port}`;
  const xmpp = trustingClient({
    service,
    ca: o.ca,
    domain: o.domain,
    username: o.username,
    password: o.password,
    // one resource per connection: a second login of the same user must not replace the first
    resource: o.resource ?? `test-${randomBytes(3).toString("hex")}`,
  });
  ignoreDataAfterClose(xmpp);

  let received: Element[] = [];
  const waiters = new Set<{ match: (s: Element) => boolean; resolve: (s: Element) => void }>();
  xmpp.on("stanza", (s: Element) => {
    received.push(s);
    for (const w of waiters) {
      if (w.match(s)) {
        waiters.delete(w);
        w.resolve(s);
      }
    }
  });
  xmpp.on("error", () => {}); // a test notices through what it waits for

  const online = new Promise<string>((resolve, reject) => {
    xmpp.once("online", (address) => resolve(address.toString()));
    xmpp.once("error", reject);
  });
  // not xmpp.start(): see login() in ejabberd.ts
  await xmpp.connect(service);
  xmpp.open({ domain: o.domain }).catch(() => {});
  const jid = await online;
  await xmpp.send(xml("presence"));

  const waitFor = (match: (s: Element) => boolean, ms = 10_000, what = "a stanza") => {
    const seen = received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Element>((resolve, reject) => {
      const w = { match, resolve };
      waiters.add(w);
      setTimeout(() => {
        if (!waiters.delete(w)) return;
        const last = received
          .slice(-8)
          .map((s) => s.toString())
          .join("\n");
        reject(new Error(`${jid}: no ${what} after ${ms} ms; last stanzas:\n${last}`));
      }, ms);
    });
  };

  return {
    jid,
    send: (s) => xmpp.send(s),
    chat: (to, body) => xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, body))),
    waitFor,
    clear() {
      received = [];
    },
    async join(room, nick) {
      await xmpp.send(
        xml(
          "presence",
          { to: `${room}/${nick}` },
          xml("x", { xmlns: NS_MUC }, xml("history", { maxstanzas: "0" })),
        ),
      );
      const self = await waitFor(
        (s) => s.is("presence") && s.attrs.from === `${room}/${nick}`,
        10_000,
        `self-presence in ${room}`,
      );
      if (self.attrs.type === "error") throw new Error(`cannot join ${room}: ${self.toString()}`);
      const codes = (self.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((c) => c.attrs.code);
      if (codes.includes("201")) {
        // we created it: accept the default configuration, which unlocks it (XEP-0045 §10.1.2)
        await xmpp.iqCaller.request(
          xml(
            "iq",
            { type: "set", to: room },
            xml("query", { xmlns: `${NS_MUC}#owner` }, xml("x", { xmlns: "jabber:x:data", type: "submit" })),
          ),
        );
      }
    },
    async stop() {
      await xmpp.stop().catch(() => {});
    },
  };
}
