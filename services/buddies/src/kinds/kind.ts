import type { Element } from "@xmpp/xml";
import type { z } from "zod";
import type { Secrets } from "#common/config/secrets.ts";
import type { Logger } from "#common/logger.ts";
import type { PluginDefinition } from "#common/plugins/definition.ts";
import type { PluginPoint } from "#common/plugins/registry.ts";

/**
 * What a buddy kind is (docs/architecture.md "Plugins"): a plugin (common/plugins/definition.ts) whose `create`
 * wires one buddy's behaviour the way xmpp.js wires a client: koa-style middleware over incoming messages,
 * commands with an automatic `help`, and optional HTTP hooks. Built-in kinds live next to this file;
 * third-party kinds are the same shape, loaded from `buddies.kindsDir` (kinds/registry.ts).
 */

/** A chat or groupchat message with a body, as a kind sees it. */
export interface IncomingMessage {
  type: "chat" | "groupchat";
  /** The sender's full JID; for groupchat `room@muc/nick`. */
  from: string;
  /** Bare JID of who wrote it (chat), or of the room (groupchat). */
  sender: string;
  /** groupchat: the room's bare JID and the writer's nickname. */
  room?: string;
  nick?: string;
  body: string;
  /** The whole stanza, for kinds that read extensions. */
  stanza: Element;
}

export interface MessageContext {
  message: IncomingMessage;
  /** Answers where the message came from: to the sender (chat) or to the room (groupchat). */
  reply(body: string): Promise<void>;
}

export type Middleware = (ctx: MessageContext, next: () => Promise<void>) => Promise<void>;

/** A command's answer: text to reply with, or nothing when the handler replied (or stays silent) itself. */
export type CommandHandler = (
  args: string,
  ctx: MessageContext,
) => string | undefined | Promise<string | undefined>;

/** What an HTTP hook receives: the parsed JSON body and the query. */
export interface HookRequest {
  body: unknown;
  query: Record<string, string>;
}

/**
 * What it answers: a status (default 200) and a JSON body. For a 4xx, throw an HttpError (common/errors.ts);
 * the built-in kinds throw the entries of the buddies catalogue (../errors.ts), which are HttpErrors too.
 */
export interface HookResponse {
  status?: number;
  body?: unknown;
}

export type HookHandler = (req: HookRequest) => HookResponse | Promise<HookResponse>;

/** One service's health as the `service` kind reports it. */
export interface ServiceStatus {
  service: string;
  url: string;
  up: boolean;
  detail: string;
}

export interface BuddyIdentity {
  jid: string;
  domain: string;
  username: string;
  kind: string;
  /** MUC rooms the buddy is in (bare JIDs) and its nickname there. */
  rooms: readonly string[];
  nick: string;
}

/** What the runner hands a kind's factory. */
export interface KindContext<O = unknown> {
  buddy: BuddyIdentity;
  /** The definition's `options`, parsed by the kind's `options` schema. */
  options: O;
  /** This buddy's logger (its lines also go to the admin API's recent log). */
  log: Logger;
  /** Adds a middleware over incoming messages, after the ones added before it. */
  use(middleware: Middleware): void;
  /** Registers `name` (case-insensitive, first word of a message); `help` lists them all. */
  command(name: string, description: string, handler: CommandHandler): void;
  /** Sends a message; `type` defaults to groupchat for a room the buddy is in, chat otherwise. */
  send(to: string, body: string, type?: "chat" | "groupchat"): Promise<void>;
  /** Exposes `POST /hooks/<domain>/<username>/<name>` on the buddies service. */
  hook(name: string, handler: HookHandler): void;
  /** The health of the three services, for the `service` kind. */
  serviceStatus(): Promise<ServiceStatus[]>;
  /** The HTTP client kinds use to call out (tests pass their own). */
  fetch: typeof fetch;
  /**
   * Environment variables that options name (zabbix's `report.tokenEnv`), as the service's config read them
   * (common/config/secrets.ts): a kind never reads the environment itself.
   */
  secrets: Pick<Secrets, "env">;
}

/** What wiring a buddy may leave behind: a cleanup run when the buddy stops. */
export type KindCleanup = void | (() => void | Promise<void>);

/**
 * A kind: `kind` (its name in definitions), `summary` (a line for the admin API and `help`), `options` (the
 * schema of the definition's options, checked before the buddy starts) and `create(options, ctx)`, which
 * wires the buddy. `ctx.options` holds the same options, for kinds written before `create` took them.
 */
export type BuddyKind<S extends z.ZodType = z.ZodType> = PluginDefinition<
  S,
  KindContext<z.output<S>>,
  KindCleanup | Promise<KindCleanup>
>;

export const kindPoint: PluginPoint<KindCleanup> = {
  name: "buddy kind",
  docs: "docs/buddies.md",
};

/** Typed helper for kind modules: `export default defineKind({ kind, summary, options, create })`. */
export function defineKind<S extends z.ZodType>(kind: BuddyKind<S>): BuddyKind<S> {
  return kind;
}
