import { randomUUID } from "node:crypto";
import type { Pool } from "#common/db/pool.ts";
import type { Origin } from "./mongooseim/relay.ts";
import type { Owner } from "./token-store.ts";

/**
 * Notifications sent by `send` (`push_notifications`): whom each went to and where the replies and resolves
 * typed into it are relayed (its origin, none when sent without `callbackUrl` or `buddy`). Only its recipient
 * finds it again, so one user cannot act on another's notification by guessing its id.
 */

/** Records a notification to `recipient`; its new id (the data's `notificationId`). */
export async function recordNotification(
  pool: Pool,
  recipient: Owner,
  origin: Origin | null,
): Promise<string> {
  const id = randomUUID();
  await pool.query("INSERT INTO push_notifications (id, domain, node, origin) VALUES ($1, $2, $3, $4)", [
    id,
    recipient.domain,
    recipient.node,
    origin,
  ]);
  return id;
}

/** The notification `id` sent to `recipient`, with its origin (null: none); undefined when they had no such. */
export async function findNotification(
  pool: Pool,
  id: string,
  recipient: Owner,
): Promise<{ origin: Origin | null } | undefined> {
  const { rows } = await pool.query<{ origin: Origin | null }>(
    "SELECT origin FROM push_notifications WHERE id = $1 AND domain = $2 AND node = $3",
    [id, recipient.domain, recipient.node],
  );
  return rows[0];
}
