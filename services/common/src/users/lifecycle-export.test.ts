import { createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { buffer, text } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yauzl from "yauzl";
import { sha256 } from "../../../../test/support/bytes.ts";
import { createTestDatabase, type TestDatabase } from "../../../../test/support/database.ts";
import type { Storage } from "../media/storage.ts";
import { createStorage } from "../media/storage-registry.ts";
import { setDisabled } from "./lifecycle.ts";
import { EXPORT_FORMAT, exportUserJson, hasUserData, writeUserZip } from "./lifecycle-export.ts";
import { type SeededUser, seedUser } from "./lifecycle-test-fixtures.ts";

/**
 * A user's export: the JSON document (everything of theirs, no password material) and the zip with their files,
 * read back with yauzl; and the time both take for a user with 10 000 locations and 500 attachments.
 */

let db: TestDatabase;
let storage: Storage;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), "sidecars-export-"));
  storage = await createStorage({ kind: "fs", options: { root: path.join(dir, "media") } });
});
afterAll(async () => {
  await storage.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

/** Every entry of a zip file: name → bytes. */
function readZip(file: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const entries = new Map<string, Buffer>();
      zip.on("error", reject);
      zip.on("end", () => resolve(entries));
      zip.on("entry", (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          buffer(stream).then((b) => {
            entries.set(entry.fileName, b);
            zip.readEntry();
          }, reject);
        });
      });
      zip.readEntry();
    });
  });
}

async function zipOf(user: SeededUser, withFiles: boolean): Promise<{ file: string; ms: number }> {
  const file = path.join(dir, `${user.jid.node}-${withFiles}.zip`);
  const started = performance.now();
  await writeUserZip(db.pool, withFiles ? storage : undefined, user.jid, createWriteStream(file));
  return { file, ms: performance.now() - started };
}

interface Exported {
  format: string;
  jid: string;
  account: Record<string, unknown>;
  registrations: Record<string, unknown>[];
  pushTokens: { service: string; token: string }[];
  channelSubscriptions: { channel: string }[];
  mutedChats: { peer: string }[];
  notifications: unknown[];
  avatar: { name: string; file?: string | null };
  attachments: { name: string; thumbnailOf?: string; sha256: string; file?: string | null }[];
  locations: { reportedAt: string; latitude: number }[];
}

