import { type Component, component } from "@xmpp/component";
import type { Logger } from "#common/logger.ts";

/**
 * One component connection (XEP-0114, https://xmpp.org/extensions/xep-0114.html) to the XMPP server, kept
 * up while the process holds the component (keeper.ts): reconnects with backoff after the server goes away
 * or refuses us, instead of @xmpp/reconnect's fixed second. Stopping closes the stream and stays down.
 */

export interface ComponentSessionOptions {
  /** The server's component listener: `xmpp://host:port`. */
  server: string;
  component: string;
  password: string;
  log: Logger;
  /** Puts the app server's handlers on each new connection. */
  mount(entity: Component): void;
  /** Called with true once online, false when the connection is lost or stopped. */
  onOnline(online: boolean): void;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** Bound on connecting and the handshake: a server that takes the TCP connection and says nothing. */
const START_TIMEOUT_MS = 15_000;

/**
 * xmpp.js hands every chunk to its parser, which is gone once the stream closed: bytes arriving between the
 * server's `</stream:stream>` and the socket's close would throw from a socket listener, an uncaught exception
 * (xmppjs/xmpp.js#860). Dropped instead, as services/buddies/src/xmpp/connection.ts does for the buddies.
 */
function ignoreDataAfterClose(entity: object): void {
  const e = entity as { parser: unknown; _onData(data: Buffer): void };
  const onData = e._onData;
  e._onData = function (this: typeof e, data: Buffer) {
    if (this.parser) onData.call(this, data);
  };
}

export class ComponentSession {
  readonly #o: ComponentSessionOptions;
  #entity: Component | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delay = FIRST_RETRY_MS;
  #stopped = false;
  #online = false;

  constructor(o: ComponentSessionOptions) {
    this.#o = o;
  }

  get online(): boolean {
    return this.#online;
  }

  start(): void {
    void this.#connect();
  }

  #setOnline(online: boolean): void {
    if (this.#online === online) return;
    this.#online = online;
    this.#o.onOnline(online);
  }

  #retry(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#connect(), this.#delay);
    this.#delay = Math.min(this.#delay * 2, MAX_RETRY_MS);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const { log } = this.#o;
    const entity = component({
      service: this.#o.server,
      domain: this.#o.component,
      password: this.#o.password,
    });
    entity.reconnect.stop();
    ignoreDataAfterClose(entity);
    this.#o.mount(entity);
    this.#entity = entity;
    // a refused handshake, a stream error, a handler's failure: logged, and the connection's end decides
    entity.on("error", (err: Error & { condition?: string }) => {
      log.warn({ err: err.condition ?? err.message }, "component connection error");
    });
    entity.on("disconnect", () => {
      if (this.#entity !== entity) return;
      this.#entity = undefined;
      this.#setOnline(false);
      log.warn({ retryMs: this.#delay }, "component disconnected from the XMPP server: connecting again");
      this.#retry();
    });
    let timeout: NodeJS.Timeout | undefined;
    const started = entity.start();
    started.catch(() => {}); // after a timeout its rejection has nobody else to hear it
    try {
      await Promise.race([
        started,
        new Promise((_, reject) => {
          timeout = setTimeout(
            () => reject(new Error(`no handshake within ${START_TIMEOUT_MS} ms`)),
            START_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (err) {
      if (this.#entity !== entity) return;
      this.#entity = undefined;
      log.warn(
        { err: (err as { condition?: string }).condition ?? (err as Error).message, server: this.#o.server },
        "component could not connect",
      );
      await entity.stop().catch(() => {});
      this.#retry();
      return;
    } finally {
      clearTimeout(timeout);
    }
    if (this.#stopped) {
      await entity.stop().catch(() => {});
      return;
    }
    this.#delay = FIRST_RETRY_MS;
    this.#setOnline(true);
    log.info({ server: this.#o.server }, "component connected");
  }

  /** Closes the stream (the server routes nothing more to us) and stays down. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const entity = this.#entity;
    this.#entity = undefined;
    this.#setOnline(false);
    if (entity) await entity.stop().catch(() => {});
  }
}
