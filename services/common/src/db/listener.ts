import pg from "pg";
import type { Logger } from "../logger.ts";

/**
 * The process's one connection that LISTENs (PostgreSQL NOTIFY, https://www.postgresql.org/docs/current/sql-listen.html),
 * shared by every part of the process that wants notifications: each subscribes to its channels, and the
 * connection LISTENs on the union of them. It reconnects with backoff after the database goes away.
 * Notifications sent while it is away are lost: a subscription's `connected()` says whether its stream is
 * whole right now, and its `onReconnect` runs after every gap so its owner can resynchronise.
 */
export interface Listener {
  subscribe(channels: readonly string[], handlers: SubscriptionHandlers): Subscription;
  /** Ends the connection; the subscriptions hear nothing more. */
  close(): Promise<void>;
}

export interface SubscriptionHandlers {
  onMessage(channel: string, payload: string): void;
  /** After a gap: the connection was lost and its channels are LISTENed again. Not after the first LISTEN. */
  onReconnect?(): void | Promise<void>;
}

export interface Subscription {
  /** Whether every notification on its channels since the last `onReconnect` has been delivered. */
  connected(): boolean;
  /** No more notifications for it; its channels are UNLISTENed once no other subscription wants them. */
  close(): void;
}

interface Sub extends SubscriptionHandlers {
  channels: readonly string[];
  /** All its channels LISTENed on the current connection. */
  whole: boolean;
  /** It was whole once: becoming whole again means a gap to resynchronise after. */
  wasWhole: boolean;
}

/** One connected client and what it LISTENs on (or is about to). */
interface Connection {
  client: pg.Client;
  listening: Set<string>;
  requested: Set<string>;
  /** The last statement sent: the next waits for it (pg deprecates a query while another is running). */
  last: Promise<unknown>;
}

/** Sends `sql` on `c` after every statement sent before it; rejects as the statement does. */
function send(c: Connection, sql: string): Promise<unknown> {
  const next = c.last.catch(() => {}).then(() => c.client.query(sql));
  c.last = next;
  return next;
}

export function startListener(options: { connectionString: string; log: Logger }): Listener {
  const { log } = options;
  const subs = new Set<Sub>();
  let conn: Connection | undefined;
  let closed = false;
  let delay = 250;
  let timer: NodeJS.Timeout | undefined;

  const retry = () => {
    if (closed) return;
    timer = setTimeout(connect, delay);
    timer.unref();
    delay = Math.min(delay * 2, 5000);
  };

  const wanted = () => new Set([...subs].flatMap((s) => s.channels));

  /** Marks subscriptions whose channels are all LISTENed; those coming back from a gap resynchronise. */
  function settle(c: Connection): void {
    for (const s of subs) {
      if (s.whole || !s.channels.every((ch) => c.listening.has(ch))) continue;
      s.whole = true;
      if (!s.wasWhole) {
        s.wasWhole = true;
        continue;
      }
      // synchronously from here, so that nothing reads a stale state between "whole" and the owner's reset
      try {
        Promise.resolve(s.onReconnect?.()).catch((err) => log.error({ err }, "notification resync failed"));
      } catch (err) {
        log.error({ err }, "notification resync failed");
      }
    }
  }

  /** LISTENs on every wanted channel this connection does not LISTEN on yet. */
  function listenWanted(c: Connection): void {
    for (const ch of wanted()) {
      if (c.requested.has(ch)) continue;
      c.requested.add(ch);
      send(c, `LISTEN ${c.client.escapeIdentifier(ch)}`).then(
        () => {
          if (conn !== c) return;
          c.listening.add(ch);
          settle(c);
        },
        () => {}, // the connection broke: its "end" reconnects and LISTENs again
      );
    }
  }

  function deliver(channel: string, payload: string): void {
    for (const s of subs) {
      if (!s.channels.includes(channel)) continue;
      try {
        s.onMessage(channel, payload);
      } catch (err) {
        log.error({ err, channel }, "notification handler failed");
      }
    }
  }

  async function connect() {
    const client = new pg.Client({
      connectionString: options.connectionString,
      application_name: "xmpp-sidecars-listener",
    });
    client.on("notification", (n) => deliver(n.channel, n.payload ?? ""));
    client.on("error", () => {}); // the "end" that follows handles it
    client.on("end", () => {
      if (conn?.client !== client || closed) return;
      conn = undefined;
      for (const s of subs) s.whole = false;
      log.warn("notification listener lost its connection; reconnecting");
      retry();
    });
    try {
      await client.connect();
    } catch {
      await client.end().catch(() => {});
      retry();
      return;
    }
    if (closed) {
      await client.end().catch(() => {});
      return;
    }
    const reconnected = [...subs].some((s) => s.wasWhole);
    conn = { client, listening: new Set(), requested: new Set(), last: Promise.resolve() };
    delay = 250;
    if (reconnected) log.info("notification listener reconnected");
    listenWanted(conn);
  }

  void connect();
  return {
    subscribe(channels, handlers) {
      const s: Sub = {
        onMessage: handlers.onMessage,
        ...(handlers.onReconnect ? { onReconnect: handlers.onReconnect } : {}),
        channels: [...channels],
        whole: false,
        wasWhole: false,
      };
      subs.add(s);
      if (conn) {
        listenWanted(conn);
        settle(conn); // channels another subscription LISTENs on already
      }
      return {
        connected: () => subs.has(s) && s.whole && conn !== undefined,
        close() {
          if (!subs.delete(s)) return;
          const c = conn;
          if (!c) return;
          const still = wanted();
          for (const ch of s.channels) {
            if (still.has(ch) || !c.requested.has(ch)) continue;
            c.requested.delete(ch);
            c.listening.delete(ch);
            send(c, `UNLISTEN ${c.client.escapeIdentifier(ch)}`).catch(() => {});
          }
        },
      };
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = conn;
      conn = undefined;
      for (const s of subs) s.whole = false;
      await c?.client.end().catch(() => {});
    },
  };
}
