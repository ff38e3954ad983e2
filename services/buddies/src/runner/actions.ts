import type { Pool } from "#common/db/pool.ts";

/**
 * What an operator asks of a buddy, from the admin API or `sidecars buddies`: written to its lease row,
 * where the owning runner (whichever it is) reads it, told at once through NOTIFY.
 */

export const BUDDY_ACTIONS = ["restart", "stop", "start"] as const;
export type BuddyAction = (typeof BUDDY_ACTIONS)[number];

const SET: Record<BuddyAction, string> = {
  restart: "restart_seq = restart_seq + 1, stopped = false",
  stop: "stopped = true",
  start: "stopped = false",
};

export async function requestAction(
  pool: Pool,
  domain: string,
  username: string,
  action: BuddyAction,
): Promise<void> {
  await pool.query("INSERT INTO buddy_leases (domain, username) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
    domain,
    username,
  ]);
  await pool.query(`UPDATE buddy_leases SET ${SET[action]} WHERE domain = $1 AND username = $2`, [
    domain,
    username,
  ]);
  await pool.query("NOTIFY buddies_changed");
}
