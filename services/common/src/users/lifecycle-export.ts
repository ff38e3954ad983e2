import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { ZipFile } from "yazl";
import type { Pool } from "../db/pool.ts";
import type { Storage } from "../media/storage.ts";
import type { Jid } from "./jid.ts";
import { jidText } from "./lifecycle.ts";

/**
 * A user's data for themselves (a GDPR access request; docs/operations.md "Removing, exporting, disabling a
 * user"): their account without password material, registration sessions without codes, device tokens (the
 * token values are theirs), app sessions (never a token or its hash), channel subscriptions, mutes,
 * notifications sent to them, avatar, attachments and locations. One JSON document, written piece by piece
 * from one snapshot (a REPEATABLE READ transaction) with keyset pages, so a user with a million locations
 * costs a page of memory; or a zip holding that document
 * (`data.json`) and the stored files of their attachments (`files/<name>`), each read when its turn comes.
 */

export const EXPORT_FORMAT = "xmpp-sidecars user export";
export const EXPORT_VERSION = 1;

const LOCATIONS_PAGE = 2000;
const ATTACHMENTS_PAGE = 500;

/** Answers whether anything of the user is there to export (the account, or any row naming them). */
export async function hasUserData(pool: Pool | pg.PoolClient, jid: Jid): Promise<boolean> {
  const r = await pool.query(
    `SELECT 1 FROM web_users WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM push_tokens WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM push_channel_subscriptions WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM chat_mutes WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM locations WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM attachments WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM avatars WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM registration_challenges WHERE domain = $1 AND node = $2
     UNION ALL SELECT 1 FROM app_sessions WHERE domain = $1 AND node = $2
     LIMIT 1`,
    [jid.domain, jid.node],
  );
  return (r.rowCount ?? 0) > 0;
}

/** The export as a JSON text stream, read in its own snapshot; destroying the stream ends the transaction. */
export function exportUserJson(pool: Pool, jid: Jid): Readable {
  return Readable.from(
    (async function* () {
      const client = await pool.connect();
      try {
        await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        yield* exportChunks(client, jid, {});
        await client.query("COMMIT");
      } finally {
        await client.query("ROLLBACK").catch(() => {}); // after COMMIT: a warning, no error
        client.release();
      }
    })(),
    { objectMode: false },
  );
}

export interface ZipResult {
  files: number;
  bytes: number;
  /** attachments whose stored file was not there (their rows say `"file": null`) */
  missing: number;
}

/**
 * The export as a zip written to `out`: `data.json`, then `files/<name>` for each original attachment of the
 * user (thumbnails are derived, left out) and their avatar, from `storage` or, for an imported legacy file,
 * from `legacyRoot`. Files are stored as they are (pictures and videos are compressed already).
 */
