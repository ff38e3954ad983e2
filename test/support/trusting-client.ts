import { type Client, client } from "@xmpp/client";

/**
 * @xmpp/client over direct TLS (`xmpps://`) trusting `ca` through the TLS options, without its own
 * reconnection. xmpp.js passes no TLS options to its STARTTLS upgrade (xmppjs/xmpp.js#598), so the tests use
 * direct TLS through the client's own TLS transport, extended with `ca`.
 */
export function trustingClient(o: Parameters<typeof client>[0] & { service: string; ca: string }): Client {
  const { ca, ...options } = o;
  const xmpp = client(options);
  type Transport = new () => { socketParameters(service: string): object | undefined };
  const Tls = xmpp.transports.find((T) => T.prototype.socketParameters(o.service) !== undefined) as unknown as
    | Transport
    | undefined;
  if (!Tls) throw new Error("@xmpp/client has no TLS transport");
  class TrustingTls extends Tls {
    override socketParameters(s: string) {
      const p = super.socketParameters(s);
      return p && { ...p, ca };
    }
  }
  xmpp.transports.unshift(TrustingTls as unknown as (typeof xmpp.transports)[number]);
  xmpp.reconnect.stop();
  return xmpp;
}
