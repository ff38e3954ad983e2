import { isIP, type Socket } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Client, type Filter, FilterParser, ResultCodeError } from "ldapts";
import { BackendError } from "./http-authenticator.ts";

/**
 * The connections of one ldap authenticator to its directory (LDAP, RFC 4511), through ldapts, and the one
 * place where what the directory does becomes an outcome or a BackendError ("could not tell", never "no").
 *
 * - Users' passwords are bound on connections that carry binds only, one bind at a time (RFC 4511 4.2.1), and
 *   never a search: a bind changes whose connection it is, and a search on a connection left bound as a user
 *   (or half bound, after a timeout) would run with that user's rights. Up to `poolSize` of them are kept open
 *   for the next binds, a TLS handshake being most of what a bind costs (a check against a local slapd over
 *   StartTLS: 6.4 ms on a new connection each time, 1.5 ms on a kept one); when none is idle, one more is
 *   opened, and closed after if `poolSize` are idle already. One that failed otherwise than with a result code
 *   is closed.
 * - Searches (finding a user's DN, user_exists, group checks) share a small pool of connections bound once as
 *   the service account (anonymously without one), used in turn: LDAP answers several operations on one
 *   connection (each has its message ID), so a search never waits for a free connection.
 * - ldapts reconnects by itself when an operation finds its connection gone, without StartTLS and without the
 *   bind; an operation is therefore only started on a connection known to be open, and a pooled one that the
 *   directory closed is replaced (with one retry, so a restarted directory costs no failed login).
 */

export interface DirectorySettings {
  url: string;
  startTls: boolean;
  tls: { ca?: Buffer; rejectUnauthorized: boolean; servername?: string };
  /** Bound on each operation (StartTLS, bind, search). */
  timeoutMs: number;
  /** Bound on opening a connection (TCP, and TLS for ldaps://). */
  connectTimeoutMs: number;
  poolSize: number;
  /** Whom the pool binds as; anonymous without it. */
  service?: { dn: string; password: string };
}

export interface Search {
  base: string;
  scope: "base" | "one" | "sub";
  filter: string;
  /** The most entries wanted: 2 to tell one from several, 1 to tell none from some. */
  sizeLimit: number;
}

const INVALID_CREDENTIALS = 49;
const NO_SUCH_OBJECT = 32;

const isTimeout = (err: unknown) => /timed out|timeout/i.test((err as Error | undefined)?.message ?? "");
const resultCode = (err: unknown) => (err instanceof ResultCodeError ? err.code : undefined);

/** What went wrong, for the log and the error the auth core answers with; never a password. */
function backendError(err: unknown, s: DirectorySettings): BackendError {
  if (err instanceof BackendError) return err;
  if (err instanceof ResultCodeError) return new BackendError(`directory refused: ${err.message}`);
  const e = err as NodeJS.ErrnoException;
  const message = e instanceof Error ? e.message : String(err);
  if (/^Connection timeout/.test(message))
    return new BackendError(`directory did not accept a connection within ${s.connectTimeoutMs} ms`);
  if (/timed out/.test(message)) return new BackendError(`directory did not answer within ${s.timeoutMs} ms`);
  return new BackendError(`directory unreachable: ${message}${e.code ? ` (${e.code})` : ""}`);
}

/** TLS of ldaps:// and StartTLS: the certificate must name the URL's host, or `servername` when given. */
function tlsOptions(s: DirectorySettings): ConnectionOptions {
  const host = new URL(s.url).hostname.replace(/^\[(.*)\]$/, "$1");
  // SNI takes a host name only; an IP address is checked against the certificate's IP entries through `host`
  const servername = s.tls.servername ?? (isIP(host) ? undefined : host);
  return {
    host,
    rejectUnauthorized: s.tls.rejectUnauthorized,
    ...(s.tls.ca && { ca: s.tls.ca }),
    ...(servername && { servername }),
  };
}