export async function writeUserZip(
  pool: Pool,
  /** undefined: `data.json` alone, whose attachments name no file */
  storage: Pick<Storage, "get" | "stat"> | undefined,
  jid: Jid,
  out: Writable,
  o: { legacyRoot?: string | undefined } = {},
): Promise<ZipResult> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const originals = await client.query<{ name: string; legacy_path: string | null }>(
      `SELECT name, legacy_path FROM attachments WHERE domain = $1 AND node = $2 AND parent IS NULL
       UNION
       SELECT a.name, a.legacy_path FROM avatars v JOIN attachments a ON a.name = v.name
        WHERE v.domain = $1 AND v.node = $2
       ORDER BY name`,
      [jid.domain, jid.node],
    );
    // which files are there, before data.json says so: a row whose file is gone gets "file": null
    const sources = new Map<string, () => Promise<NodeJS.ReadableStream>>();
    let bytes = 0;
    await eachLimited(storage ? originals.rows : [], 8, async ({ name, legacy_path }) => {
      if (legacy_path !== null) {
        if (!o.legacyRoot) return;
        // legacy_path is `<kind>/<plain name>` (a CHECK of migration 1764680000030): it stays under the root
        const file = path.join(o.legacyRoot, legacy_path);
        const s = await stat(file).catch(() => undefined);
        if (!s?.isFile()) return;
        bytes += s.size;
        sources.set(name, async () => createReadStream(file));
        return;
      }
      const s = await storage?.stat(name);
      if (!s) return;
      bytes += s.size;
      sources.set(name, async () => (storage as Pick<Storage, "get">).get(name));
    });

    const zip = new ZipFile();
    const mtime = new Date();
    zip.addReadStream(
      Readable.from(exportChunks(client, jid, storage ? { files: new Set(sources.keys()) } : {})),
      "data.json",
      { mtime, compress: true },
    );
    for (const [name, open] of [...sources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      zip.addReadStreamLazy(`files/${name}`, { mtime, compress: false }, (cb) => {
        open().then(
          (s) => cb(null, s),
          (err) => cb(err, undefined as unknown as NodeJS.ReadableStream),
        );
      });
    }
    zip.end();
    await pipeline(zip.outputStream, out);
    await client.query("COMMIT");
    return { files: sources.size, bytes, missing: storage ? originals.rows.length - sources.size : 0 };
  } finally {
    await client.query("ROLLBACK").catch(() => {});
    client.release();
  }
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** The JSON document, piece by piece: one line per object of a list. */
async function* exportChunks(
  client: pg.PoolClient,
  jid: Jid,
  o: { files?: ReadonlySet<string> },
): AsyncGenerator<string> {
  const who = [jid.domain, jid.node];
  const q = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = who) =>
    (await client.query<R>(sql, values)).rows;

  const [account] = await q<{
    created_at: Date;
    updated_at: Date;
    disabled_at: Date | null;
    has_scram: boolean;
    has_cleartext: boolean;
  }>(
    `SELECT created_at, updated_at, disabled_at, scram IS NOT NULL AS has_scram, token IS NOT NULL AS has_cleartext
       FROM web_users WHERE domain = $1 AND node = $2`,
  );
  yield `{${JSON.stringify("format")}:${JSON.stringify(EXPORT_FORMAT)},"version":${EXPORT_VERSION},`;
  yield `"exportedAt":${JSON.stringify(new Date().toISOString())},"jid":${JSON.stringify(jidText(jid))},\n`;
  const profile = account
    ? {
        node: jid.node,
        domain: jid.domain,
        createdAt: iso(account.created_at),
        updatedAt: iso(account.updated_at),
        disabledAt: iso(account.disabled_at),
        // that a password is set, and how it is kept: never the password, its hash or its SCRAM data
        passwordKeptAs: [
          ...(account.has_scram ? ["scram"] : []),
          ...(account.has_cleartext ? ["cleartext"] : []),
        ],
      }
    : null;
  yield `"account":${JSON.stringify(profile)},\n`;

  yield* list(
    "registrations",
    await q<Record<string, unknown>>(
      `SELECT created_at AS "createdAt", app_name AS "appName", app_version AS "appVersion", platform,
              sends AS "codesSent", last_sent_at AS "lastSentAt", code_expires_at AS "codeExpiresAt",
              verified_at AS "verifiedAt", used_at AS "usedAt"
         FROM registration_challenges WHERE domain = $1 AND node = $2`,
    ),
  );
  // the app logins: never a token or its hash (app_refresh_tokens is left out)
  yield* list(
    "appSessions",
    await q<Record<string, unknown>>(
      `SELECT id, created_at AS "createdAt", last_used_at AS "lastUsedAt", expires_at AS "expiresAt",
              revoked_at AS "revokedAt", revoked_reason AS "revokedReason", client_address AS "clientAddress",
              app_name AS "appName", app_version AS "appVersion", app_platform AS "appPlatform"
         FROM app_sessions WHERE domain = $1 AND node = $2 ORDER BY created_at, id`,
    ),
  );
  yield* list(
    "pushTokens",
    await q(
      `SELECT service, token, app, badge, created_at AS "createdAt", updated_at AS "updatedAt"
         FROM push_tokens WHERE domain = $1 AND node = $2 ORDER BY updated_at DESC, service, token`,
    ),
  );
  yield* list(
    "channelSubscriptions",
    await q(
      `SELECT channel, created_at AS "createdAt" FROM push_channel_subscriptions
        WHERE domain = $1 AND node = $2 ORDER BY channel`,
    ),
  );
  yield* list(
    "mutedChats",
    await q(
      `SELECT peer, until, created_at AS "createdAt" FROM chat_mutes
        WHERE domain = $1 AND node = $2 ORDER BY peer`,
    ),
  );
  // where a notification's replies go (a buddy, a backend's URL) is the sender's, not the user's: left out
  yield* list(
    "notifications",
    await q(
      `SELECT id, created_at AS "createdAt" FROM push_notifications
        WHERE domain = $1 AND node = $2 ORDER BY created_at, id`,
    ),
  );

  const [avatar] = await q<{ name: string; updated_at: Date; legacy_path: string | null }>(
    `SELECT v.name, v.updated_at, a.legacy_path FROM avatars v LEFT JOIN attachments a ON a.name = v.name
      WHERE v.domain = $1 AND v.node = $2`,
  );
  yield `"avatar":${JSON.stringify(
    avatar
      ? {
          name: avatar.name,
          updatedAt: iso(avatar.updated_at),
          ...(avatar.legacy_path !== null ? { importedFrom: avatar.legacy_path } : {}),
          ...(o.files ? { file: o.files.has(avatar.name) ? `files/${avatar.name}` : null } : {}),
        }
      : null,
  )},\n`;

  yield `"attachments":[`;
  let first = true;
  for (let after = ""; ; ) {
    const page = await q<{
      name: string;
      parent: string | null;
      variant: string | null;
      kind: string;
      original_name: string | null;
      content_type: string;
      size: string;
      sha256: string;
      width: number | null;
      height: number | null;
      created_at: Date;
    }>(
      `SELECT name, parent, variant, kind, original_name, content_type, size, encode(sha256, 'hex') AS sha256,
              width, height, created_at
         FROM attachments WHERE domain = $1 AND node = $2 AND name > $3 ORDER BY name LIMIT $4`,
      [...who, after, ATTACHMENTS_PAGE],
    );
    for (const a of page) {
      const item = {
        name: a.name,
        ...(a.parent !== null ? { thumbnailOf: a.parent, variant: a.variant } : {}),
        kind: a.kind,
        originalName: a.original_name,
        contentType: a.content_type,
        size: Number(a.size),
        sha256: a.sha256,
        width: a.width,
        height: a.height,
        createdAt: iso(a.created_at),
        ...(o.files && a.parent === null ? { file: o.files.has(a.name) ? `files/${a.name}` : null } : {}),
      };
      yield `${first ? "\n" : ",\n"}${JSON.stringify(item)}`;
      first = false;
    }
    if (page.length < ATTACHMENTS_PAGE) break;
    after = (page.at(-1) as { name: string }).name;
  }
  yield `\n],\n"locations":[`;
  first = true;
  // keyset pages along the primary key (domain, node, reported_at): each page is an index range scan. The
  // cursor is PostgreSQL's own text of the last date: a JS Date would drop its microseconds
  for (let after: string | null = null; ; ) {
    const page: {
      reported_at: Date;
      cursor: string;
      latitude: number;
      longitude: number;
      app_type: string;
      app_version: string;
      received_at: Date;
    }[] = await q(
      `SELECT reported_at, reported_at::text AS cursor, latitude, longitude, app_type, app_version, received_at
         FROM locations
        WHERE domain = $1 AND node = $2 AND ($3::timestamptz IS NULL OR reported_at > $3::timestamptz)
        ORDER BY reported_at LIMIT $4`,
      [...who, after, LOCATIONS_PAGE],
    );
    let text = "";
    for (const l of page) {
      text += `${first ? "\n" : ",\n"}${JSON.stringify({
        reportedAt: iso(l.reported_at),
        latitude: l.latitude,
        longitude: l.longitude,
        appType: l.app_type,
        appVersion: l.app_version,
        receivedAt: iso(l.received_at),
      })}`;
      first = false;
    }
    if (text) yield text;
    if (page.length < LOCATIONS_PAGE) break;
    after = (page.at(-1) as { cursor: string }).cursor;
  }
  yield "\n]}\n";
}

function* list(name: string, rows: Record<string, unknown>[]): Generator<string> {
  yield `${JSON.stringify(name)}:[${rows.map((r) => `\n${JSON.stringify(r)}`).join(",")}${rows.length ? "\n" : ""}],\n`;
}
