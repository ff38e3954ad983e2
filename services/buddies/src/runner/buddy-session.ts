import { readFile } from "node:fs/promises";
import xml, { type Element } from "@xmpp/xml";
import type { PasswordSource } from "#common/config/buddies-schema.ts";
import type { Secrets } from "#common/config/secrets.ts";
import type { Logger } from "#common/logger.ts";
import { type Bot, createBot } from "../kinds/bot.ts";
import type { BuddyKind, ServiceStatus } from "../kinds/kind.ts";
import { createXmppClient, type XmppClient, type XmppTls } from "../xmpp/connection.ts";
import { joinPresence, type MucEvent, readMucPresence, unlockRoom } from "../xmpp/muc.ts";
import { backoffDelay } from "./backoff.ts";

/**
 * One buddy's life: log in, announce presence, join its rooms, answer messages through its kind, ping the
 * server (XEP-0199) and reconnect with backoff when anything breaks, until `stop()`. Every failure ends in
 * `backoff` with `lastError` set; nothing here throws to the runner, so one buddy never disturbs the others.
 */

export type BuddyState = "connecting" | "online" | "backoff" | "stopped";

export interface ResolvedBuddy {
  domain: string;
  username: string;
  jid: string;
  kind: string;
  password: PasswordSource;
  options: Record<string, unknown>;
  rooms: string[];
  nick: string;
  service: string;
  tls: XmppTls;
}

export interface SessionSettings {
  resource: string;
  reconnect: { initialMs: number; maxMs: number; connectTimeoutMs: number };
  keepalive: { intervalSeconds: number; timeoutSeconds: number };
}

export interface SessionDeps {
  buddy: ResolvedBuddy;
  settings: SessionSettings;
  log: Logger;
  kind: (name: string) => Promise<BuddyKind>;
  serviceStatus: () => Promise<ServiceStatus[]>;
  /** The config's secrets: a `password.env` and the variables kinds' options name. */
  secrets: Pick<Secrets, "env">;
  /** Called after every change of state or counters. */
  onChange: () => void;
  /** Whether a bare JID is another buddy (whose chats this one ignores). */
  isPeer?: (bareJid: string) => boolean;
}

/** A connection that stays up this long has recovered: the next failure starts the backoff over. */
const STABLE_MS = 30_000;
const ROOM_RETRY_MS = 30_000;

