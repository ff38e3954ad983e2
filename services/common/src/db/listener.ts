import pg from "pg";
import type { Logger } from "../logger.ts";

/**
 * A dedicated connection that LISTENs on channels (PostgreSQL NOTIFY), reconnecting with backoff after
 * the database goes away. Notifications sent while it is away are lost: `connected()` says whether the
 * stream is whole right now, and `onReconnect` runs after every reconnection so users can resynchronise.
 */
export interface Listener {
  connected(): boolean;
  close(): Promise<void>;
}

export function startListener(options: {
  connectionString: string;
  channels: readonly string[];
  onMessage: (channel: string, payload: string) => void;
  onReconnect: () => void | Promise<void>;
  log: Logger;
}): Listener {
  let client: pg.Client | undefined;
  let closed = false;
  let everConnected = false;
  let delay = 250;
  let timer: NodeJS.Timeout | undefined;

  const retry = () => {
    if (closed) return;
    timer = setTimeout(connect, delay);
    timer.unref();
    delay = Math.min(delay * 2, 5000);
  };

  async function connect() {
    const c = new pg.Client({
      connectionString: options.connectionString,
      application_name: "xmpp-sidecars-listener",
    });
    c.on("notification", (n) => options.onMessage(n.channel, n.payload ?? ""));
    c.on("error", () => {}); // the "end" that follows handles it
    c.on("end", () => {
      if (client !== c || closed) return;
      client = undefined;
      options.log.warn("notification listener lost its connection; reconnecting");
      retry();
    });
    try {
      await c.connect();
      for (const ch of options.channels) await c.query(`LISTEN ${c.escapeIdentifier(ch)}`);
    } catch {
      await c.end().catch(() => {});
      retry();
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    delay = 250;
    if (everConnected) {
      options.log.info("notification listener reconnected");
      await options.onReconnect();
    }
    everConnected = true;
  }

  void connect();
  return {
    connected: () => client !== undefined,
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
