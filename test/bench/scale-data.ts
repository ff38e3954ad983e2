import type pg from "pg";

/**
 * The rows of the scale benchmarks (issue 18 item 6), generated server-side by `INSERT … SELECT … FROM
 * generate_series(…)` (PostgreSQL builds them without a round trip per row, as fast as COPY). Every value is a
 * function of the row's number and of one base time, so the rows a benchmark deletes (media gc, locations
 * purge) can be written back exactly as they were, and a database generated once is kept between runs.
 *
 * What the rows look like (the columns of migrations/):
 * - web_users: USERS accounts over four domains, msisdn nodes (`306900000000` + i), SCRAM data shaped as
 *   services/common/src/credentials/scram.ts stores it (iterations, a salt and keys per hash of the domain's
 *   default `scramHashes`), created over four years, one in 500 disabled;
 * - push_tokens: TOKENS device tokens of 700 000 of those users (300 000 with two), 40 % APNs, 5 % VoIP, 55 %
 *   FCM (each in its own format), two apps, badges, half with a device secret, registered over 400 days;
 * - push_notifications: NOTIFICATIONS sent over 30 days, a quarter with an origin;
 * - push_channel_subscriptions: 300 000 users subscribed to `news`, 100 000 of them to `offers` too;
 * - push_broadcast_deliveries: one finished broadcast to the `news` subscribers' devices (about 600 000 rows);
 * - chat_mutes: 200 000 users muting another;
 * - attachments: ORIGINALS originals (60 % pictures, 20 % videos, 10 % avatars, 10 % XEP-0363 uploads) of all
 *   users, every one but the uploads with its variant (`128` thumbnail or `poster`), about 1 000 000 rows,
 *   created over 400 days in the order of the rows (as uploads come), so that about 9 % are older than
 *   GC_AGE_DAYS; the avatars are their owners' current ones (`avatars`), which gc keeps;
 * - locations: LOCATIONS reports of 100 000 users, one a day each over 100 days, so that the last 10 days'
 *   worth (LOCATIONS / 10 rows) are older than PURGE_AGE_DAYS.
 */

export const USERS = 1_000_000;
export const TOKENS = 1_000_000;
export const NOTIFICATIONS = 1_000_000;
export const ORIGINALS = 526_316;
export const LOCATIONS = 10_000_000;
const LOCATION_USERS = 100_000;
export const DOMAINS = ["scale-a.bench", "scale-b.bench", "scale-c.bench", "scale-d.bench"] as const;
/** `sidecars media gc --older-than 365d` at the base time. */
export const GC_AGE_DAYS = 365;
/** `sidecars locations purge --older-than 90d` at the base time. */
export const PURGE_AGE_DAYS = 90;

/** Bumped whenever a generator changes: a kept database of another version is generated again. */
export const GENERATION_VERSION = 2;

const DAY_MS = 86_400_000;
export const gcCutoff = (base: Date) => new Date(base.getTime() - GC_AGE_DAYS * DAY_MS);
export const purgeCutoff = (base: Date) => new Date(base.getTime() - PURGE_AGE_DAYS * DAY_MS);

type Client = Pick<pg.ClientBase, "query">;

/** The domain and node of user `u` (an SQL integer expression). */
const domainOf = (u: string) => `'scale-' || chr(97 + (${u})::int % 4) || '.bench'`;
const nodeOf = (u: string) => `(306900000000 + (${u}))::text`;
/** base64 of a bytea expression, without the line breaks PostgreSQL puts every 76 characters. */
const b64 = (x: string) => `replace(encode(${x}, 'base64'), E'\\n', '')`;

function scramOf(i: string): string {
  const sha1 = (x: string) => `substr(sha256(${x}), 1, 20)`; // sha1() is pgcrypto's: only the size matters
  const hashes: Record<string, (x: string) => string> = {
    sha1,
    sha224: (x) => `sha224(${x})`,
    sha256: (x) => `sha256(${x})`,
    sha384: (x) => `sha384(${x})`,
    sha512: (x) => `sha512(${x})`,
  };
  const entries = Object.entries(hashes).map(([name, h], k) => {
    const seed = (tag: number) =>
      `int8send(${i}) || '\\x${(k * 3 + tag).toString(16).padStart(2, "0")}'::bytea`;
    return `'${name}', jsonb_build_object('salt', ${b64(`substr(md5(${seed(0)})::bytea, 1, 16)`)},
      'storedKey', ${b64(h(seed(1)))}, 'serverKey', ${b64(h(seed(2)))})`;
  });
  return `jsonb_build_object('iterations', 10000, ${entries.join(", ")})`;
}

