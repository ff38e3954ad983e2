import type { Pool } from "#common/db/pool.ts";
import type { Jid } from "#common/users/jid.ts";

/**
 * Chats a user muted (migrations/1764680000031_chat-mutes.sql): MongooseIM's chat-message hook pushes nothing
 * for them. `peer` is a bare JID; `until` null is until unmuted; an expired row is as good as none.
 */

export interface Mute {
  peer: string;
  until: Date | null;
}

export async function mute(pool: Pool, user: Jid, peer: string, minutes: number | undefined): Promise<Mute> {
  const r = await pool.query<Mute>(
    `INSERT INTO chat_mutes (domain, node, peer, until)
     VALUES ($1, $2, $3, CASE WHEN $4::integer IS NULL THEN NULL ELSE now() + make_interval(mins => $4::integer) END)
     ON CONFLICT (domain, node, peer) DO UPDATE SET until = EXCLUDED.until, created_at = now()
     RETURNING peer, until`,
    [user.domain, user.node, peer, minutes ?? null],
  );
  return r.rows[0] as Mute;
}

/** Answers whether the chat was muted (and not expired). */
export async function unmute(pool: Pool, user: Jid, peer: string): Promise<boolean> {
  const r = await pool.query<{ active: boolean }>(
    `DELETE FROM chat_mutes WHERE domain = $1 AND node = $2 AND peer = $3
     RETURNING until IS NULL OR until > now() AS active`,
    [user.domain, user.node, peer],
  );
  return r.rows[0]?.active === true;
}

export async function mutesOf(pool: Pool, user: Jid): Promise<Mute[]> {
  const r = await pool.query<Mute>(
    `SELECT peer, until FROM chat_mutes
     WHERE domain = $1 AND node = $2 AND (until IS NULL OR until > now()) ORDER BY peer`,
    [user.domain, user.node],
  );
  return r.rows;
}

/** Whether `user` muted the chat with `peer` (one primary-key read, at each message of the hook). */
export async function isMuted(pool: Pool, user: Jid, peer: string): Promise<boolean> {
  const r = await pool.query({
    name: "chat_mutes.is_muted",
    text: `SELECT 1 FROM chat_mutes
           WHERE domain = $1 AND node = $2 AND peer = $3 AND (until IS NULL OR until > now())`,
    values: [user.domain, user.node, peer],
  });
  return (r.rowCount ?? 0) > 0;
}
