import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { Pool } from "../db/pool.ts";
import { newKey } from "../media/keys.ts";
import type { Storage } from "../media/storage.ts";
import type { Jid } from "./jid.ts";
import { jidText } from "./lifecycle.ts";
import { addUser } from "./web-users.ts";

/**
 * Test data of the user lifecycle tests (conventions: fixtures are built in code): a user with rows in every
 * table that holds user data and the files of their attachments in a storage backend, as the services would
 * have written them. Imported by tests only.
 */

export interface SeededUser {
  jid: Jid;
  password: string;
  /** original attachments (pictures, a video, the avatar), with the bytes stored under each */
  originals: Map<string, Buffer>;
  /** every stored key: originals and their thumbnails or posters */
  keys: string[];
  avatar: string;
  tokens: { service: string; token: string }[];
}

export interface SeedOptions {
  password?: string;
  locations?: number;
  /** pictures, each with a thumbnail */
  pictures?: number;
  /** bytes of each stored original */
  fileBytes?: number;
  /** another user's JID (same domain) who mutes this one and whom this one mutes */
  peer?: string;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest();

export async function seedUser(
  pool: Pool,
  storage: Pick<Storage, "put">,
  jid: Jid,
  o: SeedOptions = {},
): Promise<SeededUser> {
  const password = o.password ?? `pw-${randomBytes(6).toString("hex")}`;
  const who = [jid.domain, jid.node];
  await addUser(
    pool,
    jid,
    { cleartext: password },
    {
      keepCleartext: false,
      scramHashes: ["sha1", "sha256"],
      scramIterations: 4096,
    },
  );

  const tokens = [
    { service: "fcm", token: `fcm-${randomBytes(16).toString("hex")}` },
    { service: "apns", token: randomBytes(32).toString("hex") },
  ];
  for (const t of tokens) {
    await pool.query(
      "INSERT INTO push_tokens (service, token, app, domain, node, badge) VALUES ($1, $2, 'chat', $3, $4, 3)",
      [t.service, t.token, ...who],
    );
  }
  const broadcast = await pool.query<{ id: string }>(
    `INSERT INTO push_broadcasts (id, domain, channel, message, state)
     VALUES (gen_random_uuid(), $1, 'news', '{"body":"hello"}', 'done') RETURNING id`,
    [jid.domain],
  );
  await pool.query(
    "INSERT INTO push_broadcast_deliveries (broadcast_id, service, token, outcome) VALUES ($1, $2, $3, 'sent')",
    [broadcast.rows[0]?.id, tokens[0]?.service, tokens[0]?.token],
  );
  for (const channel of ["news", "sports"]) {
    await pool.query("INSERT INTO push_channel_subscriptions (domain, channel, node) VALUES ($1, $2, $3)", [
      jid.domain,
      channel,
      jid.node,
    ]);
  }
  for (let i = 0; i < 2; i++) {
    await pool.query(
      `INSERT INTO push_notifications (id, domain, node, origin)
       VALUES (gen_random_uuid(), $1, $2, '{"kind":"url","url":"http://127.0.0.1:9/replies"}')`,
      who,
    );
  }
  const peer = o.peer ?? `peer-of-${jid.node}`;
  await pool.query("INSERT INTO chat_mutes (domain, node, peer) VALUES ($1, $2, $3)", [
    ...who,
    `${peer}@${jid.domain}`,
  ]);
  await pool.query(
    "INSERT INTO chat_mutes (domain, node, peer, until) VALUES ($1, $2, $3, now() + interval '1 hour')",
    [jid.domain, peer, jidText(jid)],
  );
  await pool.query(
    `INSERT INTO locations (node, domain, reported_at, latitude, longitude, app_type, app_version)
     SELECT $2, $1, timestamp '2025-01-01 00:00:00+00' + make_interval(secs => g + 0.000123), 37.9 + g / 1e6,
            23.7, 'android', '2.4.1'
       FROM generate_series(1, $3) g`,
    [...who, o.locations ?? 3],
  );
  await pool.query(
    `INSERT INTO registration_challenges (domain, node, code_salt, code_hash, code_expires_at, sends, app_name, app_version, verified_at)
     VALUES ($1, $2, $3, $4, now(), 1, 'chat', '2.4.1', now())`,
    [...who, randomBytes(16), randomBytes(32)],
  );
  if (/^[0-9]+$/.test(jid.node)) {
    for (const key of [`registerPerNumber:${jid.node}`, `authorizePerNumberIp:${jid.node}/198.51.100.7`]) {
      await pool.query("INSERT INTO rate_limits (key, points, expire) VALUES ($1, 1, $2)", [
        key,
        Date.now() + 3_600_000,
      ]);
    }
  }

  const originals = new Map<string, Buffer>();
  const keys: string[] = [];
  const store = async (
    kind: "picture" | "video" | "avatar",
    ext: string,
    contentType: string,
    parent?: { name: string; variant: string },
  ) => {
    const name = newKey(ext);
    const bytes = randomBytes(parent ? 512 : (o.fileBytes ?? 2048));
    await storage.put(name, Readable.from([bytes]), { contentType });
    await pool.query(
      `INSERT INTO attachments (name, parent, variant, domain, node, kind, original_name, content_type, size, sha256, width, height)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 640, 480)`,
      [
        name,
        parent?.name ?? null,
        parent?.variant ?? null,
        ...who,
        kind,
        parent ? null : `IMG_${keys.length}.${ext}`,
        contentType,
        bytes.length,
        sha(bytes),
      ],
    );
    keys.push(name);
    if (!parent) originals.set(name, bytes);
    return name;
  };
  for (let i = 0; i < (o.pictures ?? 2); i++) {
    const name = await store("picture", "jpg", "image/jpeg");
    await store("picture", "webp", "image/webp", { name, variant: "128" });
  }
  const video = await store("video", "mp4", "video/mp4");
  await store("video", "jpg", "image/jpeg", { name: video, variant: "poster" });
  const avatar = await store("avatar", "jpg", "image/jpeg");
  await store("avatar", "webp", "image/webp", { name: avatar, variant: "128" });
  await pool.query("INSERT INTO avatars (domain, node, name) VALUES ($1, $2, $3)", [...who, avatar]);

  return { jid, password, originals, keys, avatar, tokens };
}

/**
 * Rows naming the user: in every table of the database with a `node` and a `domain` column (read from the
 * catalogue, so a table added later is counted too), others' mutes of them, deliveries to their device tokens
 * and the registration limits of their number.
 */
export async function rowsOf(pool: Pool, user: SeededUser): Promise<Record<string, number>> {
  const { jid } = user;
  const tables = await pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns
      WHERE table_schema = 'public' AND column_name IN ('node', 'domain')
      GROUP BY table_name HAVING count(*) = 2 ORDER BY table_name`,
  );
  const counts: Record<string, number> = {};
  for (const { table_name } of tables.rows) {
    const r = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${table_name}" WHERE domain = $1 AND node = $2`,
      [jid.domain, jid.node],
    );
    counts[table_name] = r.rows[0]?.n ?? 0;
  }
  const more = await pool.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM chat_mutes WHERE peer = $1) AS chat_mutes_of_them,
            (SELECT count(*)::int FROM push_broadcast_deliveries WHERE token = ANY($2)) AS push_broadcast_deliveries,
            (SELECT count(*)::int FROM rate_limits WHERE strpos(key, $3) > 0) AS rate_limits`,
    [jidText(jid), user.tokens.map((t) => t.token), jid.node],
  );
  return { ...counts, ...more.rows[0] };
}