async function webUsers(c: Client, base: Date): Promise<void> {
  await c.query(
    `INSERT INTO web_users (node, domain, token, scram, disabled_at, created_at, updated_at)
     SELECT ${nodeOf("i")}, ${domainOf("i")}, NULL, ${scramOf("i")},
       CASE WHEN i % 500 = 0 THEN $1::timestamptz - interval '3 days' END,
       x.c, x.c + (i % 50) * interval '1 day'
     FROM generate_series((0)::bigint, ${USERS - 1}) AS i
     CROSS JOIN LATERAL (SELECT $1::timestamptz - (i % 1460) * interval '1 day' - (i % 86400) * interval '1 second' AS c) x`,
    [base],
  );
}

async function pushTokens(c: Client, base: Date): Promise<void> {
  await c.query(
    `INSERT INTO push_tokens (service, token, app, domain, node, badge, created_at, updated_at, device_secret_sha256)
     SELECT s.service,
       CASE WHEN s.service = 'fcm' THEN 'f' || to_hex(i) || ':APA91b' || encode(sha512(int8send(i)), 'hex')
            ELSE encode(sha256(int8send(i)), 'hex') END,
       CASE WHEN i % 3 = 0 THEN 'ScaleChat' ELSE 'ScaleApp' END,
       ${domainOf("s.u")}, ${nodeOf("s.u")}, i % 17, s.c, s.c + (i % 30) * interval '1 day',
       CASE WHEN i % 2 = 0 THEN encode(sha256(int8send(i) || '\\x01'::bytea), 'hex') END
     FROM generate_series((0)::bigint, ${TOKENS - 1}) AS i
     CROSS JOIN LATERAL (SELECT i % 700000 AS u,
       CASE WHEN i % 20 < 8 THEN 'apns' WHEN i % 20 = 8 THEN 'apns-voip' ELSE 'fcm' END AS service,
       $1::timestamptz - (i % 400) * interval '1 day' - (i % 86400) * interval '1 second' AS c) s`,
    [base],
  );
}

async function notifications(c: Client, base: Date): Promise<void> {
  await c.query(
    `INSERT INTO push_notifications (id, domain, node, origin, created_at)
     SELECT md5('n' || i)::uuid, ${domainOf("x.u")}, ${nodeOf("x.u")},
       CASE WHEN i % 4 = 0 THEN jsonb_build_object('kind', 'buddy', 'jid', 'support@scale-a.bench') END,
       $1::timestamptz - (i % 2592000) * interval '1 second'
     FROM generate_series((0)::bigint, ${NOTIFICATIONS - 1}) AS i CROSS JOIN LATERAL (SELECT (i * 7) % ${USERS} AS u) x`,
    [base],
  );
}

/** 200 000 users muting one other each (chat_mutes), some until a date. */
async function mutes(c: Client, base: Date): Promise<void> {
  await c.query(
    `INSERT INTO chat_mutes (domain, node, peer, until, created_at)
     SELECT ${domainOf("u")}, ${nodeOf("u")}, ${nodeOf(`(u * 31) % ${USERS}`)} || '@' || ${domainOf(`(u * 31) % ${USERS}`)},
       CASE WHEN u % 3 = 0 THEN $1::timestamptz + interval '8 hours' END, $1::timestamptz - (u % 90) * interval '1 day'
     FROM generate_series((0)::bigint, 199999) AS u`,
    [base],
  );
}

/** One finished broadcast to `news` in every domain: a delivery row per device of its subscribers. */
async function broadcastDeliveries(c: Client, base: Date): Promise<void> {
  await c.query(
    `INSERT INTO push_broadcasts (id, domain, channel, message, state, total, sent, created_at, finished_at)
     VALUES (md5('broadcast')::uuid, 'scale-a.bench', 'news', '{"title": "News", "body": "Today"}', 'done', 0, 0,
       $1::timestamptz - interval '2 days', $1::timestamptz - interval '2 days')`,
    [base],
  );
  await c.query(
    `INSERT INTO push_broadcast_deliveries (broadcast_id, service, token, outcome, at)
     SELECT md5('broadcast')::uuid, t.service, t.token, 'sent', $1::timestamptz - interval '2 days'
     FROM push_tokens t JOIN push_channel_subscriptions s ON s.domain = t.domain AND s.node = t.node AND s.channel = 'news'`,
    [base],
  );
}

