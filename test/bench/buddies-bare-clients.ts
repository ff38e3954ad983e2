import { readFileSync } from "node:fs";
import { type Client, xml } from "@xmpp/client";
import { bareClient, goOffline, goOnline } from "./buddies-xmpp-client.ts";

/**
 * The baseline of buddies-online.bench.ts, in its own process as the runner is: `count` bare @xmpp/client
 * connections `<prefix>-NNN`, all started at once (as a runner starts the buddies it claims in one tick),
 * each answering a chat with the same body. Tells its parent over IPC when the last one is online (wall
 * clock, as the runner's `connectedSince`), and signs every client off at "stop" or when the parent goes.
 *
 * Usage: node buddies-bare-clients.ts <service> <ca file> <domain> <prefix> <count> <password file> <resource>
 */

export type BareClientsMessage =
  | { type: "online"; firstOnlineAt: number; lastOnlineAt: number; count: number }
  | { type: "failed"; error: string };

const [service, caFile, domain, prefix, countText, passwordFile, resource] = process.argv.slice(2);
if (!service || !caFile || !domain || !prefix || !countText || !passwordFile || !resource) {
  console.error(
    "usage: buddies-bare-clients.ts <service> <ca> <domain> <prefix> <count> <password file> <resource>",
  );
  process.exit(2);
}
const ca = readFileSync(caFile, "utf8");
const password = readFileSync(passwordFile, "utf8").split(/\r?\n/, 1)[0] ?? "";
const count = Number(countText);
const username = (i: number) => `${prefix}-${String(i).padStart(3, "0")}`;

/**
 * The bound the runner puts on a whole login (buddies.reconnect.connectTimeoutMs, default 20 s) rather than
 * xmpp.js's 2 s a step: with 500 handshakes at once a stream header can take longer, and a bare client has
 * no retry (the runner retries with backoff, and its time shows it).
 */
const STEP_TIMEOUT_MS = 20_000;

const clients: Client[] = [];
let stopping: Promise<void> | undefined;
const stop = () => {
  stopping ??= Promise.all(clients.map(goOffline)).then(() => process.exit(0));
  return stopping;
};
process.on("message", (m) => {
  if (m === "stop") void stop();
  // why a start is slow: how many clients are in each connection status
  if (m === "status") {
    const statuses: Record<string, number> = {};
    for (const c of clients) statuses[c.status] = (statuses[c.status] ?? 0) + 1;
    console.error(`bare clients by status: ${JSON.stringify(statuses)}`);
  }
});
process.on("disconnect", () => void stop());

function echo(xmpp: Client): void {
  xmpp.on("stanza", (stanza) => {
    if (!stanza.is("message") || stanza.attrs.type !== "chat") return;
    const body = stanza.getChildText("body");
    if (body === null) return;
    xmpp.send(xml("message", { to: stanza.attrs.from, type: "chat" }, xml("body", {}, body))).catch(() => {});
  });
}

let firstOnlineAt = Number.POSITIVE_INFINITY;
let lastOnlineAt = 0;
try {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const xmpp = bareClient({
        service,
        ca,
        domain,
        username: username(i),
        password,
        resource,
        timeoutMs: STEP_TIMEOUT_MS,
      });
      clients.push(xmpp);
      xmpp.on("error", () => {}); // a failed login rejects goOnline; later errors end in a closed stream
      echo(xmpp);
      await goOnline(xmpp, { service, domain });
      firstOnlineAt = Math.min(firstOnlineAt, Date.now());
      lastOnlineAt = Math.max(lastOnlineAt, Date.now());
    }),
  );
  process.send?.({ type: "online", firstOnlineAt, lastOnlineAt, count } satisfies BareClientsMessage);
} catch (err) {
  const e = err as { name?: string; condition?: string; message?: string };
  process.send?.({
    type: "failed",
    error: `${e.name ?? "Error"}: ${e.condition ?? e.message ?? String(err)}`,
  } satisfies BareClientsMessage);
  await stop();
}
