import pg from "pg";
import { REMOVE_USER_ATTACHMENTS_SQL } from "#common/users/lifecycle-removal.ts";
import { DELETE_OLDER_THAN_SQL } from "../../services/http-utility/src/attachments/store.ts";
import { REGISTER_TOKEN_SQL } from "../../services/http-utility/src/push/token-store.ts";
import type { BenchContext } from "./frame.ts";
import { gcCutoff, purgeCutoff, rowCounts } from "./scale-data.ts";
import { scaleDatabases } from "./scale-support.ts";

/**
 * `npx node test/bench/scale-plans.ts`: `EXPLAIN (ANALYZE, BUFFERS)` of the hot statements on the scale
 * benchmarks' big database (generated first if need be, scale-data.ts), printed as the Markdown of
 * docs/database.md "Query plans at 1,000,000 rows". Each statement is the one the code runs (its file named),
 * with the values of a real call; statements that write run in a transaction rolled back.
 */

interface Plan {
  name: string;
  /** Where the statement is. */
  source: string;
  sql: string;
  values: (b: Base) => unknown[];
  /**
   * What the statement was before migrations/1764680000400_large-table-indexes.sql and its rewrite: the index
   * it now uses dropped (in the rolled-back transaction), and/or the statement as it was.
   */
  before?: { dropIndex?: string; sql?: string };
}

interface Base {
  base: Date;
  /** A generated user with tokens, notifications, attachments and locations. */
  user: { domain: string; node: string };
  /** 500 subscribers of `news` in scale-a.bench. */
  nodes: string[];
  /** 500 of their tokens. */
  tokens: { service: string[]; token: string[] };
  /** An existing FCM token of `user`. */
  fcm: string;
  attachment: string;
}