async function subscriptions(c: Client): Promise<void> {
  await c.query(
    `INSERT INTO push_channel_subscriptions (domain, channel, node, created_at)
     SELECT ${domainOf("u")}, 'news', ${nodeOf("u")}, now() FROM generate_series((0)::bigint, 299999) AS u
     UNION ALL
     SELECT ${domainOf("u")}, 'offers', ${nodeOf("u")}, now() FROM generate_series((0)::bigint, 99999) AS u`,
  );
}

/**
 * The originals (and, below, their variants) with j from `lo` to `hi`; `$1` the base time, `$2` a cutoff
 * (only those created before it) or null.
 */
const originals = (lo: number, hi: number) => `
  SELECT j, translate(encode(substr(sha256(int8send(j)), 1, 18), 'base64'), '+/', '-_') || k.ext AS name,
    ${domainOf("k.u")} AS domain, ${nodeOf("k.u")} AS node, k.kind, k.ctype,
    $1::timestamptz - ((${ORIGINALS - 1} - j) * ${400 * 86_400} / ${ORIGINALS}) * interval '1 second' AS c
  FROM generate_series((${lo})::bigint, ${hi}) AS j
  CROSS JOIN LATERAL (SELECT (j * 13) % ${USERS} AS u,
    CASE WHEN j % 10 < 6 THEN 'picture' WHEN j % 10 < 8 THEN 'video' WHEN j % 10 = 8 THEN 'avatar' ELSE 'upload' END AS kind,
    CASE WHEN j % 10 < 6 OR j % 10 = 8 THEN 'image/jpeg' WHEN j % 10 < 8 THEN 'video/mp4' ELSE 'application/pdf' END AS ctype,
    CASE WHEN j % 10 < 6 OR j % 10 = 8 THEN '.jpg' WHEN j % 10 < 8 THEN '.mp4' ELSE '.pdf' END AS ext) k`;

function attachmentsSql(lo: number, hi: number): string {
  return `WITH o AS (SELECT * FROM (${originals(lo, hi)}) a WHERE $2::timestamptz IS NULL OR a.c < $2)
    INSERT INTO attachments (name, parent, variant, domain, node, kind, original_name, content_type, size, sha256,
      width, height, created_at)
    SELECT name, NULL, NULL, domain, node, kind,
      CASE kind WHEN 'picture' THEN 'IMG_' || j || '.jpg' WHEN 'video' THEN 'VID_' || j || '.mp4'
        WHEN 'upload' THEN 'document-' || j || '.pdf' END,
      ctype, CASE WHEN kind = 'video' THEN 1000000 + (j * 7919) % 49000000 ELSE 200000 + (j * 7919) % 2800000 END,
      sha256(int8send(j)), CASE WHEN ctype = 'image/jpeg' THEN 1024 + j % 3 * 512 END,
      CASE WHEN ctype = 'image/jpeg' THEN 768 + j % 3 * 384 END, c
    FROM o
    UNION ALL
    SELECT translate(encode(substr(sha256(int8send(j) || '\\x76'::bytea), 1, 18), 'base64'), '+/', '-_')
        || CASE WHEN kind = 'video' THEN '.jpg' ELSE '.webp' END,
      name, CASE WHEN kind = 'video' THEN 'poster' ELSE '128' END, domain, node, kind, NULL,
      CASE WHEN kind = 'video' THEN 'image/jpeg' ELSE 'image/webp' END, 5000 + (j * 7919) % 10000,
      sha256(int8send(j) || '\\x76'::bytea), 128, 96, c
    FROM o WHERE kind <> 'upload'
    ON CONFLICT DO NOTHING`;
}

async function attachments(c: Client, base: Date): Promise<void> {
  await c.query(attachmentsSql(0, ORIGINALS - 1), [base, null]);
  await c.query(
    `INSERT INTO avatars (domain, node, name, updated_at)
     SELECT domain, node, name, c FROM (${originals(0, ORIGINALS - 1)}) a WHERE kind = 'avatar'
     ON CONFLICT DO NOTHING`,
    [base],
  );
}

/** Writes back the originals older than gc's cutoff (and their variants) that a gc deleted. */
export async function restoreOldAttachments(c: Client, base: Date): Promise<void> {
  await c.query(attachmentsSql(0, ORIGINALS - 1), [base, gcCutoff(base)]);
}

/**
 * Only what gc deletes and keeps among the old: the old originals, their variants and the old current
 * avatars (the baseline of the gc benchmark).
 */
export async function oldAttachmentsOnly(c: Client, base: Date): Promise<void> {
  await restoreOldAttachments(c, base);
  await c.query(
    `INSERT INTO avatars (domain, node, name, updated_at)
     SELECT domain, node, name, c FROM (${originals(0, ORIGINALS - 1)}) a WHERE kind = 'avatar' AND c < $2
     ON CONFLICT DO NOTHING`,
    [base, gcCutoff(base)],
  );
}

