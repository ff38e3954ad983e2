import { createHash } from "node:crypto";
import type { PushConfig } from "#common/config/push-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { findToken, type Owner, type Registration, registerToken, type TokenRow } from "../token-store.ts";
import type { DeviceService } from "./nodes.ts";

/**
 * The devices registered through the app server, kept where every other device is (`push_tokens`,
 * token-store.ts), so badges, dead-token cleanup, the per-user cap and user deletion treat them alike. The
 * device id a client registers with (Conversations: its Android ID) is the install's proof of docs/push.md
 * "Tokens": stored as its SHA-256 (`device_secret_sha256`), it lets the device's token move between the
 * accounts of one install, finds the device's previous token when the provider gave it a new one, and is
 * what `unregister-push-*` names.
 */

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

export interface DeviceRegistration extends Owner {
  service: DeviceService;
  token: string;
  app: string;
  deviceId: string;
}

/** Registers the token as the REST API does (the same cap and move rule), then forgets the device's older tokens. */
export async function registerDevice(
  pool: Pool,
  push: Pick<PushConfig, "maxTokensPerUser" | "tokenMoveAfterDays">,
  d: DeviceRegistration,
): Promise<Registration> {
  const registration = await registerToken(
    pool,
    { domain: d.domain, node: d.node, service: d.service, token: d.token, app: d.app },
    push.maxTokensPerUser,
    { moveAfterDays: push.tokenMoveAfterDays, deviceSecret: d.deviceId },
  );
  if (registration.outcome !== "refused") {
    await pool.query(
      `DELETE FROM push_tokens WHERE domain = $1 AND node = $2 AND app = $3 AND service = $4
         AND device_secret_sha256 = $5 AND token <> $6`,
      [d.domain, d.node, d.app, d.service, sha256(d.deviceId), d.token],
    );
  }
  return registration;
}

/** Forgets the tokens the owner registered from that device for that service; how many. */
export async function unregisterDevice(
  pool: Pool,
  owner: Owner,
  service: DeviceService,
  deviceId: string,
): Promise<number> {
  const r = await pool.query(
    "DELETE FROM push_tokens WHERE domain = $1 AND node = $2 AND service = $3 AND device_secret_sha256 = $4",
    [owner.domain, owner.node, service, sha256(deviceId)],
  );
  return r.rowCount ?? 0;
}

/** The stored device a publish is for; undefined once unregistered or forgotten as dead. */
export function deviceRow(pool: Pool, service: DeviceService, token: string): Promise<TokenRow | undefined> {
  return findToken(pool, service, token);
}
