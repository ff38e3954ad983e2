import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Client, jid } from "@xmpp/client-core";
import iqCallee from "@xmpp/iq/callee.js";
import iqCaller from "@xmpp/iq/caller.js";
import middleware from "@xmpp/middleware";
import resourceBinding from "@xmpp/resource-binding";
import sasl from "@xmpp/sasl";
import plain from "@xmpp/sasl-plain";
import scramsha1 from "@xmpp/sasl-scram-sha-1";
import { canUpgrade, upgrade } from "@xmpp/starttls/starttls.js";
import streamFeatures from "@xmpp/stream-features";
import tcp from "@xmpp/tcp";
import ConnectionTLS from "@xmpp/tls/lib/Connection.js";
import xml from "@xmpp/xml";
import SASLFactory from "saslmechanisms";

/**
 * One buddy's XMPP client, assembled the way @xmpp/client assembles its own (RFC 6120 stream negotiation:
 * STARTTLS, SASL, resource binding) but with what a bot needs and @xmpp/client 0.14 cannot do: TLS options
 * (a private CA, or verification off for one domain) on both direct TLS and the STARTTLS upgrade, which
 * @xmpp/client leaves at Node's defaults (xmppjs/xmpp.js#598). No @xmpp/reconnect: the session owns
 * reconnection, with backoff. PLAIN only over TLS; SCRAM-SHA-1 when the server offers it.
 */

export interface XmppTls {
  verify: boolean;
  /** Path of a PEM CA file. */
  ca?: string | undefined;
}

export interface XmppClientOptions {
  service: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  tls: XmppTls;
}

export type XmppClient = ReturnType<typeof createXmppClient>;

const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
const caCache = new Map<string, string>();

/** The TLS options of a server: Node's trust store plus a private CA, verified unless told otherwise. */
export function tlsOptions(domain: string, t: XmppTls): ConnectionOptions {
  const o: ConnectionOptions = { servername: domain, rejectUnauthorized: t.verify };
  if (t.ca) {
    let pem = caCache.get(t.ca);
    if (pem === undefined) {
      pem = readFileSync(t.ca, "utf8");
      caCache.set(t.ca, pem);
    }
    o.ca = pem;
  }
  return o;
}

/**
 * xmpp.js 0.14 hands every chunk to its parser, which is gone once the stream closed: bytes arriving between
 * the server's `</stream:stream>` (or a parse error) and the socket's close throw from a socket listener, an
 * uncaught exception that would take every buddy of the runner down (xmppjs/xmpp.js#860). Dropped instead.
 */
export function ignoreDataAfterClose(entity: object): void {
  const e = entity as { parser: unknown; _onData(data: Buffer): void };
  const onData = e._onData;
  e._onData = function (this: typeof e, data: Buffer) {
    if (this.parser) onData.call(this, data);
  };
}

export function createXmppClient(o: XmppClientOptions) {
  const secure = tlsOptions(o.domain, o.tls);
  const entity = new Client({ service: o.service, domain: o.domain });
  entity.jid = jid(o.username, o.domain);
  ignoreDataAfterClose(entity);
  // TLS connections are checked against the XMPP domain, whatever host the service names
  class TrustingTls extends (ConnectionTLS as unknown as new () => {
    socketParameters(service: string): object | undefined;
  }) {
    override socketParameters(service: string) {
      const p = super.socketParameters(service);
      return p && { ...p, ...secure };
    }
  }
  const transports = (entity as unknown as { transports: unknown[] }).transports;
  transports.push(TrustingTls);
  tcp({ entity });

  const mw = middleware({ entity });
  const features = streamFeatures({ middleware: mw });
  const caller = iqCaller({ middleware: mw, entity });
  iqCallee({ middleware: mw, entity }).get("urn:xmpp:ping", "ping", () => ({}));

  features.use("starttls", NS_TLS, async ({ entity: e }: { entity: typeof entity }) => {
    const socket = (e as unknown as { socket: unknown }).socket;
    if (!canUpgrade(socket)) return;
    const answer = await e.sendReceive(xml("starttls", { xmlns: NS_TLS }));
    if (!answer.is("proceed", NS_TLS)) throw new Error("the server refused STARTTLS");
    const upgraded = await upgrade(socket, { host: o.domain, ...secure });
    (e as unknown as { _attachSocket(s: unknown): void })._attachSocket(upgraded);
    await e.restart();
  });

  const factory = new SASLFactory();
  scramsha1(factory);
  plain(factory);
  sasl(
    { streamFeatures: features, saslFactory: factory as never },
    async (
      done: (c: { username: string; password: string }, m: string) => Promise<void>,
      mechanisms: string[],
    ) => {
      const usable = mechanisms.filter((m) => m !== "PLAIN" || entity.isSecure());
      const mechanism = ["SCRAM-SHA-1", "PLAIN"].find((m) => usable.includes(m));
      if (!mechanism) throw new Error(`no safe SASL mechanism: the server offers ${mechanisms.join(", ")}`);
      // xmpp.js encodes SASL with btoa(), as Latin-1: hand it the UTF-8 bytes so non-ASCII passwords work
      const password = Buffer.from(o.password, "utf8").toString("latin1");
      await done({ username: o.username, password }, mechanism);
    },
  );
  resourceBinding({ iqCaller: caller, streamFeatures: features }, o.resource);

  return Object.assign(entity, { middleware: mw, iqCaller: caller });
}
