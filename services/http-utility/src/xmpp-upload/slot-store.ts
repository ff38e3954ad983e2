import { createHash } from "node:crypto";
import type { Pool } from "#common/db/pool.ts";
import { assertKey } from "#common/media/keys.ts";
import type { Jid } from "#common/users/jid.ts";
import type { AttachmentRow } from "../attachments/store.ts";
import { errors } from "../errors.ts";

/**
 * XEP-0363 uploads as rows of `attachments` (kind 'upload', migrations/1764680000363_xmpp-uploads.sql). A slot's
 * row is named by the slot itself, so its GET URL finds it with one primary-key read and a second PUT to it
 * collides on the key (409). The row is reserved before the first byte is read, with the quota check (in the
 * domain's lock when a quota applies, so uploads at once cannot all slip under it), and completed (its
 * SHA-256) once the object is stored; a failed upload removes it again, so the client may retry its slot.
 */

/** The SHA-256 of a reserved row whose object is not complete yet: never the hash of a real file. */
const PENDING = "0".repeat(64);

export interface Slot {
  /** `s3` (MongooseIM) or `ext` (ejabberd, Prosody): the URL space the slot lives in */
  space: "s3" | "ext";
  domain: string;
  /** The slot's path below the domain, decoded: `<token>/<filename>`, `<user>/<random>/<filename>`. */
  path: string;
}

/** The stored name of a slot: 144 bits of its SHA-256 (the slot's URL is the capability anyway) and its extension. */
export function slotName(slot: Slot): string {
  const digest = createHash("sha256").update(`xep0363\0${slot.space}\0${slot.domain}\0${slot.path}`).digest();
  const name = `${digest.subarray(0, 18).toString("base64url")}.${extensionOf(slot.path)}`;
  assertKey(name);
  return name;
}

/** The filename's own extension when it is a plain one, else `bin`: nothing of the sender's reaches a path. */
export function extensionOf(path: string): string {
  const ext = /\.([A-Za-z0-9]{2,5})$/.exec(path)?.[1]?.toLowerCase();
  return ext ?? "bin";
}

export interface Reservation {
  name: string;
  /** `node` is '' when the protocol names no uploader. */
  owner: Jid;
  filename: string;
  contentType: string;
  size: number;
}

export interface Quotas {
  /** bytes the domain's XEP-0363 uploads may hold together; 0 = none */
  domainBytes: number;
  /** `media.quotaBytes`, for an uploader the protocol names; 0 = none */
  userBytes: number;
}

/**
 * One statement: whether the slot's row exists, what the quotas that apply already hold, and the row inserted
 * when neither refuses it (ON CONFLICT: a PUT to the same slot at the same moment inserts nothing). A sum is
 * computed only for a quota that applies ($7, $8 are 0 otherwise).
 */
const RESERVE = `
WITH used AS (
  SELECT
    EXISTS (SELECT 1 FROM attachments WHERE name = $1::text) AS taken,
    CASE WHEN $7::bigint > 0
      THEN (SELECT coalesce(sum(size), 0) FROM attachments WHERE domain = $2 AND kind = 'upload')
      ELSE 0 END AS domain_used,
    CASE WHEN $8::bigint > 0
      THEN (SELECT coalesce(sum(size), 0) FROM attachments WHERE domain = $2 AND node = $3)
      ELSE 0 END AS user_used
), inserted AS (
  INSERT INTO attachments (name, domain, node, kind, original_name, content_type, size, sha256, created_at)
  SELECT $1::text, $2::text, $3::text, 'upload', $4::text, $5::text, $6::bigint, decode('${PENDING}', 'hex'), date_trunc('milliseconds', now())
  FROM used
  WHERE NOT used.taken
    AND ($7::bigint = 0 OR used.domain_used + $6::bigint <= $7::bigint)
    AND ($8::bigint = 0 OR used.user_used + $6::bigint <= $8::bigint)
  ON CONFLICT (name) DO NOTHING
  RETURNING 1
)
SELECT taken, domain_used, user_used, (SELECT count(*) FROM inserted) AS inserted FROM used`;

/** RESERVE without a quota, its commit not waiting for the WAL flush (see `reserve`). */
const RESERVE_FREE = `${RESERVE}, set_config('synchronous_commit', 'off', true) AS unflushed`;

interface ReserveRow {
  taken: boolean;
  domain_used: string;
  user_used: string;
  inserted: string;
}

/**
 * Reserves the slot's row: 409 when it was used, 413 when a quota cannot take `size` more bytes. With a quota
 * to keep, the statement runs in the domain's lock, so uploads at once cannot all slip under the quota: each
 * upload of the domain waits for the statement and COMMIT of the one before it. Without one, the primary key
 * alone refuses a second reservation of a slot. Either way the COMMIT does not wait for its WAL flush (a disk
 * flush per upload less, beside the file's own): the 201 comes only after `complete`, whose synchronous
 * commit flushes this reservation with it, and a reservation lost in a crash is only a slot given back.
 */