/** Rejects with a BackendError after `ms`, calling `expire` (which cuts the connection) first. */
function bounded<T>(p: Promise<T>, ms: number, expire: () => void, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expire();
      reject(new BackendError(what));
    }, ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** One ldapts client and whether its connection can still carry an operation. */
class Connection {
  /** Set once the connection is open (and TLS and bound, as configured): from then on it must stay open. */
  opened = false;
  readonly client: Client;
  constructor(client: Client) {
    this.client = client;
  }

  /**
   * Whether an operation may start now. Before the first one ldapts connects by itself (as configured); after
   * it, a connection that is gone must not be reopened by ldapts (see above). ldapts keeps its socket private
   * and, after StartTLS, does not notice it closing: the socket is read to know.
   */
  usable(): boolean {
    if (!this.opened) return true;
    const socket = (this.client as unknown as { socket?: Socket }).socket;
    return this.client.isConnected && (socket === undefined || !socket.destroyed);
  }

  close(): Promise<void> {
    return this.client.unbind().catch(() => {});
  }
}

export class Directory {
  private readonly pool: ({ ready: Promise<Connection>; connection?: Connection } | undefined)[];
  private turn = 0;
  /** Idle connections for users' binds, and those binding now. */
  private readonly binders: Connection[] = [];
  private readonly binding = new Set<Connection>();
  private closed = false;

  private readonly s: DirectorySettings;

  constructor(settings: DirectorySettings) {
    this.s = settings;
    this.pool = new Array(settings.poolSize).fill(undefined);
  }

  /** A new connection, TLS established as configured (StartTLS here; ldaps:// at its first operation). */
  private async open(): Promise<Connection> {
    if (this.closed) throw new BackendError("the authenticator was closed (its domain was reloaded)");
    const secure = this.s.url.startsWith("ldaps:");
    const connection = new Connection(
      new Client({
        url: this.s.url,
        timeout: this.s.timeoutMs,
        connectTimeout: this.s.connectTimeoutMs,
        // only for ldaps://: ldapts takes any TLS option as "connect with TLS", StartTLS gets its own below
        ...(secure && { tlsOptions: tlsOptions(this.s) }),
      }),
    );
    if (this.s.startTls) {
      try {
        // ldapts bounds the connect and the StartTLS request, not the handshake after it
        await bounded(
          connection.client.startTLS(tlsOptions(this.s)),
          this.s.connectTimeoutMs + 2 * this.s.timeoutMs,
          () => void connection.close(),
          `directory did not complete StartTLS within ${this.s.connectTimeoutMs + 2 * this.s.timeoutMs} ms`,
        );
      } catch (err) {
        void connection.close();
        throw backendError(err, this.s);
      }
      connection.opened = true;
    }
    return connection;
  }

  /**
   * Whether `password` is `dn`'s, on an idle bind connection or a new one. An empty password is never sent: with
   * a DN it is an unauthenticated bind (RFC 4513 5.1.2), which many directories accept.
   */
  async bind(dn: string, password: string): Promise<"ok" | "invalid_credentials" | "no_such_object"> {
    if (password === "") return "invalid_credentials";
    let retried = false;
    for (;;) {
      const reused = this.idleBinder();
      const connection = reused ?? (await this.open());
      this.binding.add(connection);
      let answered = false;
      try {
        if (!connection.usable()) throw new BackendError("directory closed the connection");
        await connection.client.bind(dn, password);
        answered = true;
        return "ok";
      } catch (err) {
        const code = resultCode(err);
        answered = code !== undefined; // the directory answered: the connection is fine
        if (code === INVALID_CREDENTIALS) return "invalid_credentials";
        if (code === NO_SUCH_OBJECT) return "no_such_object";
        // an idle connection the directory closed (a restart, its idle timeout): once more, on a new one
        if (reused && !retried && !answered && !isTimeout(err)) {
          retried = true;
          continue;
        }
        throw backendError(err, this.s);
      } finally {
        this.binding.delete(connection);
        if (answered) connection.opened = true;
        this.giveBack(connection, answered);
      }
    }
  }

