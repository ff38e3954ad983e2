import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type RetentionConfig, retentionSchema } from "#common/config/retention-schema.ts";
import { lastRetentionRuns } from "#common/retention-runs.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { eventually } from "../../../../test/support/eventually.ts";
import { recordingLogger } from "../../../../test/support/recording-logger.ts";
import { createJobQueue } from "../push/jobs.ts";
import { RELAY_QUEUE } from "../push/mongooseim/relay.ts";
import { BROADCAST_QUEUE } from "../push/send/broadcast.ts";
import { purgeExpired } from "./purge.ts";
import { RETENTION_QUEUE, startRetention } from "./schedule.ts";

/**
 * The retention purge against a real database: each table seeded with rows just past and just short of its
 * retention (an hour either side), marked in a column so that what remains can be named.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const retention: RetentionConfig = retentionSchema.parse({
  pushNotifications: "30d",
  broadcasts: "2w",
  registrationChallenges: "7d",
  rateLimits: "1d",
  smsBudgets: "30d",
  locations: "90d",
});
const H = 3_600_000;
const D = 24 * H;

/** `n` rows of each table `age` ms old, marked `mark` (node, domain, key or scope). */
async function seed(mark: "old" | "young", n: number, shift: number): Promise<void> {
  const q = (sql: string, ageMs: number) => db.pool.query(sql, [mark, n, `${ageMs} milliseconds`]);
  await q(
    `INSERT INTO push_notifications (id, domain, node, created_at)
     SELECT gen_random_uuid(), 'a.test', $1, now() - $3::interval FROM generate_series(1, $2)`,
    30 * D + shift,
  );
  await q(
    `WITH b AS (
       INSERT INTO push_broadcasts (id, domain, channel, message, state, created_at, finished_at)
       SELECT gen_random_uuid(), 'a.test', $1, '{}', 'done', now() - $3::interval, now() - $3::interval
       FROM generate_series(1, $2) RETURNING id)
     INSERT INTO push_broadcast_deliveries (broadcast_id, service, token, outcome)
     SELECT b.id, 'fcm', $1 || g, 'sent' FROM b, generate_series(1, 3) g`,
    14 * D + shift,
  );
  await q(
    `INSERT INTO registration_challenges (domain, node, app_name, app_version, code_expires_at, created_at)
     SELECT $1 || '.test', g::text, 'app', '1.0', now() - $3::interval, now() - $3::interval - interval '5 minutes'
     FROM generate_series(1, $2) g`,
    7 * D + shift,
  );
  await q(
    `INSERT INTO rate_limits (key, points, expire)
     SELECT $1 || ':' || g, 1, (extract(epoch FROM now() - $3::interval) * 1000)::bigint FROM generate_series(1, $2) g`,
    1 * D + shift,
  );
  await q(
    `INSERT INTO sms_budgets (scope, window_start, sent)
     SELECT $1 || g, now() - $3::interval, 1 FROM generate_series(1, $2) g`,
    30 * D + shift,
  );
  await q(
    `INSERT INTO locations (domain, node, reported_at, latitude, longitude, app_type, app_version)
     SELECT 'a.test', $1, now() - $3::interval - make_interval(secs => g), 1, 2, 'android', '1.0'
     FROM generate_series(1, $2) g`,
    90 * D + shift,
  );
}

/** The marks left in each table, counted: { push_notifications: { young: 3 }, … }. */
async function left(): Promise<Record<string, Record<string, number>>> {
  const r = await db.pool.query<{ t: string; mark: string; n: string }>(
    `SELECT 'push_notifications' t, node mark, count(*) n FROM push_notifications GROUP BY 2
     UNION ALL SELECT 'push_broadcasts', channel, count(*) FROM push_broadcasts GROUP BY 2
     UNION ALL SELECT 'push_broadcast_deliveries', regexp_replace(token, '\\d+$', ''), count(*)
       FROM push_broadcast_deliveries GROUP BY 2
     UNION ALL SELECT 'registration_challenges', split_part(domain, '.', 1), count(*) FROM registration_challenges GROUP BY 2
     UNION ALL SELECT 'rate_limits', split_part(key, ':', 1), count(*) FROM rate_limits GROUP BY 2
     UNION ALL SELECT 'sms_budgets', regexp_replace(scope, '\\d+$', ''), count(*) FROM sms_budgets GROUP BY 2
     UNION ALL SELECT 'locations', node, count(*) FROM locations GROUP BY 2`,
  );
  const out: Record<string, Record<string, number>> = {};
  for (const x of r.rows) out[x.t] = { ...out[x.t], [x.mark]: Number(x.n) };
  return out;
}

const everyTable = (old: number, young: number, deliveries = 3) => ({
  push_notifications: { old, young },
  push_broadcasts: { old, young },
  push_broadcast_deliveries: { old: old * deliveries, young: young * deliveries },
  registration_challenges: { old, young },
  rate_limits: { old, young },
  sms_budgets: { old, young },
  locations: { old, young },
});
const withoutOld = (t: ReturnType<typeof everyTable>) =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { young: v.young }]));

