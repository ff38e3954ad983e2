import type { Pool } from "#common/db/pool.ts";

/**
 * Cluster ownership (docs/buddies.md "Cluster"): a buddy is run by the runner holding its lease in
 * `buddy_leases`. A runner renews its leases every tick; one that stops renewing (killed, cut off from the
 * database) loses them after `leaseSeconds`, and any live runner takes them. Each runner claims no more than
 * its share (buddies / live runners), so a cluster spreads them out.
 */

export interface OwnedLease {
  domain: string;
  username: string;
  stopped: boolean;
  restart_seq: number;
}

export interface LeaseStatus {
  domain: string;
  username: string;
  state: string;
  connectedSince: Date | null;
  lastError: string | null;
  messagesIn: number;
  messagesOut: number;
  reconnects: number;
}

export class Leases {
  readonly #pool: Pool;
  readonly #me: string;
  readonly #leaseSeconds: number;

  constructor(pool: Pool, me: string, leaseSeconds: number) {
    this.#pool = pool;
    this.#me = me;
    this.#leaseSeconds = leaseSeconds;
  }

  async heartbeat(info: { host: string; pid: number; adminUrl: string | null }): Promise<number> {
    await this.#pool.query(
      `INSERT INTO buddy_runners (id, host, pid, admin_url) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), admin_url = EXCLUDED.admin_url`,
      [this.#me, info.host, info.pid, info.adminUrl],
    );
    // runners gone for a day are history
    await this.#pool.query("DELETE FROM buddy_runners WHERE heartbeat_at < now() - interval '1 day'");
    const { rows } = await this.#pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM buddy_runners WHERE heartbeat_at > now() - make_interval(secs => $1)",
      [this.#leaseSeconds],
    );
    return Math.max(1, rows[0]?.n ?? 1);
  }

  /** Makes sure every defined buddy has a row, and drops the rows of buddies no longer defined. */
  async sync(defined: Array<{ domain: string; username: string }>): Promise<void> {
    const domains = defined.map((d) => d.domain);
    const usernames = defined.map((d) => d.username);
    await this.#pool.query(
      `INSERT INTO buddy_leases (domain, username) SELECT * FROM unnest($1::text[], $2::text[])
       ON CONFLICT DO NOTHING`,
      [domains, usernames],
    );
    await this.#pool.query(
      `DELETE FROM buddy_leases l WHERE NOT EXISTS (
         SELECT 1 FROM unnest($1::text[], $2::text[]) AS d(domain, username)
         WHERE d.domain = l.domain AND d.username = l.username)
       AND (owner IS NULL OR owner = $3 OR expires_at < now())`,
      [domains, usernames, this.#me],
    );
  }

  /** Extends this runner's leases; what it returns is what this runner still owns. */
  async renew(): Promise<OwnedLease[]> {
    const { rows } = await this.#pool.query<OwnedLease>(
      `UPDATE buddy_leases SET expires_at = now() + make_interval(secs => $2)
       WHERE owner = $1 AND expires_at > now() RETURNING domain, username, stopped, restart_seq`,
      [this.#me, this.#leaseSeconds],
    );
    return rows;
  }

  /** Takes up to `limit` free buddies (never owned, released, or whose owner stopped renewing). */
  async claim(limit: number, runnable: Array<{ domain: string; username: string }>): Promise<OwnedLease[]> {
    if (limit <= 0 || runnable.length === 0) return [];
    const { rows } = await this.#pool.query<OwnedLease>(
      `UPDATE buddy_leases l SET owner = $1, expires_at = now() + make_interval(secs => $2)
       FROM (SELECT b.domain, b.username FROM buddy_leases b
             JOIN unnest($4::text[], $5::text[]) AS d(domain, username)
               ON d.domain = b.domain AND d.username = b.username
             WHERE NOT b.stopped AND (b.owner IS NULL OR b.expires_at IS NULL OR b.expires_at < now())
             ORDER BY b.domain, b.username LIMIT $3 FOR UPDATE OF b SKIP LOCKED) free
       WHERE l.domain = free.domain AND l.username = free.username
       RETURNING l.domain, l.username, l.stopped, l.restart_seq`,
      [this.#me, this.#leaseSeconds, limit, runnable.map((r) => r.domain), runnable.map((r) => r.username)],
    );
    return rows;
  }

  /** Gives buddies back (stopped by an operator, over this runner's share, or at shutdown). */
  async release(which: Array<{ domain: string; username: string }>): Promise<void> {
    if (which.length === 0) return;
    await this.#pool.query(
      `UPDATE buddy_leases l SET owner = NULL, expires_at = NULL, state = 'stopped', state_since = now(),
         connected_since = NULL
       FROM unnest($2::text[], $3::text[]) AS d(domain, username)
       WHERE l.owner = $1 AND l.domain = d.domain AND l.username = d.username`,
      [this.#me, which.map((w) => w.domain), which.map((w) => w.username)],
    );
  }

  async releaseAll(): Promise<void> {
    await this.#pool.query(
      `UPDATE buddy_leases SET owner = NULL, expires_at = NULL, state = 'stopped', state_since = now(),
         connected_since = NULL WHERE owner = $1`,
      [this.#me],
    );
    await this.#pool.query("DELETE FROM buddy_runners WHERE id = $1", [this.#me]);
  }

  /** What this runner's buddies are doing, for every runner's admin API. */
  async report(statuses: LeaseStatus[]): Promise<void> {
    if (statuses.length === 0) return;
    const col = <K extends keyof LeaseStatus>(k: K) => statuses.map((s) => s[k]);
    await this.#pool.query(
      `UPDATE buddy_leases l SET
         state_since = CASE WHEN l.state = s.state THEN l.state_since ELSE now() END,
         state = s.state, connected_since = s.connected_since, last_error = s.last_error,
         messages_in = s.messages_in, messages_out = s.messages_out, reconnects = s.reconnects
       FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::bigint[], $8::bigint[], $9::int[])
         AS s(domain, username, state, connected_since, last_error, messages_in, messages_out, reconnects)
       WHERE l.owner = $1 AND l.domain = s.domain AND l.username = s.username`,
      [
        this.#me,
        col("domain"),
        col("username"),
        col("state"),
        col("connectedSince"),
        col("lastError"),
        col("messagesIn"),
        col("messagesOut"),
        col("reconnects"),
      ],
    );
  }
}
