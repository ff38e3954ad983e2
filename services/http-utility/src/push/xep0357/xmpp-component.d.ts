// Types for @xmpp/component 0.13 (the newest on npm; xmpp.js published no 0.14 of it), which ships none: what
// component-session.ts and app-server.ts use. Its elements are ltx elements, as @xmpp/xml's types describe.
declare module "@xmpp/component" {
  import type { EventEmitter } from "node:events";
  import type { Element } from "@xmpp/xml";

  export type { Element };

  /** The element factory of the component's own @xmpp/xml copy: replies must be made with it (iq/callee checks instanceof). */
  export const xml: typeof import("@xmpp/xml").default;

  export interface IncomingContext {
    stanza: Element;
    /** The iq's one child. */
    element: Element;
    name: string;
    type: string;
    id: string;
    from: { local: string; domain: string; resource: string; bare(): { toString(): string } } | null;
  }

  type Handler = (
    ctx: IncomingContext,
  ) => Element | boolean | undefined | Promise<Element | boolean | undefined>;

  export interface Component extends EventEmitter {
    status: string;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(element: Element): Promise<void>;
    reconnect: { stop(): void };
    iqCallee: {
      get(ns: string, name: string, handler: Handler): void;
      set(ns: string, name: string, handler: Handler): void;
    };
  }

  export function component(options: { service: string; domain: string; password: string }): Component;
}
