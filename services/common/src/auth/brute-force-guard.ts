import type { Config } from "../config/schema.ts";
import type { Pool } from "../db/pool.ts";
import type { Logger } from "../logger.ts";
import type { Jid } from "../users/jid.ts";

export const LOCKOUT_CHANNEL = "auth_lockout";

type GuardConfig = Config["services"]["auth"]["guard"];

/**
 * After `maxFailures` failed checks of one JID within `windowSeconds`, every check of that JID fails at once
 * for `lockSeconds`. Counters live in PostgreSQL (auth_failures) so a pm2 cluster cannot multiply the
 * attempts; lockouts are announced with NOTIFY and kept in memory, so the hot path asks no database.
 */
export class BruteForceGuard {
  private readonly locked = new Map<string, number>();
  private readonly pool: Pool;
  private readonly config: GuardConfig;
  private readonly log: Logger;

  constructor(pool: Pool, config: GuardConfig, log: Logger) {
    this.pool = pool;
    this.config = config;
    this.log = log;
  }

  private key(jid: Jid): string {
    return `${jid.domain}\u0000${jid.node}`;
  }

  isLocked(jid: Jid, now = Date.now()): boolean {
    const until = this.locked.get(this.key(jid));
    if (until === undefined) return false;
    if (until > now) return true;
    this.locked.delete(this.key(jid));
    return false;
  }

  /** The lockouts in force, from the database (at start and after the notification stream was broken). */
  async load(): Promise<void> {
    const r = await this.pool.query<{ domain: string; node: string; until: string }>(
      "SELECT domain, node, (extract(epoch FROM locked_until) * 1000)::bigint AS until FROM auth_failures WHERE locked_until > now()",
    );
    this.locked.clear();
    for (const row of r.rows) this.locked.set(this.key(row), Number(row.until));
  }

  /** A NOTIFY from any process: `["domain","node",untilMs]`. */
  onNotification(payload: string): void {
    try {
      const [domain, node, until] = JSON.parse(payload) as [string, string, number];
      this.locked.set(this.key({ domain, node }), until);
    } catch {
      this.log.warn("malformed lockout notification ignored");
    }
  }

  async recordFailure(jid: Jid): Promise<void> {
    const { maxFailures, windowSeconds, lockSeconds } = this.config;
    const r = await this.pool.query<{ failures: number; locked: boolean; until: string | null }>(
      `INSERT INTO auth_failures AS f (domain, node, failures, window_started_at) VALUES ($1, $2, 1, now())
       ON CONFLICT (domain, node) DO UPDATE SET
         failures = CASE WHEN f.window_started_at < now() - make_interval(secs => $3) THEN 1 ELSE f.failures + 1 END,
         window_started_at = CASE WHEN f.window_started_at < now() - make_interval(secs => $3) THEN now() ELSE f.window_started_at END
       RETURNING failures, coalesce(locked_until > now(), false) AS locked, NULL::text AS until`,
      [jid.domain, jid.node, windowSeconds],
    );
    const row = r.rows[0];
    if (!row || row.locked || row.failures < maxFailures) return;
    const lock = await this.pool.query<{ until: string }>(
      `UPDATE auth_failures SET locked_until = now() + make_interval(secs => $3), failures = 0, window_started_at = now()
        WHERE domain = $1 AND node = $2 AND (locked_until IS NULL OR locked_until <= now())
        RETURNING (extract(epoch FROM locked_until) * 1000)::bigint AS until`,
      [jid.domain, jid.node, lockSeconds],
    );
    const until = lock.rows[0]?.until;
    if (until === undefined) return; // another process locked it first
    this.locked.set(this.key(jid), Number(until));
    await this.pool.query("SELECT pg_notify($1, $2)", [
      LOCKOUT_CHANNEL,
      JSON.stringify([jid.domain, jid.node, Number(until)]),
    ]);
    this.log.warn(
      { domain: jid.domain, node: jid.node, failures: maxFailures, windowSeconds, lockSeconds },
      "too many failed password checks: account locked",
    );
  }

  /** Old counters go; run now and then. */
  async prune(): Promise<void> {
    await this.pool.query(
      `DELETE FROM auth_failures WHERE (locked_until IS NULL OR locked_until < now())
         AND window_started_at < now() - make_interval(secs => $1)`,
      [this.config.windowSeconds],
    );
  }
}
