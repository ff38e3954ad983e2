import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { benchDatabase } from "./bench-database.ts";
import type { Benchmark, Sample, Side } from "./frame.ts";
import { runMeasured } from "./process-cpu.ts";

/**
 * What the database can give a cluster of machines (issue 18 item 7, "what a second machine adds"): every
 * machine's workers share one PostgreSQL, so the requests per second of all machines together are bounded by
 * its throughput for the queries those requests make. pgbench (PostgreSQL's own load generator, in C) runs
 * the hot paths' statements, as the services send them, on a database of the benchmark's own with ROWS rows
 * per table; the baseline is `SELECT 1`, PostgreSQL's round trip alone. docs/operations.md "Scaling out"
 * divides these figures by the statements per request.
 */

const PGBENCH = "/usr/bin/pgbench";
/** Busy connections: a few workers' pools (database.poolMax is 20 per process in production). */
const CLIENTS = 16;
const ROWS = 100_000;
/** Owners of the attachments: ROWS / OWNERS videos each. */
const OWNERS = 10_000;
const DOMAIN = "pg.scaleout.bench";

/** The seed rows, in SQL: users `u<i>`, videos `n<i>` of `u<i % OWNERS>`, FCM tokens `t<i>` of `u<i>`. */
const SEED = [
  `INSERT INTO web_users (node, domain, token)
   SELECT 'u' || i, '${DOMAIN}', 'password-' || i FROM generate_series(1, ${ROWS}) AS i`,
  `INSERT INTO attachments (name, domain, node, kind, content_type, size, sha256, created_at)
   SELECT 'n' || i, '${DOMAIN}', 'u' || (i % ${OWNERS}), 'video', 'video/mp4', 1000 + i,
          sha256(convert_to(i::text, 'UTF8')), now() - i * interval '1 second'
   FROM generate_series(1, ${ROWS}) AS i`,
  `INSERT INTO push_tokens (service, token, app, domain, node)
   SELECT 'fcm', 't' || i, 'ScaleoutApp', '${DOMAIN}', 'u' || i FROM generate_series(1, ${ROWS}) AS i`,
  "ANALYZE",
];

const ATTACHMENT_COLUMNS =
  "name, parent, variant, domain, node, kind, original_name, content_type, size, sha256, width, height, created_at";

/** pgbench scripts: the statements of services/common/src/users/web-users.ts and attachments/store.ts. */
const SCRIPTS = {
  "SELECT 1": "SELECT 1;",
  // web_users.find: a check_password that verifies (cold, or the success cache expired), an app login not cached
  "web_users.find": `\\set i random(1, ${ROWS})
SELECT token, scram, disabled_at IS NOT NULL AS disabled FROM web_users WHERE domain = '${DOMAIN}' AND node = 'u' || :i;`,
  // attachments-find: a download whose name is not in the metadata cache yet
  "attachments-find": `\\set i random(1, ${ROWS})
SELECT ${ATTACHMENT_COLUMNS} FROM attachments WHERE name = 'n' || :i;`,
  // listAttachments: GET /api/v1/attachments/videos, a first page of 20 (10 rows each here)
  "videos list": `\\set i random(0, ${OWNERS - 1})
SELECT ${ATTACHMENT_COLUMNS} FROM attachments
 WHERE domain = '${DOMAIN}' AND node = 'u' || :i AND kind = 'video' AND parent IS NULL
   AND (NULL::timestamptz IS NULL OR (created_at, name) < (NULL::timestamptz, NULL::text))
 ORDER BY created_at DESC, name DESC LIMIT 21;`,
  // registerToken's shape (services/http-utility/src/push/token-store.ts): a transaction that locks the
  // token's row, upserts it and trims the owner's devices: a write, so a WAL flush per request
  "store_token (upsert)": `\\set i random(1, ${ROWS})
BEGIN;
SELECT domain, node FROM push_tokens WHERE service = 'fcm' AND token = 't' || :i FOR UPDATE;
INSERT INTO push_tokens AS p (service, token, app, domain, node) VALUES ('fcm', 't' || :i, 'ScaleoutApp', '${DOMAIN}', 'u' || :i)
 ON CONFLICT (service, token) DO UPDATE SET updated_at = now();
DELETE FROM push_tokens WHERE (service, token) IN (
 SELECT service, token FROM push_tokens WHERE domain = '${DOMAIN}' AND node = 'u' || :i AND app = 'ScaleoutApp'
 ORDER BY updated_at DESC OFFSET 10);
COMMIT;`,
} as const;

type Script = keyof typeof SCRIPTS;

interface PgbenchSample extends Sample {
  transactions: number;
}

/** One pgbench run of `script` for `durationS`, its CPU sampled as wrk.ts samples wrk's. */
async function pgbench(url: string, scriptFile: string, durationS: number): Promise<PgbenchSample> {
  const { code, out, cpuS } = await runMeasured(PGBENCH, [
    "-n",
    "-M",
    "prepared",
    "-c",
    String(CLIENTS),
    "-j",
    "1",
    "-T",
    String(Math.max(1, Math.round(durationS))),
    "-f",
    scriptFile,
    url,
  ]);
  const failed = /number of failed transactions: (\d+)/.exec(out)?.[1];
  const tps = /tps = ([\d.]+)/.exec(out)?.[1];
  const done = /number of transactions actually processed: (\d+)/.exec(out)?.[1];
  const latency = /latency average = ([\d.]+) ms/.exec(out)?.[1];
  if (code !== 0 || !tps || !done || (failed !== undefined && Number(failed) > 0)) {
    throw new Error(`pgbench exited ${code}:\n${out.slice(-2000)}`);
  }
  return {
    value: Number(tps),
    p50Ms: latency ? Number(latency) : undefined, // pgbench's average: no percentiles without a log
    transactions: Number(done),
    generatorCpuS: cpuS,
  };
}

export const benchmark: Benchmark = {
  name: "scaleout-database",
  figure: "statements/s",
  description:
    `PostgreSQL's throughput, pgbench ${CLIENTS} connections (prepared statements), ${ROWS} rows per table: ` +
    "web_users.find (a verified password check) vs SELECT 1; extras: attachments-find (an uncached " +
    "download), the videos list, a store_token-like upsert transaction (per transaction); the ceiling of all " +
    "machines' requests together, divided by statements per request (docs/operations.md, Scaling out)",
  async start(ctx) {
    if (!existsSync(PGBENCH))
      throw new Error(`${PGBENCH} is missing: apt-get install postgresql-client (Debian)`);
    const url = await benchDatabase(ctx, "bench_scaleout_pg_");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const sql of SEED) await client.query(sql);
    } finally {
      await client.end();
    }
    // no `pids`: pgbench's backends are born and gone within a measurement, so the frame's sampling of a
    // process list taken before it cannot see their CPU
    const dir = await mkdtemp(path.join(os.tmpdir(), "sidecars-bench-pgbench-"));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const side = async (label: Script, i: number): Promise<Side> => {
      const file = path.join(dir, `script-${i}.sql`);
      await writeFile(file, `${SCRIPTS[label]}\n`);
      return { label, measure: (durationS) => pgbench(url, file, durationS) };
    };
    const labels = Object.keys(SCRIPTS) as Script[];
    const [baseline, project, ...extras] = await Promise.all(labels.map(side));
    return { baseline: baseline as Side, project: project as Side, extras };
  },
};
