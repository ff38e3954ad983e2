import type { Pool } from "#common/db/pool.ts";
import { inTransaction } from "#common/db/transaction.ts";
import type { Jid } from "#common/users/jid.ts";
import { errors } from "../errors.ts";

/** The attachments and avatars tables (migrations/1763800000004_attachments.sql). */

export type AttachmentKind = "picture" | "avatar" | "video";

/** One stored object: an original (no parent) or one of its variants (a thumbnail, a poster). */
export interface StoredFile {
  name: string;
  contentType: string;
  size: number;
  /** hex */
  sha256: string;
  width?: number | undefined;
  height?: number | undefined;
}

export interface NewAttachment extends StoredFile {
  originalName: string;
  variants: Array<StoredFile & { variant: string }>;
}

export interface AttachmentRow extends StoredFile {
  kind: AttachmentKind;
  owner: Jid;
  parent?: string | undefined;
  variant?: string | undefined;
  originalName?: string | undefined;
  created: Date;
  /**
   * An imported legacy file (legacy-import.ts): its path under `media.legacyRoot`, where its bytes are read
   * instead of the storage backend; `created` is the file's mtime.
   */
  legacyPath?: string | undefined;
}

const columns = (t = "") =>
  `${t}name, ${t}parent, ${t}variant, ${t}domain, ${t}node, ${t}kind, ${t}original_name, ${t}content_type, ${t}size, encode(${t}sha256, 'hex') AS sha256, ${t}width, ${t}height, ${t}created_at, ${t}legacy_path`;
const COLUMNS = columns();

interface Row {
  name: string;
  parent: string | null;
  variant: string | null;
  domain: string;
  node: string;
  kind: AttachmentKind;
  original_name: string | null;
  content_type: string;
  size: string;
  sha256: string;
  width: number | null;
  height: number | null;
  created_at: Date;
  legacy_path: string | null;
}

const fromRow = (r: Row): AttachmentRow => ({
  name: r.name,
  parent: r.parent ?? undefined,
  variant: r.variant ?? undefined,
  owner: { node: r.node, domain: r.domain },
  kind: r.kind,
  originalName: r.original_name ?? undefined,
  contentType: r.content_type,
  size: Number(r.size),
  sha256: r.sha256,
  width: r.width ?? undefined,
  height: r.height ?? undefined,
  created: r.created_at,
  legacyPath: r.legacy_path ?? undefined,
});

const bytesOf = (a: NewAttachment) => a.size + a.variants.reduce((n, v) => n + v.size, 0);

/**
 * Records stored attachments of one owner in one transaction, under a per-owner lock so that two uploads
 * at once cannot both slip under the quota. For an avatar, the owner's previous avatar is deleted in the
 * same transaction: the answer lists the names whose files the caller now removes from storage. An imported
 * legacy avatar is only unlinked: its row and file stay (the legacy root is read-only to us, and a rerun of the
 * import would register it again), and its URL keeps answering.
 */
export async function recordAttachments(
  pool: Pool,
  owner: Jid,
  kind: AttachmentKind,
  attachments: NewAttachment[],
  quotaBytes: number,
): Promise<{ replaced: string[] }> {
  return inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
      `media:${owner.node}@${owner.domain}`,
    ]);
    let replaced: string[] = [];
    if (kind === "avatar") {
      const old = await client.query<{ name: string }>(
        `WITH current AS (
           SELECT v.name FROM avatars v JOIN attachments a ON a.name = v.name
           WHERE v.domain = $1 AND v.node = $2 AND a.legacy_path IS NULL
         )
         DELETE FROM attachments WHERE name IN (SELECT name FROM current) OR parent IN (SELECT name FROM current)
         RETURNING name`,
        [owner.domain, owner.node],
      );
      replaced = old.rows.map((r) => r.name);
    }
    if (quotaBytes > 0) {
      const used = Number(
        (
          await client.query<{ used: string }>(
            "SELECT coalesce(sum(size), 0) AS used FROM attachments WHERE domain = $1 AND node = $2",
            [owner.domain, owner.node],
          )
        ).rows[0]?.used ?? 0,
      );
      const adding = attachments.reduce((n, a) => n + bytesOf(a), 0);
      if (used + adding > quotaBytes) throw errors.quotaExceeded(quotaBytes, used, adding);
    }
    const rows = attachments.flatMap((a) => [
      { ...a, parent: null, variant: null, originalName: a.originalName },
      ...a.variants.map((v) => ({ ...v, parent: a.name, originalName: null })),
    ]);
    // created_at in whole milliseconds: the video list's cursor carries it as a JS Date, and a cursor cut
    // from microseconds would skip the rows of the same upload (one transaction, one now()) after it
    await client.query(
      `INSERT INTO attachments (name, parent, variant, domain, node, kind, original_name, content_type, size, sha256, width, height, created_at)
       SELECT r.name, r.parent, r.variant, $1, $2, $3, r.original_name, r.content_type, r.size, decode(r.sha256, 'hex'), r.width, r.height,
         date_trunc('milliseconds', now())
       FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::int[], $12::int[])
         AS r(name, parent, variant, original_name, content_type, size, sha256, width, height)`,
      [
        owner.domain,
        owner.node,
        kind,
        rows.map((r) => r.name),
        rows.map((r) => r.parent),
        rows.map((r) => r.variant),
        rows.map((r) => r.originalName),
        rows.map((r) => r.contentType),
        rows.map((r) => r.size),
        rows.map((r) => r.sha256),
        rows.map((r) => r.width ?? null),
        rows.map((r) => r.height ?? null),
      ],
    );
    if (kind === "avatar" && attachments[0]) {
      await client.query(
        `INSERT INTO avatars (domain, node, name) VALUES ($1, $2, $3)
         ON CONFLICT (domain, node) DO UPDATE SET name = EXCLUDED.name, updated_at = now()`,
        [owner.domain, owner.node, attachments[0].name],
      );
    }
    return { replaced };
  });
}

