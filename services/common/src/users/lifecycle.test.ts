import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import { s3rverCredentials, startS3Server, type TestS3Server } from "../../../../test/support/s3-server.ts";
import { loadConfig } from "../config/load.ts";
import type { Storage } from "../media/storage.ts";
import { createStorage } from "../media/storage-registry.ts";
import type { Jid } from "./jid.ts";
import { buddyProblem, jidText, searchUsers, setDisabled, userSummary } from "./lifecycle.ts";
import { RemovalBusyError, RemovalIncompleteError, removeUserData } from "./lifecycle-removal.ts";
import { rowsOf, seedUser } from "./lifecycle-test-fixtures.ts";

/**
 * The user lifecycle of services/common against a real PostgreSQL and both storage backends (a directory, and
 * s3rver): a user with rows in every table and files in storage removed leaves nothing, a removal stopped by
 * the storage failing finishes when run again, disabling notifies every process.
 */

let db: TestDatabase;
let s3: TestS3Server;
const dirs: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  s3 = await startS3Server();
});
afterAll(async () => {
  await db.drop();
  await s3.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function fsStorage(): Promise<{ storage: Storage; root: string }> {
  const root = await mkdtemp(path.join(tmpdir(), "sidecars-lifecycle-"));
  dirs.push(root);
  return { storage: await createStorage({ kind: "fs", options: { root } }), root };
}

let buckets = 0;
async function s3Storage(): Promise<Storage> {
  const bucket = `lifecycle-${++buckets}`;
  const admin = new S3Client({
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3rverCredentials(),
  });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  return createStorage({
    kind: "s3",
    options: {
      bucket,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      prefix: "media/",
      credentials: s3rverCredentials(),
    },
  });
}

async function listed(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of storage.list()) keys.push(o.key);
  return keys.sort();
}

let users = 0;
/** A fresh phone-number JID of domain oyo.test. */
const nextJid = (): Jid => ({ node: `3069${String(++users).padStart(8, "0")}`, domain: "oyo.test" });

const nothingLeft = (rows: Record<string, number>) =>
  Object.fromEntries(Object.keys(rows).map((t) => [t, t === "user_removals" ? 1 : 0]));

describe.each([
  ["fs", async () => (await fsStorage()).storage],
  ["s3", s3Storage],
])("removing a user (%s storage)", (_name, makeStorage) => {
  it("removes every row of the user in every table and their files, and nothing of anyone else", async () => {
    const storage = await makeStorage();
    const gone = await seedUser(db.pool, storage, nextJid(), { locations: 50, pictures: 3 });
    const stays = await seedUser(db.pool, storage, nextJid(), { locations: 5, pictures: 1 });
    const before = await rowsOf(db.pool, gone);
    expect(before).toMatchObject({
      web_users: 1,
      push_tokens: 2,
      push_broadcast_deliveries: 1,
      push_channel_subscriptions: 2,
      push_notifications: 2,
      chat_mutes: 1,
      chat_mutes_of_them: 1,
      locations: 50,
      attachments: 10,
      avatars: 1,
      registration_challenges: 1,
      rate_limits: 2,
      user_removals: 0,
    });
    const bystander = await rowsOf(db.pool, stays);

    const result = await removeUserData(db.pool, storage, gone.jid, { attachments: "delete" });

    expect(result).toMatchObject({ status: "removed", resumed: false, attachments: "delete" });
    if (result.status !== "removed") throw new Error("not removed");
    expect(result.summary.files).toBe(gone.keys.length);
    expect(result.summary.rows).toMatchObject({
      locations: 50,
      attachments: 10,
      web_users: 1,
      rate_limits: 2,
    });
    const after = await rowsOf(db.pool, gone);
    expect(after).toEqual(nothingLeft(after));
    expect(await listed(storage)).toEqual([...stays.keys].sort());
    expect(await rowsOf(db.pool, stays)).toEqual(bystander);

    const record = await db.pool.query(
      "SELECT state, attachments, pending_keys, finished_at IS NOT NULL AS finished FROM user_removals WHERE domain = $1 AND node = $2",
      [gone.jid.domain, gone.jid.node],
    );
    expect(record.rows).toEqual([{ state: "done", attachments: "delete", pending_keys: [], finished: true }]);
    await storage.close();
  });

  it("anonymises the pictures and videos they sent when asked, and still deletes their avatar", async () => {
    const storage = await makeStorage();
    const user = await seedUser(db.pool, storage, nextJid(), { pictures: 2 });
    const result = await removeUserData(db.pool, storage, user.jid, { attachments: "anonymise" });
    if (result.status !== "removed") throw new Error("not removed");
    expect(result.summary.rows).toMatchObject({ attachments: 2, attachments_anonymised: 6 });

    const kept = await db.pool.query<{ name: string; node: string; original_name: string | null }>(
      "SELECT name, node, original_name FROM attachments WHERE name = ANY($1) ORDER BY name",
      [user.keys],
    );
    // two pictures and a video, each with its thumbnail or poster: owned by no one, without their names
    expect(kept.rows).toHaveLength(6);
    expect(kept.rows.every((r) => r.node === "" && r.original_name === null)).toBe(true);
    const avatarFiles = user.keys.filter((k) => !kept.rows.some((r) => r.name === k));
    expect(avatarFiles).toHaveLength(2);
    expect(avatarFiles).toContain(user.avatar);
    const stored = await listed(storage);
    for (const k of kept.rows) expect(stored).toContain(k.name);
    for (const k of avatarFiles) expect(stored).not.toContain(k);
    const after = await rowsOf(db.pool, user);
    expect(after).toEqual(nothingLeft(after));
    await db.pool.query("DELETE FROM attachments WHERE name = ANY($1)", [user.keys]);
    await storage.close();
  });
});

describe("a removal that stops half-way", () => {
  it("keeps the keys of the files it could not delete and finishes them when run again", async () => {
    const { storage, root } = await fsStorage();
    const user = await seedUser(db.pool, storage, nextJid(), { pictures: 4 });
    // the storage refuses one delete, as a full or read-only disk would: where that file was, a directory
    const stuck = user.keys[3] as string;
    const where = path.join(root, stuck.slice(0, 2), stuck);
    await rm(where);
    await mkdir(where);
    await writeFile(path.join(where, "in-the-way"), "x");

    const failed = await removeUserData(db.pool, storage, user.jid, { attachments: "delete" }).catch(
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(RemovalIncompleteError);
    expect((failed as RemovalIncompleteError).pending).toBe(1);
    expect((failed as Error).message).toMatch(
      /every row is removed, but 1 stored file\(s\) could not be deleted/,
    );
    // every row is gone already; the removal is recorded with the one key left
    const after = await rowsOf(db.pool, user);
    expect(after).toEqual(nothingLeft(after));
    const record = await db.pool.query(
      "SELECT state, pending_keys FROM user_removals WHERE domain = $1 AND node = $2",
      [user.jid.domain, user.jid.node],
    );
    expect(record.rows).toEqual([{ state: "files", pending_keys: [stuck] }]);
    expect(await listed(storage)).toEqual([]);
    expect((await userSummary(db.pool, user.jid)).removal).toMatchObject({ state: "files", pendingFiles: 1 });

    // the disk works again (and the file is there again): the same call finishes the same removal
    await rm(where, { recursive: true });
    await storage.put(stuck, Readable.from([Buffer.from("late")]), { contentType: "image/jpeg" });
    const again = await removeUserData(db.pool, storage, user.jid, { attachments: "anonymise" });
    expect(again).toMatchObject({ status: "removed", resumed: true, attachments: "delete" });
    expect(await listed(storage)).toEqual([]);
    const done = await db.pool.query(
      "SELECT state, pending_keys FROM user_removals WHERE domain = $1 AND node = $2",
      [user.jid.domain, user.jid.node],
    );
    expect(done.rows).toEqual([{ state: "done", pending_keys: [] }]);
    await storage.close();
  });

  it("refuses to run twice at once for one user", async () => {
    const { storage } = await fsStorage();
    const user = await seedUser(db.pool, storage, nextJid());
    const other = await db.pool.connect();
    try {
      await other.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [
        `user-removal:${jidText(user.jid)}`,
      ]);
      await expect(removeUserData(db.pool, storage, user.jid, { attachments: "delete" })).rejects.toThrow(
        RemovalBusyError,
      );
      expect((await rowsOf(db.pool, user)).web_users).toBe(1);
    } finally {
      await other.query("SELECT pg_advisory_unlock_all()");
      other.release();
    }
    expect(await removeUserData(db.pool, storage, user.jid, { attachments: "delete" })).toMatchObject({
      status: "removed",
    });
  });

  it("finds nothing to remove for a user of whom nothing is stored", async () => {
    const { storage } = await fsStorage();
    expect(await removeUserData(db.pool, storage, nextJid(), { attachments: "delete" })).toEqual({
      status: "not_found",
    });
  });
});

describe("buddies, disabling, searching", () => {
  it("names a buddy of the config file or of the buddies table, whose account is not removed from under it", async () => {
    const config = loadConfig({
      env: { APP_ENV: "test" },
      overrides: {
        domains: { "oyo.test": { buddies: ["zabbix"] } },
        buddies: {
          domains: {
            "oyo.test": {
              definitions: { echo: { kind: "echo", password: { file: "/dev/null" } } },
            },
          },
        },
      },
    });
    expect(await buddyProblem(db.pool, config, { node: "zabbix", domain: "oyo.test" })).toMatch(
      /is a buddy of the config file: remove it from domains\.oyo\.test\.buddies and reload first/,
    );
    expect(await buddyProblem(db.pool, config, { node: "echo", domain: "oyo.test" })).toMatch(
      /remove it from buddies\.domains\.oyo\.test\.definitions/,
    );
    await db.pool.query(
      `INSERT INTO buddies (domain, username, kind, password) VALUES ('oyo.test', 'weather', 'echo', '{"file":"/dev/null"}')`,
    );
    expect(await buddyProblem(db.pool, config, { node: "weather", domain: "oyo.test" })).toBe(
      "weather@oyo.test is a buddy added at runtime: run `sidecars buddies remove weather@oyo.test` first",
    );
    expect(await buddyProblem(db.pool, config, { node: "alice", domain: "oyo.test" })).toBeUndefined();
  });

  it("disables and enables an account, and tells every process at once (NOTIFY web_users_changed)", async () => {
    const { storage } = await fsStorage();
    const user = await seedUser(db.pool, storage, nextJid());
    const heard: string[] = [];
    const sub = db.listener.subscribe(["web_users_changed"], { onMessage: (_c, p) => heard.push(p) });
    try {
      await expect.poll(() => sub.connected(), { timeout: 5000 }).toBe(true);
      expect(await setDisabled(db.pool, user.jid, true)).toBe("disabled");
      const first = (await userSummary(db.pool, user.jid)).profile?.disabledAt;
      expect(first).toBeInstanceOf(Date);
      expect(await setDisabled(db.pool, user.jid, true)).toBe("unchanged");
      // disabled since the first time, not since the second
      expect((await userSummary(db.pool, user.jid)).profile?.disabledAt).toEqual(first);
      expect(await setDisabled(db.pool, user.jid, false)).toBe("enabled");
      expect((await userSummary(db.pool, user.jid)).profile?.disabledAt).toBeNull();
      expect(await setDisabled(db.pool, nextJid(), true)).toBe("unknown_user");
      const payload = JSON.stringify([user.jid.domain, user.jid.node]);
      const forUser = () => heard.filter((p) => JSON.stringify(JSON.parse(p)) === payload).length;
      await expect.poll(forUser, { timeout: 5000 }).toBe(3);
    } finally {
      sub.close();
    }
  });

  it("searches accounts by any part of their JID, in JID order", async () => {
    await db.pool.query(
      "INSERT INTO web_users (node, domain) VALUES ('findme-b', 'search.test'), ('findme-a', 'search.test'), ('other', 'search.test')",
    );
    const found = await searchUsers(db.pool, { search: "FindMe", limit: 10 });
    expect(found.map((u) => u.jid)).toEqual(["findme-a@search.test", "findme-b@search.test"]);
    expect(await searchUsers(db.pool, { search: "@search.test", limit: 1 })).toHaveLength(1);
  });
});