describe("exporting a user", () => {
  it("writes everything of theirs as one JSON document, with no password material", async () => {
    const user = await seedUser(
      db.pool,
      storage,
      { node: "306911110001", domain: "oyo.test" },
      { locations: 7 },
    );
    await setDisabled(db.pool, user.jid, true);
    const raw = await text(exportUserJson(db.pool, user.jid));
    const doc = JSON.parse(raw) as Exported;

    expect(doc).toMatchObject({
      format: EXPORT_FORMAT,
      jid: "306911110001@oyo.test",
      account: { node: "306911110001", domain: "oyo.test", passwordKeptAs: ["scram"] },
    });
    expect(typeof doc.account.disabledAt).toBe("string");
    expect(doc.registrations).toHaveLength(1);
    expect(Object.keys(doc.registrations[0] ?? {})).not.toContain("code_hash");
    // the device tokens themselves: they are the user's data
    expect(doc.pushTokens.map((t) => t.token).sort()).toEqual(user.tokens.map((t) => t.token).sort());
    expect(doc.channelSubscriptions.map((c) => c.channel)).toEqual(["news", "sports"]);
    expect(doc.mutedChats.map((m) => m.peer)).toEqual(["peer-of-306911110001@oyo.test"]);
    expect(doc.notifications).toHaveLength(2);
    expect(doc.avatar.name).toBe(user.avatar);
    expect(doc.attachments).toHaveLength(user.keys.length);
    for (const [name, bytes] of user.originals) {
      expect(doc.attachments.find((a) => a.name === name)?.sha256).toBe(sha256(bytes));
    }
    expect(doc.locations).toHaveLength(7);
    expect(doc.locations[0]).toMatchObject({ reportedAt: "2025-01-01T00:00:01.000Z", latitude: 37.900001 });

    // nothing of the password: not the password, not the SCRAM data, not the word's hash
    const row = await db.pool.query<{ scram: Record<string, { salt: string; storedKey: string }> }>(
      "SELECT scram FROM web_users WHERE node = $1",
      [user.jid.node],
    );
    expect(raw).not.toContain(user.password);
    for (const entry of Object.values(row.rows[0]?.scram ?? {})) {
      if (typeof entry !== "object") continue;
      expect(raw).not.toContain(entry.salt);
      expect(raw).not.toContain(entry.storedKey);
    }
  });

  it("writes a zip of data.json and the files of their attachments and avatar", async () => {
    const user = await seedUser(
      db.pool,
      storage,
      { node: "306911110002", domain: "oyo.test" },
      { pictures: 3 },
    );
    const { file } = await zipOf(user, true);
    const entries = await readZip(file);
    const names = [...user.originals.keys()].map((n) => `files/${n}`).sort();
    expect([...entries.keys()]).toEqual(["data.json", ...names]);
    for (const [name, bytes] of user.originals) {
      expect(sha256(entries.get(`files/${name}`) ?? Buffer.alloc(0)), name).toBe(sha256(bytes));
    }
    const doc = JSON.parse((entries.get("data.json") as Buffer).toString("utf8")) as Exported;
    expect(doc.avatar.file).toBe(`files/${user.avatar}`);
    for (const a of doc.attachments) {
      // originals name their file in the archive; thumbnails, derived from them, are not in it
      expect(a.file).toBe(a.thumbnailOf ? undefined : `files/${a.name}`);
    }

    // a row whose file is gone from storage: listed with "file": null, the archive still whole
    const lost = [...user.originals.keys()][0] as string;
    await storage.delete(lost);
    const again = await readZip((await zipOf(user, true)).file);
    expect(again.has(`files/${lost}`)).toBe(false);
    const doc2 = JSON.parse((again.get("data.json") as Buffer).toString("utf8")) as Exported;
    expect(doc2.attachments.find((a) => a.name === lost)?.file).toBeNull();

    // without files: data.json alone, whose attachments name no file
    const bare = await readZip((await zipOf(user, false)).file);
    expect([...bare.keys()]).toEqual(["data.json"]);
  });

  it("knows when there is nothing of a user to export", async () => {
    expect(await hasUserData(db.pool, { node: "306911119999", domain: "oyo.test" })).toBe(false);
  });

  it("exports a user with 10 000 locations and 500 attachments (times printed)", async () => {
    const user = await seedUser(
      db.pool,
      storage,
      { node: "306911110003", domain: "oyo.test" },
      { locations: 10_000, pictures: 500, fileBytes: 20 * 1024 },
    );
    let started = performance.now();
    const raw = await text(exportUserJson(db.pool, user.jid));
    const jsonMs = performance.now() - started;
    const doc = JSON.parse(raw) as Exported;
    expect(doc.locations).toHaveLength(10_000);
    // keyset pages neither repeat nor skip a row (the dates carry microseconds)
    expect(new Set(doc.locations.map((l) => l.reportedAt)).size).toBe(10_000);
    expect(doc.attachments.filter((a) => !a.thumbnailOf)).toHaveLength(502);

    const zipped = await zipOf(user, true);
    const entries = await readZip(zipped.file);
    expect(entries.size).toBe(1 + 502);
    started = performance.now();
    const bare = await zipOf(user, false);
    console.info(
      `export of 10 000 locations and 500 attachments (+ a video and an avatar): JSON ${Math.round(jsonMs)} ms (${(raw.length / 1048576).toFixed(1)} MiB); ` +
        `zip with 502 files of 20 KiB ${Math.round(zipped.ms)} ms (${((await stat(zipped.file)).size / 1048576).toFixed(1)} MiB); ` +
        `zip without files ${Math.round(bare.ms)} ms`,
    );
  });
});