/** Bytes stored by one owner, all kinds and variants together. */
export async function usedBytes(pool: Pool, owner: Jid): Promise<number> {
  const r = await pool.query<{ used: string }>(
    "SELECT coalesce(sum(size), 0) AS used FROM attachments WHERE domain = $1 AND node = $2",
    [owner.domain, owner.node],
  );
  return Number(r.rows[0]?.used ?? 0);
}

export async function findAttachment(pool: Pool, name: string): Promise<AttachmentRow | undefined> {
  const r = await pool.query<Row>({
    name: "attachments-find",
    text: `SELECT ${COLUMNS} FROM attachments WHERE name = $1`,
    values: [name],
  });
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/** An original's variant (`?size=128`, a poster), or undefined. */
export async function findVariant(
  pool: Pool,
  parent: string,
  variant: string,
): Promise<AttachmentRow | undefined> {
  const r = await pool.query<Row>(`SELECT ${COLUMNS} FROM attachments WHERE parent = $1 AND variant = $2`, [
    parent,
    variant,
  ]);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/** All variants of the given originals, for the upload answers and lists. */
export async function variantsOf(pool: Pool, parents: string[]): Promise<AttachmentRow[]> {
  if (parents.length === 0) return [];
  const r = await pool.query<Row>(`SELECT ${COLUMNS} FROM attachments WHERE parent = ANY($1::text[])`, [
    parents,
  ]);
  return r.rows.map(fromRow);
}

/** The current avatar of `node` (in `domain`, or in any domain when it names one account only). */
export async function findAvatar(pool: Pool, node: string, domains: string[]): Promise<AttachmentRow[]> {
  const r = await pool.query<Row>(
    `SELECT ${columns("a.")}
     FROM avatars v JOIN attachments a ON a.name = v.name
     WHERE v.node = $1 AND v.domain = ANY($2::text[])`,
    [node, domains],
  );
  return r.rows.map(fromRow);
}

/** One owner's originals of a kind, newest first, in pages: `before` is the last page's cursor. */
export async function listAttachments(
  pool: Pool,
  owner: Jid,
  kind: AttachmentKind,
  page: { limit: number; before?: { created: Date; name: string } | undefined },
): Promise<AttachmentRow[]> {
  const r = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM attachments
     WHERE domain = $1 AND node = $2 AND kind = $3 AND parent IS NULL
       AND ($4::timestamptz IS NULL OR (created_at, name) < ($4::timestamptz, $5::text))
     ORDER BY created_at DESC, name DESC
     LIMIT $6`,
    [owner.domain, owner.node, kind, page.before?.created ?? null, page.before?.name ?? null, page.limit],
  );
  return r.rows.map(fromRow);
}

/** One batch of `deleteOlderThan` (also EXPLAINed by test/bench/scale-plans.ts): $1 the cutoff, $2 the batch size */
export const DELETE_OLDER_THAN_SQL = `WITH old AS (
       SELECT a.ctid AS row, a.name FROM attachments a
       WHERE a.parent IS NULL AND a.legacy_path IS NULL AND a.created_at < $1
         AND NOT EXISTS (SELECT 1 FROM avatars v WHERE v.name = a.name)
       ORDER BY a.created_at
       LIMIT $2
       -- two gc runs at once (a cron job on two machines) take different rows instead of waiting, and neither
       -- sees an empty batch before the other is done
       FOR UPDATE SKIP LOCKED
     ), originals AS (
       -- the rows just found and locked, by their place (a TID scan); their variants through the unique
       -- (parent, variant). One DELETE with name IN … OR parent IN … read the whole table
       -- (docs/database.md "Query plans at 1,000,000 rows")
       DELETE FROM attachments WHERE ctid = ANY (ARRAY(SELECT row FROM old)) RETURNING name, parent
     ), variants AS (
       DELETE FROM attachments WHERE parent IN (SELECT name FROM old) RETURNING name, parent
     )
     SELECT name, parent FROM originals UNION ALL SELECT name, parent FROM variants`;

/**
 * Deletes up to `limit` originals created before `cutoff` (with their variants), answering every deleted
 * name so the caller removes the files. Avatars in use are kept: they are a user's face, not a message.
 * Imported legacy files are never deleted by age: their dates are the legacy files' own (years old), and
 * their bytes lie under the read-only legacy root (migrations/1764680000030_legacy-media.sql).
 */
export async function deleteOlderThan(
  pool: Pool,
  cutoff: Date,
  limit: number,
): Promise<{ originals: number; names: string[] }> {
  const r = await pool.query<{ name: string; parent: string | null }>(DELETE_OLDER_THAN_SQL, [cutoff, limit]);
  return { originals: r.rows.filter((x) => x.parent === null).length, names: r.rows.map((x) => x.name) };
}

/** Originals to delete before `cutoff`, counted (gc's progress bar total). */
export async function countOlderThan(pool: Pool, cutoff: Date): Promise<number> {
  const r = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM attachments a WHERE a.parent IS NULL AND a.legacy_path IS NULL AND a.created_at < $1
       AND NOT EXISTS (SELECT 1 FROM avatars v WHERE v.name = a.name)`,
    [cutoff],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/** Which of `names` have rows (gc's orphan sweep asks in batches). */
export async function knownNames(pool: Pool, names: string[]): Promise<Set<string>> {
  const r = await pool.query<{ name: string }>("SELECT name FROM attachments WHERE name = ANY($1::text[])", [
    names,
  ]);
  return new Set(r.rows.map((x) => x.name));
}
