import { createHash } from "node:crypto";
import type { PoolClient } from "pg";
import type { Listener } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";

/**
 * Which process of the cluster holds each component (docs/xmpp-clients.md "Where the component runs"). An
 * XMPP server takes one connection per component name, and http-utility runs as many processes as cores on
 * as many machines as wanted: each component belongs to the process holding its PostgreSQL advisory lock
 * (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS), a session lock on one
 * connection the keeper keeps. A process that dies closes that connection and frees its locks at once;
 * every other process tries the free ones every `checkMs` and the first to get one connects. A process that
 * stops (a reload, a shutdown) gives its locks back and says so on `CHANNEL`, and the others try at once.
 *
 * The keeper checks its connection each tick: when it fails or does not answer within `checkMs`, the
 * components here are disconnected before anything else, since the database may already have given their
 * locks to another process. So a component is never served by two processes longer than one tick.
 */

export interface Held {
  stop(): Promise<void>;
}

export interface KeptComponent {
  /** The component's JID: what its lock is named after. */
  component: string;
  /** Starts serving it here (this process got its lock). */
  start(): Held;
}

export interface KeeperOptions {
  pool: Pool;
  /** The process's LISTEN connection: a stopping process's NOTIFY makes the others try at once. */
  listener?: Listener;
  log: Logger;
  checkMs: number;
  components: readonly KeptComponent[];
}

/** NOTIFYed by a keeper that gave its components back. */
export const CHANNEL = "xep0357_components_released";

/** The advisory lock of a component: 64 bits of SHA-256, as a bigint's decimal text. */
export function lockKey(component: string): string {
  return createHash("sha256").update(`sidecars xep0357 ${component}`).digest().readBigInt64BE(0).toString();
}

/** A promise bounded by `ms`; the bound's timer never keeps the process up. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

export class ComponentKeeper {
  readonly #o: KeeperOptions;
  readonly #held = new Map<string, Held>();
  #client: PoolClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #tries = 0;
  #stopped = false;

  constructor(o: KeeperOptions) {
    this.#o = o;
  }

  /** Ticks done so far (each tried the free components). */
  get tries(): number {
    return this.#tries;
  }

  /** The components this process holds right now. */
  get held(): string[] {
    return [...this.#held.keys()];
  }

  start(): void {
    this.#o.listener?.subscribe([CHANNEL], {
      onMessage: () => this.#poke(),
      onReconnect: () => this.#poke(),
    });
    this.#schedule(0);
  }

  /** A tick now (after the one in progress): components were given back. */
  #poke(): void {
    if (this.#stopped) return;
    if (this.#ticking) this.#again = true;
    else this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        this.#tries++;
        this.#schedule(this.#again ? 0 : this.#o.checkMs);
        this.#again = false;
      });
    }, ms);
  }

  async #tick(): Promise<void> {
    const { pool, log, checkMs } = this.#o;
    try {
      if (!this.#client) {
        const client = await pool.connect();
        // a connection lost between ticks: the components go at once, their locks may be someone else's
        client.on("error", (err) => {
          if (this.#client !== client) return;
          log.warn({ err: err.message }, "the connection holding the XEP-0357 component locks failed");
          void this.#drop();
        });
        this.#client = client;
      }
      const client = this.#client;
      // Math.max: a tick's bound never shorter than a loaded database needs for `SELECT 1`
      const bound = Math.max(checkMs, 2000);
      await within(client.query("SELECT 1"), bound, "lock connection check");
      for (const c of this.#o.components) {
        if (this.#stopped || this.#held.has(c.component)) continue;
        const { rows } = await within(
          client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS ok", [
            lockKey(c.component),
          ]),
          bound,
          "advisory lock",
        );
        if (rows[0]?.ok !== true) continue;
        // the connection failed meanwhile (#drop): the lock went with it
        if (this.#client !== client) return;
        log.info({ component: c.component }, "this process holds the XEP-0357 component");
        this.#held.set(c.component, c.start());
      }
    } catch (err) {
      if (this.#stopped) return;
      log.warn(
        { err: (err as Error).message },
        "XEP-0357 component locks unavailable: components stopped here",
      );
      await this.#drop();
    }
  }

  /** Stops every component held here and discards the connection (closing it frees the locks). */
  async #drop(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(held.map((h) => h.stop().catch(() => {})));
    client?.release(true);
  }

  /** Shutdown: components stopped first, then the locks given back for another process to take now. */
  async stop(): Promise<void> {
    this.#stopped = true;
    // the subscription stays (a stopped keeper ignores it) and goes with the process's listener, which closes
    // right after the app at shutdown: its UNLISTEN would overlap the other subscriptions' closing UNLISTENs
    // on the listener's one connection (pg warns of overlapping queries)
    clearTimeout(this.#timer);
    await this.#ticking;
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(held.map((h) => h.stop().catch(() => {})));
    const client = this.#client;
    this.#client = undefined;
    if (!client) return;
    try {
      await within(client.query("SELECT pg_advisory_unlock_all()"), 2000, "unlock");
      if (held.length > 0) await within(client.query(`NOTIFY ${CHANNEL}`), 2000, "notify");
      client.release();
    } catch {
      client.release(true);
    }
  }
}
