import xml, { type Element } from "@xmpp/xml";
import type { Secrets } from "#common/config/secrets.ts";
import type { Logger } from "#common/logger.ts";
import { InvalidOptionsError, parseOptions } from "#common/plugins/problems.ts";
import type {
  BuddyIdentity,
  BuddyKind,
  CommandHandler,
  HookHandler,
  IncomingMessage,
  KindContext,
  MessageContext,
  Middleware,
  ServiceStatus,
} from "./kind.ts";

/**
 * One buddy's behaviour on top of any XMPP entity: turns message stanzas into `MessageContext`s, runs the
 * command router then the kind's middleware (koa-style, like @xmpp/middleware), and sends answers through
 * the `send` it is given. The connection (xmpp/session.ts) feeds it stanzas; tests feed it directly.
 */

export interface BotDeps {
  identity: BuddyIdentity;
  kind: BuddyKind;
  /** Raw `options` of the definition: parsed here by the kind's schema. */
  options: unknown;
  log: Logger;
  send: (stanza: Element) => Promise<void>;
  serviceStatus: () => Promise<ServiceStatus[]>;
  /** The config's secrets (environment variables that options name). */
  secrets: Pick<Secrets, "env">;
  fetch?: typeof fetch;
  /** Other buddies: their chats are ignored, so two bots can never answer each other forever. */
  isPeer?: (bareJid: string) => boolean;
  /** Counts messages through the bot, for metrics and the admin API. */
  count?: (direction: "in" | "out") => void;
}

export interface Bot {
  /** Handles one incoming stanza; anything but a chat or groupchat message with a body is ignored. */
  onStanza(stanza: Element): Promise<void>;
  hooks: ReadonlyMap<string, HookHandler>;
  commands: ReadonlyMap<string, { description: string }>;
  stop(): Promise<void>;
}

const MAX_BODY = 10_000;

/** The message a kind sees, or undefined for what a bot must not answer (errors, room history, itself). */
export function readMessage(stanza: Element, self: BuddyIdentity): IncomingMessage | undefined {
  if (!stanza.is("message")) return undefined;
  const type = stanza.attrs.type ?? "normal";
  if (type !== "chat" && type !== "groupchat" && type !== "normal") return undefined;
  const body = stanza.getChildText("body");
  if (body === null || body.trim() === "") return undefined;
  const from = String(stanza.attrs.from ?? "");
  const slash = from.indexOf("/");
  const bare = (slash < 0 ? from : from.slice(0, slash)).toLowerCase();
  const resource = slash < 0 ? "" : from.slice(slash + 1);
  if (type === "groupchat") {
    // room history on join (XEP-0045 §7.2.15) and our own messages reflected by the room are not for us
    if (stanza.getChild("delay", "urn:xmpp:delay") || resource === "" || resource === self.nick)
      return undefined;
    return { type, from, sender: bare, room: bare, nick: resource, body: body.slice(0, MAX_BODY), stanza };
  }
  if (bare === self.jid.toLowerCase()) return undefined;
  if (self.rooms.some((r) => r.toLowerCase() === bare) && resource !== "") {
    // a private message from a room occupant: the room knows them only by nick
    if (resource === self.nick) return undefined;
    return {
      type: "chat",
      from,
      sender: from,
      room: bare,
      nick: resource,
      body: body.slice(0, MAX_BODY),
      stanza,
    };
  }
  return { type: "chat", from, sender: bare, body: body.slice(0, MAX_BODY), stanza };
}

/** The command text of a message: all of a chat, or in a room only what is addressed `nick: …` or `!…`. */
function commandText(m: IncomingMessage, nick: string): string | undefined {
  const text = m.body.trim();
  if (m.type === "chat") return text;
  if (text.startsWith("!")) return text.slice(1).trim();
  const lower = text.toLowerCase();
  for (const sep of [":", ","]) {
    const prefix = `${nick.toLowerCase()}${sep}`;
    if (lower.startsWith(prefix)) return text.slice(prefix.length).trim();
  }
  return undefined;
}

