import type { Pool } from "#common/db/pool.ts";
import type { Jid } from "#common/users/jid.ts";
import type { LocationReport, StoredLocation } from "./schema.ts";

/** The locations table (migrations/1763800000002_locations.sql). */

/**
 * Stores the reports of one user in one statement, so a batch is stored whole or not at all. A report
 * already stored (same user and date: an app retrying a batch) is kept once.
 */
export async function storeLocations(pool: Pool, owner: Jid, reports: LocationReport[]): Promise<void> {
  await pool.query(
    `INSERT INTO locations (domain, node, reported_at, latitude, longitude, app_type, app_version)
     SELECT $1::text, $2::text, r.*
     FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::text[], $7::text[]) AS r
     ON CONFLICT (domain, node, reported_at) DO NOTHING`,
    [
      owner.domain,
      owner.node,
      reports.map((r) => r.date.toISOString()),
      reports.map((r) => r.latitude),
      reports.map((r) => r.longitude),
      reports.map((r) => r.app_type),
      reports.map((r) => r.app_version),
    ],
  );
}

/**
 * The accounts among `domains` × `nodes` that have reported locations: how a server key's msisdn (written
 * with or without `+`, domain maybe unknown) finds its owner. One index probe per pair.
 */
export async function ownersOf(pool: Pool, domains: string[], nodes: string[]): Promise<Jid[]> {
  const r = await pool.query<Jid>(
    `SELECT d.domain, n.node
     FROM unnest($1::text[]) AS d(domain) CROSS JOIN unnest($2::text[]) AS n(node)
     WHERE EXISTS (SELECT 1 FROM locations l WHERE l.domain = d.domain AND l.node = n.node)
     ORDER BY d.domain, n.node`,
    [domains, nodes],
  );
  return r.rows;
}

// `cursor` is the date with PostgreSQL's microseconds, which a JavaScript Date would round away
const COLUMNS = `latitude, longitude,
  to_char(reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS date,
  app_type, app_version,
  to_char(reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor`;

type Row = StoredLocation & { cursor: string };
const location = ({ cursor: _, ...l }: Row): StoredLocation => l;

export async function latestLocation(pool: Pool, owner: Jid): Promise<StoredLocation | undefined> {
  const r = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM locations WHERE domain = $1 AND node = $2 ORDER BY reported_at DESC LIMIT 1`,
    [owner.domain, owner.node],
  );
  return r.rows[0] && location(r.rows[0]);
}

export interface HistoryPage {
  locations: StoredLocation[];
  /** The `before` of the next (older) page; undefined on the last page. */
  next: string | undefined;
}

/** One page of a user's reports, newest first: from ≤ date ≤ to, date < before. */
export async function locationHistory(
  pool: Pool,
  owner: Jid,
  range: { from?: string | undefined; to?: string | undefined; before?: string | undefined; limit: number },
): Promise<HistoryPage> {
  // keyset pagination: (domain, node, reported_at) is unique, so the date alone says where a page ends
  const r = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM locations
     WHERE domain = $1 AND node = $2
       AND ($3::timestamptz IS NULL OR reported_at >= $3)
       AND ($4::timestamptz IS NULL OR reported_at <= $4)
       AND ($5::timestamptz IS NULL OR reported_at < $5)
     ORDER BY reported_at DESC
     LIMIT $6`,
    [owner.domain, owner.node, range.from ?? null, range.to ?? null, range.before ?? null, range.limit + 1],
  );
  const rows = r.rows.slice(0, range.limit);
  const more = r.rows.length > range.limit;
  return { locations: rows.map(location), next: more ? rows[rows.length - 1]?.cursor : undefined };
}

/** Reports dated before `cutoff` (of one domain, or all). */
export async function countOlderThan(pool: Pool, cutoff: Date, domain?: string): Promise<number> {
  const r = await pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM locations WHERE reported_at < $1 AND ($2::text IS NULL OR domain = $2)",
    [cutoff, domain ?? null],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Deletes at most `batch` reports dated before `cutoff`, oldest first; answers how many it deleted. Small
 * batches keep each transaction (and the locks and WAL it holds) short on a table the apps keep writing.
 */
export async function purgeBatch(pool: Pool, cutoff: Date, batch: number, domain?: string): Promise<number> {
  const r = await pool.query(
    `DELETE FROM locations WHERE (domain, node, reported_at) IN (
       SELECT domain, node, reported_at FROM locations
       WHERE reported_at < $1 AND ($2::text IS NULL OR domain = $2)
       ORDER BY reported_at LIMIT $3)`,
    [cutoff, domain ?? null, batch],
  );
  return r.rowCount ?? 0;
}
