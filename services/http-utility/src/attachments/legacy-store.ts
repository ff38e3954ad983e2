import type { Pool } from "#common/db/pool.ts";
import { inTransaction } from "#common/db/transaction.ts";
import type { AttachmentKind, AttachmentRow, StoredFile } from "./store.ts";

/**
 * The rows of imported legacy files (legacy-import.ts, migrations/1764680000030_legacy-media.sql). Their owner
 * is the import's domain and the empty node, which no account can have (common/src/users/jid.ts refuses an
 * empty user part): no user's quota, upload budget or video list counts them.
 */

/** The node of imported files: no known uploader. */
export const LEGACY_OWNER_NODE = "";

/** What a legacy file was recorded as, to tell an unchanged file from a changed one or a name in use. */
export interface RecordedName {
  name: string;
  legacyPath: string | undefined;
  size: number;
  created: Date;
}

export async function recordedNames(pool: Pool, names: string[]): Promise<Map<string, RecordedName>> {
  if (names.length === 0) return new Map();
  const r = await pool.query<{ name: string; legacy_path: string | null; size: string; created_at: Date }>(
    "SELECT name, legacy_path, size, created_at FROM attachments WHERE name = ANY($1::text[])",
    [names],
  );
  return new Map(
    r.rows.map((x) => [
      x.name,
      { name: x.name, legacyPath: x.legacy_path ?? undefined, size: Number(x.size), created: x.created_at },
    ]),
  );
}

export interface LegacyFile extends StoredFile {
  kind: AttachmentKind;
  legacyPath: string;
  /** the file's mtime, in whole milliseconds */
  created: Date;
}

/**
 * Inserts the rows of new legacy files in one statement; a name someone recorded meanwhile (another import
 * running at once) is left as it is. Answers the names inserted.
 */
export async function insertLegacyFiles(pool: Pool, domain: string, files: LegacyFile[]): Promise<string[]> {
  if (files.length === 0) return [];
  const r = await pool.query<{ name: string }>(
    `INSERT INTO attachments (name, parent, variant, domain, node, kind, original_name, content_type, size, sha256, width, height, created_at, legacy_path)
     SELECT f.name, NULL, NULL, $1, $2, f.kind, f.name, f.content_type, f.size, decode(f.sha256, 'hex'), f.width, f.height, f.created_at, f.legacy_path
     FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::int[], $9::int[], $10::timestamptz[], $11::text[])
       AS f(name, kind, content_type, size, sha256, width, height, created_at, legacy_path)
     ON CONFLICT (name) DO NOTHING
     RETURNING name`,
    [
      domain,
      LEGACY_OWNER_NODE,
      files.map((f) => f.name),
      files.map((f) => f.kind),
      files.map((f) => f.contentType),
      files.map((f) => f.size),
      files.map((f) => f.sha256),
      files.map((f) => f.width ?? null),
      files.map((f) => f.height ?? null),
      files.map((f) => f.created),
      files.map((f) => f.legacyPath),
    ],
  );
  return r.rows.map((x) => x.name);
}

/**
 * A legacy file changed on disk since it was imported: its row takes the new content, and the thumbnails made
 * from the old content go (answered, so the caller removes their files).
 */
export async function updateLegacyFile(pool: Pool, file: LegacyFile): Promise<string[]> {
  return inTransaction(pool, async (client) => {
    const updated = await client.query(
      `UPDATE attachments SET content_type = $3, size = $4, sha256 = decode($5, 'hex'), width = $6, height = $7, created_at = $8
       WHERE name = $1 AND legacy_path = $2`,
      [
        file.name,
        file.legacyPath,
        file.contentType,
        file.size,
        file.sha256,
        file.width ?? null,
        file.height ?? null,
        file.created,
      ],
    );
    if (updated.rowCount === 0) return [];
    const gone = await client.query<{ name: string }>(
      "DELETE FROM attachments WHERE parent = $1 RETURNING name",
      [file.name],
    );
    return gone.rows.map((x) => x.name);
  });
}

/**
 * Makes imported avatars named by their users (`<node>.<ext>`) those users' avatars: only for accounts of
 * `web_users` in `domain` that have no avatar yet, so a rerun never replaces one a user uploaded since.
 * With `dryRun`, answers who would get one and changes nothing. Answers the nodes.
 */
export async function linkLegacyAvatars(
  pool: Pool,
  domain: string,
  links: Array<{ node: string; name: string }>,
  dryRun = false,
): Promise<string[]> {
  if (links.length === 0) return [];
  const wanted = `SELECT DISTINCT ON (l.node) l.node, l.name
     FROM unnest($2::text[], $3::text[]) AS l(node, name)
     WHERE EXISTS (SELECT 1 FROM web_users w WHERE w.domain = $1 AND w.node = l.node)
       AND NOT EXISTS (SELECT 1 FROM avatars v WHERE v.domain = $1 AND v.node = l.node)
     ORDER BY l.node, l.name`;
  const params = [domain, links.map((l) => l.node), links.map((l) => l.name)];
  const r = await pool.query<{ node: string }>(
    dryRun
      ? wanted
      : `INSERT INTO avatars (domain, node, name) SELECT $1, w.node, w.name FROM (${wanted}) w
         ON CONFLICT (domain, node) DO NOTHING RETURNING node`,
    params,
  );
  return r.rows.map((x) => x.node);
}

/**
 * Records the thumbnails made from an imported file on its first request. Two processes may make them at
 * once: under a lock on the original, the first to record wins, and `false` tells the other to remove the
 * files it stored.
 */
export async function recordLegacyVariants(
  pool: Pool,
  parent: AttachmentRow,
  variants: Array<StoredFile & { variant: string }>,
): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
      `media-variants:${parent.name}`,
    ]);
    const there = await client.query("SELECT 1 FROM attachments WHERE parent = $1 LIMIT 1", [parent.name]);
    if ((there.rowCount ?? 0) > 0) return false;
    await client.query(
      `INSERT INTO attachments (name, parent, variant, domain, node, kind, content_type, size, sha256, width, height, created_at)
       SELECT v.name, $1, v.variant, $2, $3, $4, v.content_type, v.size, decode(v.sha256, 'hex'), v.width, v.height,
         date_trunc('milliseconds', now())
       FROM unnest($5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::int[], $11::int[])
         AS v(name, variant, content_type, size, sha256, width, height)`,
      [
        parent.name,
        parent.owner.domain,
        parent.owner.node,
        parent.kind,
        variants.map((v) => v.name),
        variants.map((v) => v.variant),
        variants.map((v) => v.contentType),
        variants.map((v) => v.size),
        variants.map((v) => v.sha256),
        variants.map((v) => v.width ?? null),
        variants.map((v) => v.height ?? null),
      ],
    );
    return true;
  });
}