beforeEach(async () => {
  await db.pool.query(
    `TRUNCATE push_notifications, push_broadcasts, push_broadcast_deliveries, registration_challenges,
       rate_limits, sms_budgets, locations`,
  );
  await seed("old", 23, H);
  await seed("young", 11, -H);
  expect(await left()).toEqual(everyTable(23, 11));
});

describe("retention purge", () => {
  it("deletes exactly the rows past each retention, in batches, while the apps keep inserting", async () => {
    let inserting = true;
    let inserted = 0;
    const inserter = (async () => {
      while (inserting) {
        await db.pool.query(
          "INSERT INTO push_notifications (id, domain, node) VALUES (gen_random_uuid(), 'a.test', 'young')",
        );
        await db.pool.query(
          "INSERT INTO rate_limits (key, points, expire) VALUES ('young:' || gen_random_uuid(), 1, $1)",
          [Date.now() + 60_000],
        );
        inserted++;
      }
    })();
    const results = await purgeExpired(db.pool, retention, { batch: 5 });
    inserting = false;
    await inserter;
    expect(inserted).toBeGreaterThan(0);

    expect(results.map((r) => [r.kind, r.what, r.rows])).toEqual([
      ["pushNotifications", "push_notifications", 23],
      ["broadcasts", "push_broadcast_deliveries", 69],
      ["broadcasts", "push_broadcasts", 23],
      ["registrationChallenges", "registration_challenges", 23],
      ["rateLimits", "rate_limits", 23],
      ["smsBudgets", "sms_budgets", 23],
      ["locations", "locations", 23],
    ]);
    const expected = withoutOld(everyTable(23, 11));
    expected.push_notifications = { young: 11 + inserted };
    expected.rate_limits = { young: 11 + inserted };
    expect(await left()).toEqual(expected);
  });

  it("counts on a dry run what a run then deletes, deleting nothing", async () => {
    const dry = await purgeExpired(db.pool, retention, { dryRun: true });
    expect(await left()).toEqual(everyTable(23, 11));
    const real = await purgeExpired(db.pool, retention);
    expect(real.map((r) => [r.what, r.rows])).toEqual(dry.map((r) => [r.what, r.rows]));
    expect(dry.reduce((n, r) => n + r.rows, 0)).toBe(23 * 6 + 69);
    expect(await left()).toEqual(withoutOld(everyTable(23, 11)));
  });

  it("keeps every row of a kind whose retention is 0 or off", async () => {
    const keep = retentionSchema.parse({
      pushNotifications: 0,
      broadcasts: "off",
      registrationChallenges: "0",
      rateLimits: "0",
      smsBudgets: "0",
    });
    expect(await purgeExpired(db.pool, keep)).toEqual([]);
    expect(await left()).toEqual(everyTable(23, 11));
  });

  it("keeps a registration session whose retry window or send is still open", async () => {
    await db.pool.query(
      `UPDATE registration_challenges SET retry_until = now() + interval '1 minute'
       WHERE domain = 'old.test' AND node IN ('1', '2')`,
    );
    await purgeExpired(db.pool, retention);
    expect((await left()).registration_challenges).toEqual({ old: 2, young: 11 });
  });
});

describe("the scheduled purge", () => {
  it("is scheduled once on pg-boss, runs as a job, logs the counts, and sets the queues' job retention", async () => {
    const { log, lines } = recordingLogger();
    const boss = createJobQueue({ pool: db.pool, log });
    await boss.start();
    try {
      for (const queue of [BROADCAST_QUEUE, RELAY_QUEUE]) await boss.createQueue(queue);
      const config = { ...retention, jobs: "3d", schedule: "5 3 * * *" };
      await startRetention({ boss, pool: db.pool, log, retention: config });
      // a second process starting does not add a second schedule
      await startRetention({ boss, pool: db.pool, log, retention: config });
      const schedules = await boss.getSchedules(RETENTION_QUEUE);
      expect(schedules.map((s) => s.cron)).toEqual(["5 3 * * *"]);
      for (const queue of [BROADCAST_QUEUE, RELAY_QUEUE]) {
        expect((await boss.getQueue(queue))?.deleteAfterSeconds).toBe(3 * 86_400);
      }

      // the occurrence pg-boss would create at 03:05
      await boss.send(RETENTION_QUEUE, {});
      const done = await eventually(
        async () => lines.find((l) => l.msg === "retention purge done"),
        30_000,
        "the purge's log line",
      );
      expect(done.deleted).toEqual({
        push_notifications: 23,
        push_broadcast_deliveries: 69,
        push_broadcasts: 23,
        registration_challenges: 23,
        rate_limits: 23,
        sms_budgets: 23,
        locations: 23,
      });
      expect(await left()).toEqual(withoutOld(everyTable(23, 11)));
      // recorded for the operator console, with the same counts
      const runs = await lastRetentionRuns(db.pool);
      expect(runs[0]).toMatchObject({ trigger: "schedule", deleted: done.deleted, error: null });
    } finally {
      await boss.stop({ graceful: true, timeout: 5000 });
    }
  });
});