  /** An idle bind connection still open, or undefined. */
  private idleBinder(): Connection | undefined {
    for (let c = this.binders.pop(); c; c = this.binders.pop()) {
      if (c.usable()) return c;
      void c.close();
    }
    return undefined;
  }

  private giveBack(connection: Connection, healthy: boolean): void {
    if (healthy && !this.closed && this.binders.length < this.s.poolSize && connection.usable()) {
      this.binders.push(connection);
    } else {
      void connection.close();
    }
  }

  /** The DNs of the entries found (at most `sizeLimit`), or undefined when `base` does not exist. */
  async search(r: Search): Promise<string[] | undefined> {
    let filter: Filter;
    try {
      filter = FilterParser.parseString(r.filter);
    } catch (err) {
      throw new BackendError(`filter ${r.filter} cannot be parsed: ${(err as Error).message}`);
    }
    try {
      const found = await this.pooled((c) =>
        c.search(r.base, {
          scope: r.scope,
          filter,
          sizeLimit: r.sizeLimit,
          timeLimit: Math.ceil(this.s.timeoutMs / 1000),
          derefAliases: "never",
          attributes: ["1.1"], // no attributes: the DNs are all we read
        }),
      );
      return found.searchEntries.map((e) => e.dn);
    } catch (err) {
      if (resultCode(err) === NO_SUCH_OBJECT) return undefined;
      throw backendError(err, this.s);
    }
  }

  /** `op` on the pool's next connection; `op` must start its operation at once (no await before it). */
  private async pooled<T>(op: (client: Client) => Promise<T>): Promise<T> {
    const i = this.turn;
    this.turn = (i + 1) % this.pool.length;
    let retried = false;
    for (;;) {
      const { connection, fresh } = await this.slot(i);
      if (!connection.usable()) {
        this.drop(i, connection);
        if (fresh) throw new BackendError("directory closed the connection");
        continue;
      }
      try {
        return await op(connection.client);
      } catch (err) {
        if (resultCode(err) !== undefined) throw err; // an answer: the connection is fine
        this.drop(i, connection);
        // an idle connection the directory closed (a restart, its idle timeout): once more, on a new one
        if (fresh || retried || isTimeout(err)) throw err;
        retried = true;
      }
    }
  }

  private async slot(i: number): Promise<{ connection: Connection; fresh: boolean }> {
    const held = this.pool[i];
    if (held) return { connection: await held.ready, fresh: false };
    const entry: { ready: Promise<Connection>; connection?: Connection } = {
      ready: this.openBound().then(
        (c) => {
          entry.connection = c;
          return c;
        },
        (err: unknown) => {
          if (this.pool[i] === entry) this.pool[i] = undefined;
          throw err;
        },
      ),
    };
    this.pool[i] = entry;
    return { connection: await entry.ready, fresh: true };
  }

  /** A pool connection: open, bound as the service account, or anonymously (RFC 4513 5.1.1). */
  private async openBound(): Promise<Connection> {
    const connection = await this.open();
    try {
      if (!connection.usable()) throw new BackendError("directory closed the connection");
      await connection.client.bind(this.s.service?.dn ?? "", this.s.service?.password ?? "");
    } catch (err) {
      void connection.close();
      if (resultCode(err) === INVALID_CREDENTIALS && this.s.service) {
        throw new BackendError(
          `the directory refused the service account ${this.s.service.dn}: check bindDn and its password`,
        );
      }
      throw backendError(err, this.s);
    }
    connection.opened = true;
    if (this.closed) {
      void connection.close();
      throw new BackendError("the authenticator was closed (its domain was reloaded)");
    }
    return connection;
  }

  private drop(i: number, connection: Connection): void {
    if (this.pool[i]?.connection === connection) this.pool[i] = undefined;
    void connection.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    const pooled = this.pool.map((e) => e?.connection).filter((c): c is Connection => c !== undefined);
    this.pool.fill(undefined);
    const binders = this.binders.splice(0);
    await Promise.all([...pooled, ...binders, ...this.binding].map((c) => c.close()));
  }
}
