import { type Client, xml } from "@xmpp/client";
import { trustingClient } from "../support/trusting-client.ts";

/**
 * The bare XMPP client of the buddies benchmark: @xmpp/client over direct TLS trusting the test server's
 * self-signed certificate, as `login()` in test/support/ejabberd.ts connects (xmpp.js passes no TLS options
 * to STARTTLS, xmppjs/xmpp.js#598), but staying online with available presence so that chats to its bare
 * JID reach it. Imported by the bare clients' own process too, so it stays light.
 */

export interface BareClientOptions {
  /** xmpps://127.0.0.1:<port> */
  service: string;
  /** PEM of the certificate to trust. */
  ca: string;
  domain: string;
  username: string;
  password: string;
  resource: string;
  /** xmpp.js's bound on each step (stream open, close…); its default is 2 s. */
  timeoutMs?: number;
}

export function bareClient(o: BareClientOptions): Client {
  return trustingClient({
    service: o.service,
    ca: o.ca,
    domain: o.domain,
    username: o.username,
    password: o.password,
    resource: o.resource,
    ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
  });
}

/**
 * Logs in and sends available presence. Not xmpp.start(), for the reason `login()` gives: its `open` step
 * can miss the server's stream header; `online` (or an error) decides instead.
 */
export async function goOnline(xmpp: Client, o: { service: string; domain: string }): Promise<void> {
  const online = new Promise<void>((resolve, reject) => {
    xmpp.once("online", () => resolve());
    xmpp.once("error", reject);
  });
  await xmpp.connect(o.service);
  const opened = xmpp.open({ domain: o.domain });
  opened.catch(() => {});
  await Promise.race([online, opened.then(() => online)]);
  await xmpp.send(xml("presence", {}));
}

/** Closes the stream (the server then signs the session off), bounded so a stuck socket cannot hang. */
export async function goOffline(xmpp: Client): Promise<void> {
  await Promise.race([xmpp.stop().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
}