/** Location reports `lo`…`hi`: report i is user i % LOCATION_USERS's of day i / LOCATION_USERS before the base. */
function locationsSql(lo: number, hi: number): string {
  return `INSERT INTO locations (domain, node, reported_at, latitude, longitude, app_type, app_version, received_at)
    SELECT ${domainOf("x.u")}, ${nodeOf("x.u")}, x.at, -90 + ((i * 37) % 18000) / 100.0,
      -180 + ((i * 53) % 36000) / 100.0, CASE WHEN i % 2 = 0 THEN 'android' ELSE 'ios' END,
      '3.' || (i % 20) || '.0', x.at + interval '5 seconds'
    FROM generate_series((${lo})::bigint, ${hi}) AS i
    CROSS JOIN LATERAL (SELECT i % ${LOCATION_USERS} AS u,
      $1::timestamptz - (i / ${LOCATION_USERS}) * interval '1 day' - (i % ${LOCATION_USERS} % 86400) * interval '1 second' AS at) x
    ON CONFLICT DO NOTHING`;
}

/** The reports older than the purge's cutoff: days PURGE_AGE_DAYS… of every user. */
const OLD_LOCATIONS = { lo: PURGE_AGE_DAYS * LOCATION_USERS, hi: LOCATIONS - 1 };

/** Writes back the old reports a purge deleted (also the whole table of the purge benchmark's baseline). */
export async function restoreOldLocations(c: Client, base: Date): Promise<void> {
  await c.query(locationsSql(OLD_LOCATIONS.lo, OLD_LOCATIONS.hi), [base]);
}

/**
 * Ten million rows go in faster without the table's indexes, which are built once afterwards by a sort (the
 * same indexes as migrations/1763800000002_locations.sql, by the same names).
 */
async function locations(c: Client, base: Date): Promise<void> {
  await c.query("ALTER TABLE locations DROP CONSTRAINT locations_pkey");
  await c.query("DROP INDEX locations_reported_at");
  const step = 2_000_000;
  for (let lo = 0; lo < LOCATIONS; lo += step) {
    await c.query(
      locationsSql(lo, Math.min(lo + step, LOCATIONS) - 1).replace("ON CONFLICT DO NOTHING", ""),
      [base],
    );
  }
  await c.query(
    "ALTER TABLE locations ADD CONSTRAINT locations_pkey PRIMARY KEY (domain, node, reported_at)",
  );
  await c.query("CREATE INDEX locations_reported_at ON locations (reported_at)");
}

/** Every table of the big database, each step timed on stderr. */
export async function generateAll(c: Client, base: Date, say: (line: string) => void): Promise<void> {
  await c.query("SET maintenance_work_mem = '1GB'");
  await c.query("SET synchronous_commit = off");
  const steps: Array<[string, () => Promise<void>]> = [
    ["web_users", () => webUsers(c, base)],
    ["push_tokens", () => pushTokens(c, base)],
    ["push_notifications", () => notifications(c, base)],
    ["push_channel_subscriptions", () => subscriptions(c)],
    ["push_broadcast_deliveries", () => broadcastDeliveries(c, base)],
    ["chat_mutes", () => mutes(c, base)],
    ["attachments and avatars", () => attachments(c, base)],
    ["locations", () => locations(c, base)],
    ["VACUUM ANALYZE", async () => void (await c.query("VACUUM ANALYZE"))],
    // the gigabytes just written are still dirty in shared buffers and the page cache: written out now, not by
    // the checkpointer during the first measured rounds (the full run of 2026-12-03 measured the big side
    // rising round after round while they went to disk)
    ["CHECKPOINT", async () => void (await c.query("CHECKPOINT"))],
  ];
  for (const [name, run] of steps) {
    const t0 = performance.now();
    await run();
    say(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

export interface RowCounts {
  web_users: number;
  push_tokens: number;
  attachments: number;
  locations: number;
}

export async function rowCounts(c: Client): Promise<RowCounts> {
  const { rows } = await c.query<Record<keyof RowCounts, string>>(
    `SELECT (SELECT count(*) FROM web_users) AS web_users, (SELECT count(*) FROM push_tokens) AS push_tokens,
       (SELECT count(*) FROM attachments) AS attachments, (SELECT count(*) FROM locations) AS locations`,
  );
  const r = rows[0] as Record<keyof RowCounts, string>;
  return {
    web_users: Number(r.web_users),
    push_tokens: Number(r.push_tokens),
    attachments: Number(r.attachments),
    locations: Number(r.locations),
  };
}