const PLANS: Plan[] = [
  {
    name: "check_password: the user's row",
    source: "services/common/src/users/web-users.ts `findUser`",
    sql: "SELECT token, scram, disabled_at IS NOT NULL AS disabled FROM web_users WHERE domain = $1 AND node = $2",
    values: (b) => [b.user.domain, b.user.node],
  },
  {
    name: "store_token: the token's row, locked",
    source: "services/http-utility/src/push/token-store.ts `registerToken`",
    sql: `SELECT domain, node, device_secret_sha256 AS secret,
         updated_at < now() - make_interval(secs => $3::float8 * 86400) AS stale
       FROM push_tokens WHERE service = $1 AND token = $2 FOR UPDATE`,
    values: (b) => ["fcm", b.fcm, 30],
  },
  {
    name: "store_token: the upsert",
    source: "services/http-utility/src/push/token-store.ts `registerToken`",
    sql: REGISTER_TOKEN_SQL,
    values: (b) => ["fcm", b.fcm, "ScaleApp", b.user.domain, b.user.node, null, false],
  },
  {
    name: "store_token: the eviction beyond the cap",
    source: "services/http-utility/src/push/token-store.ts `registerToken`",
    sql: `DELETE FROM push_tokens WHERE (service, token) IN (
         SELECT service, token FROM push_tokens WHERE domain = $1 AND node = $2 AND app = $3
         ORDER BY (service = $5 AND token = $6) DESC, updated_at DESC, created_at DESC, token
         OFFSET $4)`,
    values: (b) => [b.user.domain, b.user.node, "ScaleApp", 10, "fcm", b.fcm],
  },
  {
    name: "fan-out: a page of a channel's subscribers",
    source: "services/http-utility/src/push/send/broadcast.ts `nextBatch`",
    sql: `SELECT node FROM push_channel_subscriptions WHERE domain = $1 AND channel = $2 AND node > $3
       ORDER BY node LIMIT $4`,
    values: () => ["scale-a.bench", "news", "", 500],
  },
  {
    name: "fan-out: their tokens",
    source: "services/http-utility/src/push/send/broadcast.ts `nextBatch`",
    sql: `SELECT service, token, app, domain, node, badge FROM push_tokens WHERE domain = $1 AND node = ANY($2)
       ORDER BY node, service, token`,
    values: (b) => ["scale-a.bench", b.nodes],
  },
  {
    name: "fan-out: the badge counts of a batch",
    source: "services/http-utility/src/push/token-store.ts `createBadgeCounter`",
    sql: `UPDATE push_tokens p SET badge = COALESCE(k.given, p.badge + 1)
         FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS k(service, token, given, i)
         WHERE p.service = k.service AND p.token = k.token RETURNING k.i, p.badge`,
    values: (b) => [
      b.tokens.service,
      b.tokens.token,
      b.tokens.token.map(() => null),
      b.tokens.token.map((_, i) => i),
    ],
  },
  {
    name: "send: the notification's record",
    source: "services/http-utility/src/push/notification-store.ts `recordNotification`",
    sql: "INSERT INTO push_notifications (id, domain, node, origin) VALUES ($1, $2, $3, $4)",
    values: (b) => ["3c9f0e2a-7d1b-4d55-9a61-2f0c8b7e4a11", b.user.domain, b.user.node, null],
  },
  {
    name: "download: the attachment's row",
    source: "services/http-utility/src/attachments/store.ts `findAttachment`",
    sql: `SELECT name, parent, variant, domain, node, kind, original_name, content_type, size,
       encode(sha256, 'hex') AS sha256, width, height, created_at, legacy_path FROM attachments WHERE name = $1`,
    values: (b) => [b.attachment],
  },
  {
    name: "media gc: a batch of old originals and their variants, deleted",
    source: "services/http-utility/src/attachments/store.ts `deleteOlderThan`",
    sql: DELETE_OLDER_THAN_SQL,
    values: (b) => [gcCutoff(b.base), 500],
    before: {
      dropIndex: "avatars_name",
      sql: `WITH old AS (
       SELECT a.name FROM attachments a
       WHERE a.parent IS NULL AND a.legacy_path IS NULL AND a.created_at < $1
         AND NOT EXISTS (SELECT 1 FROM avatars v WHERE v.name = a.name)
       ORDER BY a.created_at
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     ), gone AS (
       DELETE FROM attachments WHERE name IN (SELECT name FROM old) OR parent IN (SELECT name FROM old)
       RETURNING name, parent
     )
     SELECT name, parent FROM gone`,
    },
  },
  {
    name: "media gc: the count of old originals (progress bar, --dry-run)",
    source: "services/http-utility/src/attachments/store.ts `countOlderThan`",
    sql: `SELECT count(*) AS n FROM attachments a WHERE a.parent IS NULL AND a.legacy_path IS NULL AND a.created_at < $1
       AND NOT EXISTS (SELECT 1 FROM avatars v WHERE v.name = a.name)`,
    values: (b) => [gcCutoff(b.base)],
  },
  {
    name: "locations purge: a batch deleted",
    source: "services/http-utility/src/locations/store.ts `purgeBatch`",
    sql: `DELETE FROM locations WHERE (domain, node, reported_at) IN (
       SELECT domain, node, reported_at FROM locations
       WHERE reported_at < $1 AND ($2::text IS NULL OR domain = $2)
       ORDER BY reported_at LIMIT $3)`,
    values: (b) => [purgeCutoff(b.base), null, 5000],
  },
  {
    name: "user removal: their notifications",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: "DELETE FROM push_notifications WHERE domain = $1 AND node = $2",
    values: (b) => [b.user.domain, b.user.node],
    before: { dropIndex: "push_notifications_owner" },
  },
  {
    name: "user removal: their channel subscriptions",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: "DELETE FROM push_channel_subscriptions WHERE domain = $1 AND node = $2",
    values: (b) => [b.user.domain, b.user.node],
  },
  {
    name: "user removal: the broadcast deliveries to their devices",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: `DELETE FROM push_broadcast_deliveries d USING push_tokens t
        WHERE t.domain = $1 AND t.node = $2 AND d.service = t.service AND d.token = t.token`,
    values: (b) => [b.user.domain, b.user.node],
  },
  {
    name: "user removal: their attachments",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: REMOVE_USER_ATTACHMENTS_SQL,
    values: (b) => [b.user.domain, b.user.node, "delete"],
    before: {
      sql: `WITH own AS (
         SELECT name FROM attachments
          WHERE domain = $1 AND node = $2 AND parent IS NULL AND ($3 = 'delete' OR kind = 'avatar')
       )
       DELETE FROM attachments
        WHERE name IN (SELECT name FROM own) OR parent IN (SELECT name FROM own)
           OR (domain = $1 AND node = $2 AND ($3 = 'delete' OR kind = 'avatar'))
       RETURNING name, legacy_path`,
    },
  },
  {
    name: "user removal: their locations",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: "DELETE FROM locations WHERE domain = $1 AND node = $2",
    values: (b) => [b.user.domain, b.user.node],
  },
  {
    name: "user removal: others' mutes of them",
    source: "services/common/src/users/lifecycle-removal.ts `removeRows`",
    sql: "DELETE FROM chat_mutes WHERE peer = $1",
    values: (b) => [`${b.user.node}@${b.user.domain}`],
    before: { dropIndex: "chat_mutes_peer" },
  },
];