export async function reserve(pool: Pool, r: Reservation, quotas: Quotas): Promise<void> {
  const userBytes = r.owner.node !== "" ? quotas.userBytes : 0;
  const values = [
    r.name,
    r.owner.domain,
    r.owner.node,
    r.filename,
    r.contentType,
    r.size,
    quotas.domainBytes,
    userBytes,
  ];
  const decide = (row: ReserveRow | undefined) => {
    if (!row || row.taken) throw errors.xmppSlotUsed();
    const domainUsed = Number(row.domain_used);
    if (quotas.domainBytes > 0 && domainUsed + r.size > quotas.domainBytes) {
      throw errors.xmppDomainQuota(r.owner.domain, quotas.domainBytes, domainUsed, r.size);
    }
    const userUsed = Number(row.user_used);
    if (userBytes > 0 && userUsed + r.size > userBytes)
      throw errors.quotaExceeded(userBytes, userUsed, r.size);
    // neither refused it, yet nothing was inserted: a PUT to the same slot got there first
    if (Number(row.inserted) !== 1) throw errors.xmppSlotUsed();
  };
  if (quotas.domainBytes === 0 && userBytes === 0) {
    // Nothing to sum under a lock: the primary key alone refuses a second reservation of the slot, and one
    // statement is its own transaction, `set_config(…, true)` turning its commit's WAL flush off
    decide(
      (await pool.query<ReserveRow>({ name: "xep0363-reserve-free", text: RESERVE_FREE, values })).rows[0],
    );
    return;
  }
  const client = await pool.connect();
  try {
    // one round trip for the three (a simple query without parameters may hold several statements); the
    // domain is a configured name, quoted as a literal
    await client.query(
      `BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_advisory_xact_lock(hashtextextended(${client.escapeLiteral(`xep0363:${r.owner.domain}`)}, 0))`,
    );
    decide((await client.query<ReserveRow>({ name: "xep0363-reserve", text: RESERVE, values })).rows[0]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Marks the reserved row complete: its object is stored and hashed. */
export async function complete(pool: Pool, name: string, sha256: string): Promise<void> {
  await pool.query("UPDATE attachments SET sha256 = decode($2, 'hex') WHERE name = $1 AND kind = 'upload'", [
    name,
    sha256,
  ]);
}

/** Gives a failed upload's slot back (its row only while still reserved). */
export async function release(pool: Pool, name: string): Promise<void> {
  await pool.query(
    "DELETE FROM attachments WHERE name = $1 AND kind = 'upload' AND sha256 = decode($2, 'hex')",
    [name, PENDING],
  );
}

/** A reservation still pending after this long was left by a process that died mid-upload: no upload lasts a day. */
export const ABANDONED_AFTER_MS = 86_400_000;

const ABANDONED = `FROM attachments WHERE kind = 'upload' AND sha256 = decode('${PENDING}', 'hex') AND created_at < $1`;

/**
 * Reservations a crash left pending (`sidecars media gc`): they keep their slot refused with 409 and count
 * against the quotas until then. Answers the names, whose files (a partial one, or none) the caller removes.
 */
export async function dropAbandoned(pool: Pool, now = Date.now()): Promise<string[]> {
  const r = await pool.query<{ name: string }>(`DELETE ${ABANDONED} RETURNING name`, [
    new Date(now - ABANDONED_AFTER_MS),
  ]);
  return r.rows.map((x) => x.name);
}

/** How many `dropAbandoned` would drop now. */
export async function countAbandoned(pool: Pool, now = Date.now()): Promise<number> {
  const r = await pool.query<{ n: string }>(`SELECT count(*) AS n ${ABANDONED}`, [
    new Date(now - ABANDONED_AFTER_MS),
  ]);
  return Number(r.rows[0]?.n ?? 0);
}

interface Row {
  name: string;
  domain: string;
  node: string;
  original_name: string | null;
  content_type: string;
  size: string;
  sha256: string;
  created_at: Date;
}

/** A completed upload by name, as the downloads read it; undefined while reserved or when there is none. */
export async function findUpload(pool: Pool, name: string): Promise<AttachmentRow | undefined> {
  const r = await pool.query<Row>({
    name: "xep0363-find",
    text: `SELECT name, domain, node, original_name, content_type, size, encode(sha256, 'hex') AS sha256, created_at
           FROM attachments WHERE name = $1 AND kind = 'upload'`,
    values: [name],
  });
  const row = r.rows[0];
  if (!row || row.sha256 === PENDING) return undefined;
  return {
    name: row.name,
    // 'upload' rows are served only here; the attachment routes' kinds never match them
    kind: "upload" as AttachmentRow["kind"],
    owner: { domain: row.domain, node: row.node },
    originalName: row.original_name ?? undefined,
    contentType: row.content_type,
    size: Number(row.size),
    sha256: row.sha256,
    created: row.created_at,
  };
}
