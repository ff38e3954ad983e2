import { EventEmitter } from "node:events";
import { Client, jid } from "@xmpp/client-core";
import middleware from "@xmpp/middleware";
import xml, { type Element, Parser } from "@xmpp/xml";
import { type Logger, pino } from "pino";
import { Secrets } from "#common/config/secrets.ts";
import { type Bot, createBot } from "../bot.ts";
import type { BuddyIdentity, BuddyKind, HookResponse, ServiceStatus } from "../kind.ts";

/**
 * A buddy on a real xmpp.js `Client` whose socket is fake, the way xmpp.js's own tests do it (@xmpp/test
 * mockSocket and context.js): the test plays the server. Incoming stanzas are bytes pushed into the socket,
 * parsed by the client's own parser and dispatched through @xmpp/middleware to `bot.onStanza`, as the runner
 * wires it; what the bot sends is the bytes the client wrote, parsed back into elements. So a kind's test
 * also covers escaping and what reaches the wire, not just what a function returned.
 */

const STREAM_OPEN =
  '<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0">';

/** The half of a TCP socket @xmpp/connection uses: `write(data, cb)`, events, `end()`. */
export class FakeSocket extends EventEmitter {
  secure = true;
  readonly written: string[] = [];
  connect(): void {}
  write(data: string, cb?: (err?: Error) => void): void {
    this.written.push(String(data));
    process.nextTick(() => cb?.());
  }
  end(): void {
    process.nextTick(() => this.emit("close", false));
  }
}

/** A message as the test asserts it: who it went to, its type and its text. */
export interface SentMessage {
  to: string;
  type: string;
  body: string;
}

export interface FakeEntityOptions {
  kind: BuddyKind;
  options?: unknown;
  identity?: Partial<BuddyIdentity>;
  serviceStatus?: () => Promise<ServiceStatus[]>;
  fetch?: typeof fetch;
  isPeer?: (bareJid: string) => boolean;
  /** The environment the buddy's secrets come from (none by default). */
  env?: Record<string, string>;
}

export interface FakeEntity {
  entity: Client;
  socket: FakeSocket;
  bot: Bot;
  identity: BuddyIdentity;
  log: Logger;
  /** Every log line the buddy wrote, parsed. */
  logLines: Array<Record<string, unknown>>;
  /** Errors the entity emitted (xmpp.js always needs an `error` listener). */
  errors: Error[];
  /** Pushes a stanza from "the server" and waits until the bot has handled it. */
  receive(stanza: Element | string): Promise<void>;
  chat(from: string, body: string): Promise<void>;
  groupchat(room: string, nick: string, body: string, ...children: Element[]): Promise<void>;
  /** Calls an HTTP hook the kind registered, as the runner's route does. */
  hook(name: string, body: unknown, query?: Record<string, string>): Promise<HookResponse>;
  /** Stanzas written since the last call, parsed from the socket's bytes. */
  takeStanzas(): Element[];
  /** The messages among them. */
  take(): SentMessage[];
  stop(): Promise<void>;
}

export function testLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

export async function createFakeEntity(o: FakeEntityOptions): Promise<FakeEntity> {
  const identity: BuddyIdentity = {
    jid: "bot@example.com",
    domain: "example.com",
    username: "bot",
    kind: "test",
    rooms: [],
    nick: "bot",
    ...o.identity,
  };
  const { log, lines } = testLogger();
  const errors: Error[] = [];

  const entity = new Client({ domain: identity.domain });
  // what connect() would pick, a transport; @xmpp/connection's own send (Client's parent class, not a
  // declared dependency) writes `element.toString()` to the socket, as every transport does
  entity.Transport = Object.getPrototypeOf(Client) as Client["Transport"];
  entity.on("error", (err) => errors.push(err));
  const socket = new FakeSocket();
  const internals = entity as unknown as {
    _attachSocket(s: FakeSocket): void;
    _attachParser(p: Parser): void;
  };
  internals._attachSocket(socket);
  internals._attachParser(new Parser());
  socket.emit("data", Buffer.from(STREAM_OPEN));
  entity.jid = jid(`${identity.jid}/buddy`);
  entity.status = "online";

  const bot = await createBot({
    identity,
    kind: o.kind,
    options: o.options ?? {},
    ...(o.isPeer ? { isPeer: o.isPeer } : {}),
    log,
    send: (el) => entity.send(el),
    serviceStatus: o.serviceStatus ?? (async () => []),
    secrets: new Secrets(o.env ?? {}),
    fetch: o.fetch,
  });

  const pending = new Set<Promise<void>>();
  middleware({ entity }).use(async (ctx, next) => {
    const p = bot.onStanza(ctx.stanza);
    pending.add(p);
    try {
      await p;
    } finally {
      pending.delete(p);
    }
    return next();
  });

  // the outgoing bytes, read the way a server reads them
  const outgoing: Element[] = [];
  const reader = new Parser();
  reader.on("element", (el: Element) => outgoing.push(el));
  reader.write(STREAM_OPEN);
  let read = 0;
  const takeStanzas = () => {
    for (; read < socket.written.length; read++) reader.write(socket.written[read] as string);
    return outgoing.splice(0);
  };

  const receive = async (stanza: Element | string) => {
    socket.emit("data", Buffer.from(stanza.toString()));
    await Promise.all([...pending]);
  };

  return {
    entity,
    socket,
    bot,
    identity,
    log,
    logLines: lines,
    errors,
    receive,
    chat: (from, body) =>
      receive(xml("message", { from, to: identity.jid, type: "chat" }, xml("body", {}, body))),
    groupchat: (room, nick, body, ...children) =>
      receive(
        xml(
          "message",
          { from: `${room}/${nick}`, to: identity.jid, type: "groupchat" },
          xml("body", {}, body),
          ...children,
        ),
      ),
    async hook(name, body, query = {}) {
      const handler = bot.hooks.get(name);
      if (!handler) throw new Error(`no hook "${name}"; registered: ${[...bot.hooks.keys()].join(", ")}`);
      return handler({ body, query });
    },
    takeStanzas,
    take: () =>
      takeStanzas()
        .filter((el) => el.is("message"))
        .map((el) => ({
          to: String(el.attrs.to),
          type: String(el.attrs.type),
          body: el.getChildText("body") ?? "",
        })),
    stop: () => bot.stop(),
  };
}