async function readPassword(source: PasswordSource, secrets: Pick<Secrets, "env">): Promise<string> {
  if ("env" in source) {
    const value = secrets.env(source.env);
    if (!value) throw new Error(`the environment variable ${source.env} holding its password is not set`);
    return value;
  }
  const text = await readFile(source.file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read its password file ${source.file}: ${err.code ?? err.message}`);
  });
  const first = text.split(/\r?\n/, 1)[0] ?? "";
  if (first === "") throw new Error(`its password file ${source.file} is empty`);
  return first;
}

/** A short, password-free description of what went wrong. */
function describe(err: unknown): string {
  const e = err as { condition?: string; text?: string; message?: string; code?: string };
  if (e?.condition) return `${e.condition}${e.text ? `: ${e.text}` : ""}`;
  return String(e?.message ?? e?.code ?? err).slice(0, 500);
}

export class BuddySession {
  state: BuddyState = "stopped";
  stateSince = new Date();
  connectedSince: Date | null = null;
  lastError: string | null = null;
  messagesIn = 0;
  messagesOut = 0;
  reconnects = 0;
  bot: Bot | undefined;

  readonly #deps: SessionDeps;
  #client: XmppClient | undefined;
  #attempt = 0;
  #running = false;
  #timers = new Set<NodeJS.Timeout>();
  #generation = 0;

  constructor(deps: SessionDeps) {
    this.#deps = deps;
  }

  get buddy(): ResolvedBuddy {
    return this.#deps.buddy;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempt = 0;
    void this.#connect();
  }

  /** Unavailable presence (which also leaves the rooms), the stream closed, every timer cleared. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#generation++;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#teardown(true);
    this.#set("stopped");
  }

  #set(state: BuddyState, error?: string): void {
    if (error !== undefined) this.lastError = error;
    if (state !== this.state) {
      this.state = state;
      this.stateSince = new Date();
    }
    this.connectedSince = state === "online" ? (this.connectedSince ?? new Date()) : null;
    this.#deps.onChange();
  }

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  async #teardown(clean: boolean): Promise<void> {
    const client = this.#client;
    const bot = this.bot;
    this.#client = undefined;
    this.bot = undefined;
    await bot?.stop().catch((err) => this.#deps.log.warn({ err }, "kind cleanup failed"));
    if (!client) return;
    client.removeAllListeners("disconnect");
    try {
      if (clean && client.status === "online") await client.send(xml("presence", { type: "unavailable" }));
      await Promise.race([client.stop(), new Promise((r) => setTimeout(r, 2000))]);
    } catch {
      // the connection is going anyway
    }
    (
      client as unknown as { socket?: { destroy?: () => void; socket?: { destroy(): void } } }
    ).socket?.socket?.destroy();
  }

  /** After a failure: wait (exponential, jittered), then log in again. */
  #retry(reason: string): void {
    if (!this.#running) return;
    const delay = backoffDelay(
      this.#attempt++,
      this.#deps.settings.reconnect.initialMs,
      this.#deps.settings.reconnect.maxMs,
    );
    this.#set("backoff", reason);
    this.#deps.log.warn(
      { delayMs: delay, attempt: this.#attempt },
      `offline (${reason}); retrying in ${Math.round(delay / 1000)} s`,
    );
    const generation = this.#generation;
    this.#later(delay, () => {
      if (generation === this.#generation && this.#running) void this.#connect();
    });
  }

  async #connect(): Promise<void> {
    const generation = ++this.#generation;
    const { buddy, settings, log } = this.#deps;
    this.#set("connecting");
    let client: XmppClient | undefined;
    try {
      const password = await readPassword(buddy.password, this.#deps.secrets);
      const kind = await this.#deps.kind(buddy.kind);
      // stopped while reading those: no client exists yet for stop() to close, so none may be made
      if (generation !== this.#generation) return;
      client = createXmppClient({
        service: buddy.service,
        domain: buddy.domain,
        username: buddy.username,
        password,
        resource: settings.resource,
        tls: buddy.tls,
      });
      this.#client = client;
      const c = client;
      let failure: unknown;
      c.on("error", (err: unknown) => {
        failure ??= err;
        log.debug({ err }, "connection error");
      });
      const online = new Promise<void>((resolve, reject) => {
        c.once("online", () => resolve());
        c.on("error", reject);
        c.once("disconnect", () => reject(failure ?? new Error("the server closed the connection")));
      });
      // the race below decides; a promise that loses it (connect failed first, timer) must not reject unseen
      online.catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`not online after ${settings.reconnect.connectTimeoutMs} ms`)),
          settings.reconnect.connectTimeoutMs,
        );
      });
      try {
        await Promise.race([
          (async () => {
            await c.connect(buddy.service);
            c.open({ domain: buddy.domain }).catch(() => {}); // `online` or an error decides
            await online;
          })(),
          timeout,
        ]);
      } finally {
        clearTimeout(timer);
      }
      if (generation !== this.#generation) return;

      const bot = await createBot({
        identity: {
          jid: buddy.jid,
          domain: buddy.domain,
          username: buddy.username,
          kind: buddy.kind,
          rooms: buddy.rooms,
          nick: buddy.nick,
        },
        kind,
        options: buddy.options,
        log,
        ...(this.#deps.isPeer ? { isPeer: this.#deps.isPeer } : {}),
        send: (stanza) => c.send(stanza),
        serviceStatus: this.#deps.serviceStatus,
        secrets: this.#deps.secrets,
        count: (direction) => {
          if (direction === "in") this.messagesIn++;
          else this.messagesOut++;
          this.#deps.onChange();
        },
      });
      if (generation !== this.#generation) {
        // stopped while the kind was being set up: the teardown did not know this bot
        await bot.stop().catch((err) => log.warn({ err }, "kind cleanup failed"));
        return;
      }
      this.bot = bot;
      c.middleware.use(async (ctx: { stanza: Element }, next: () => Promise<unknown>) => {
        const event = readMucPresence(ctx.stanza, buddy.nick);
        if (event) this.#onRoomEvent(c, event, generation);
        else await bot.onStanza(ctx.stanza);
        return next();
      });
      c.on("disconnect", () => {
        if (generation !== this.#generation || !this.#running) return;
        this.#onLost(failure === undefined ? "the connection closed" : describe(failure));
      });

      await c.send(xml("presence", {}, xml("status", {}, `${buddy.kind} buddy`)));
      for (const room of buddy.rooms) await c.send(joinPresence(room, buddy.nick));
      this.#set("online", undefined);
      this.lastError = null;
      this.#deps.onChange();
      log.info({ rooms: buddy.rooms.length }, "online");
      this.#keepalive(c, generation);
    } catch (err) {
      if (generation !== this.#generation) return;
      const reason = describe(err);
      await this.#teardown(false);
      this.#retry(reason);
    }
  }

  #onLost(reason: string): void {
    const since = this.connectedSince?.getTime() ?? Date.now();
    if (Date.now() - since >= STABLE_MS) this.#attempt = 0;
    this.reconnects++;
    this.#generation++;
    void this.#teardown(false).then(() => this.#retry(reason));
  }

  #onRoomEvent(c: XmppClient, event: MucEvent, generation: number): void {
    // a connection being torn down (stop, restart, lost) hears the rooms answer its goodbye: not news
    if (generation !== this.#generation) return;
    const { log, buddy } = this.#deps;
    if (event.type === "created") {
      unlockRoom(c, event.room).catch((err) =>
        log.warn({ err, room: event.room }, "could not unlock the new room"),
      );
    } else if (event.type === "error") {
      log.warn(
        { room: event.room },
        `cannot join ${event.room}: ${event.reason}; retrying in ${ROOM_RETRY_MS / 1000} s`,
      );
      this.lastError = `room ${event.room}: ${event.reason}`;
      this.#deps.onChange();
      this.#rejoin(c, event.room, ROOM_RETRY_MS, generation);
    } else if (event.type === "removed") {
      if (event.rejoin) {
        log.warn({ room: event.room }, `removed from ${event.room} (${event.reason}); rejoining`);
        this.#rejoin(c, event.room, 1000, generation);
      } else {
        log.warn({ room: event.room }, `removed from ${event.room} (${event.reason}); not rejoining`);
        this.lastError = `room ${event.room}: ${event.reason}`;
        this.#deps.onChange();
      }
    } else if (event.type === "joined") {
      log.info({ room: event.room }, `in ${event.room}`);
    }
    void buddy;
  }

  #rejoin(c: XmppClient, room: string, ms: number, generation: number): void {
    this.#later(ms, () => {
      if (generation !== this.#generation || c.status !== "online") return;
      c.send(joinPresence(room, this.#deps.buddy.nick)).catch(() => {});
    });
  }

  /** XEP-0199: an unanswered ping means a dead connection that TCP has not noticed yet. */
  #keepalive(c: XmppClient, generation: number): void {
    const { keepalive } = this.#deps.settings;
    this.#later(keepalive.intervalSeconds * 1000, async () => {
      if (generation !== this.#generation) return;
      try {
        await c.iqCaller.request(
          xml("iq", { type: "get", to: this.#deps.buddy.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })),
          keepalive.timeoutSeconds * 1000,
        );
      } catch (err) {
        // an error answer (no mod_ping: service-unavailable) still proves the server is there
        if (!(err as { name?: string }).name?.includes("StanzaError") && generation === this.#generation) {
          this.#deps.log.warn(`no answer to a ping in ${keepalive.timeoutSeconds} s`);
          this.#onLost("no answer to keepalive ping");
          return;
        }
      }
      if (generation === this.#generation) this.#keepalive(c, generation);
    });
  }
}