async function explain(c: pg.Client, p: Plan, b: Base, before = false): Promise<string> {
  await c.query("BEGIN");
  try {
    if (before && p.before?.dropIndex) await c.query(`DROP INDEX ${p.before.dropIndex}`);
    const { rows } = await c.query<{ "QUERY PLAN": string }>(
      `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${(before && p.before?.sql) || p.sql}`,
      p.values(b),
    );
    // a literal array of hundreds of values (a page of nodes) is cut to its first ones
    return rows
      .map((r) => r["QUERY PLAN"].replace(/'\{([^,}]+,[^,}]+),[^}]{200,}\}'/g, "'{$1,…}'"))
      .join("\n");
  } finally {
    await c.query("ROLLBACK");
  }
}

function describeBefore(before: NonNullable<Plan["before"]>): string {
  return [
    before.dropIndex ? `without \`${before.dropIndex}\`` : undefined,
    before.sql ? "the statement as it was" : undefined,
  ]
    .filter(Boolean)
    .join(", ");
}

const cleanups: (() => unknown)[] = [];
const ctx: BenchContext = {
  config: { rounds: 1, durationS: 1, warmUpS: 1, connections: 1 },
  defer: (c) => cleanups.push(c),
};
try {
  const dbs = await scaleDatabases(ctx);
  const c = new pg.Client({ connectionString: dbs.big });
  await c.connect();
  try {
    // user 10: scale-c.bench, an FCM token (i = 10), attachments (j = 10 × 13⁻¹), 100 location reports
    const user = { domain: "scale-c.bench", node: "306900000010" };
    const nodes = (
      await c.query<{ node: string }>(
        "SELECT node FROM push_channel_subscriptions WHERE domain = 'scale-a.bench' AND channel = 'news' ORDER BY node LIMIT 500",
      )
    ).rows.map((r) => r.node);
    const tokens = (
      await c.query<{ service: string; token: string }>(
        "SELECT service, token FROM push_tokens WHERE domain = 'scale-a.bench' AND node = ANY($1)",
        [nodes],
      )
    ).rows;
    const fcm = (
      await c.query<{ token: string }>(
        "SELECT token FROM push_tokens WHERE domain = $1 AND node = $2 AND service = 'fcm' LIMIT 1",
        [user.domain, user.node],
      )
    ).rows[0]?.token;
    const attachment = (
      await c.query<{ name: string }>(
        "SELECT name FROM attachments WHERE variant = '128' LIMIT 1 OFFSET 4321",
      )
    ).rows[0]?.name;
    if (!fcm || !attachment) throw new Error("the big database lacks the rows the plans need");
    const b: Base = {
      base: dbs.base,
      user,
      nodes,
      tokens: { service: tokens.map((t) => t.service), token: tokens.map((t) => t.token) },
      fcm,
      attachment,
    };
    const counts = await rowCounts(c);
    const { rows: version } = await c.query<{ server_version: string }>("SHOW server_version");
    console.log(
      `Measured on ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${version[0]?.server_version}, database ` +
        `${JSON.stringify(counts)} (\`node test/bench/scale-plans.ts\`).\n`,
    );
    for (const p of PLANS) {
      console.log(`#### ${p.name}\n\n${p.source}\n\n\`\`\`text\n${await explain(c, p, b)}\n\`\`\`\n`);
      if (p.before) {
        // before: its scans and its time only
        const plan = (await explain(c, p, b, true))
          .split("\n")
          .filter((l) => /Scan|Rows Removed|Execution Time/.test(l))
          .join("\n");
        console.log(`Before (${describeBefore(p.before)}):\n\n\`\`\`text\n${plan}\n\`\`\`\n`);
      }
    }
  } finally {
    await c.end();
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