function messageStanza(to: string, body: string, type: "chat" | "groupchat"): Element {
  return xml("message", { to, type }, xml("body", {}, body));
}

export async function createBot(deps: BotDeps): Promise<Bot> {
  const { identity, log } = deps;
  const parsed = parseOptions(deps.kind.options, deps.options, "options");
  if (!parsed.ok) throw new InvalidOptionsError(parsed);
  const { options } = parsed;
  const middlewares: Middleware[] = [];
  const commands = new Map<string, { description: string; handler: CommandHandler }>();
  const hooks = new Map<string, HookHandler>();
  const rooms = new Set(identity.rooms.map((r) => r.toLowerCase()));

  const send = async (to: string, body: string, type?: "chat" | "groupchat") => {
    const t = type ?? (rooms.has(to.toLowerCase()) ? "groupchat" : "chat");
    await deps.send(messageStanza(to, body, t));
    deps.count?.("out");
  };

  commands.set("help", {
    description: "this list",
    handler: () =>
      [`${identity.username} (${identity.kind}: ${deps.kind.summary}). Commands:`]
        .concat([...commands].map(([name, c]) => `  ${name}: ${c.description}`))
        .join("\n"),
  });

  const router: Middleware = async (ctx, next) => {
    const text = commandText(ctx.message, identity.nick);
    if (text === undefined) return next();
    const [word = "", ...rest] = text.split(/\s+/);
    const command = commands.get(word.toLowerCase());
    if (!command) return next();
    const answer = await command.handler(rest.join(" "), ctx);
    if (answer !== undefined) await ctx.reply(answer);
  };

  const ctx: KindContext = {
    buddy: identity,
    options,
    log,
    use: (m) => {
      middlewares.push(m);
    },
    command: (name, description, handler) => {
      const key = name.toLowerCase();
      if (!/^[a-z][\w-]{0,31}$/.test(key))
        throw new Error(`command "${name}": a word of letters, digits, - or _`);
      if (commands.has(key) && key !== "help") throw new Error(`command "${name}" is registered twice`);
      commands.set(key, { description, handler });
    },
    send,
    hook: (name, handler) => {
      if (!/^[a-z][\w-]{0,63}$/.test(name))
        throw new Error(`hook "${name}": a word of letters, digits, - or _`);
      hooks.set(name, handler);
    },
    serviceStatus: deps.serviceStatus,
    fetch: deps.fetch ?? fetch,
    secrets: deps.secrets,
  };
  const cleanup = await deps.kind.create(options, ctx);

  /** What a message nobody handled gets: a hint in a chat, silence in a room. */
  const fallback: Middleware = async (c) => {
    if (c.message.type === "chat") {
      const word = c.message.body.trim().split(/\s+/, 1)[0];
      await c.reply(`I don't know "${word?.slice(0, 40)}". Say help for what I can do.`);
    }
  };

  const chain = [router, ...middlewares, fallback];
  const run = (c: MessageContext, i: number): Promise<void> => {
    const m = chain[i];
    if (!m) return Promise.resolve();
    let called = false;
    return m(c, () => {
      if (called) return Promise.reject(new Error("next() called twice"));
      called = true;
      return run(c, i + 1);
    });
  };

  return {
    hooks,
    commands,
    async onStanza(stanza) {
      const message = readMessage(stanza, identity);
      if (!message) return;
      if (message.type === "chat" && !message.room && deps.isPeer?.(message.sender)) return;
      deps.count?.("in");
      const c: MessageContext = {
        message,
        reply: (body) =>
          message.type === "groupchat"
            ? send(message.room as string, body, "groupchat")
            : send(message.from, body, "chat"),
      };
      try {
        await run(c, 0);
      } catch (err) {
        log.error({ err, from: message.sender }, "message handling failed");
        if (message.type === "chat")
          await c.reply("Something went wrong handling that; it is in my log.").catch(() => {});
      }
    },
    async stop() {
      if (typeof cleanup === "function") await cleanup();
    },
  };
}
