import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, statfs, unlink } from "node:fs/promises";
import path from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { fromRoot } from "../paths.ts";
import { assertKey, isKey } from "./keys.ts";
import {
  type ByteRange,
  defineStorage,
  MissingObjectError,
  type Storage,
  type StoredObject,
} from "./storage.ts";

/**
 * A directory (a shared NFS mount in a cluster, as in the legacy system). Objects live at
 * `<root>/<first two characters>/<key>`; a write goes to `<root>/.partial/` on the same file system, is
 * fsynced, then renamed into place and the directory fsynced (a rename is on disk only then: fsync(2)), so a
 * reader never sees half a file, a stored object survives a crash once `put` resolves, and a crash before
 * leaves only a partial file that `sweepPartial` removes. A `fresh` key (Storage.put) is written in place
 * instead, with the same flushes: its half file is never read, and one a crash leaves is gc's orphan or
 * goes with its pending row.
 */
const options = z
  .object({
    root: z.string().min(1).describe("directory of the stored files"),
    fsync: z
      .boolean()
      .default(true)
      .describe("flush each file to disk before it gets its name (off: faster, a power cut may lose it)"),
  })
  .strict();

const PARTIAL = ".partial";
/** The largest read of a download (see `get`): bounds the memory of each download in flight. */
const READ_CHUNK_MAX = 512 * 1024;

/**
 * A long write is flushed to disk as it goes (an fdatasync every 32 MiB, on the thread pool while the next
 * bytes arrive), so the fsync before the rename has only the tail left: 1 GiB would otherwise wait about half
 * a second at the end for the whole file to reach the disk.
 */
const SYNC_EVERY = 32 * 1024 * 1024;

function flushingAsItGoes(handle: FileHandle) {
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  const stage = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, done) {
      unsynced += chunk.length;
      if (unsynced >= SYNC_EVERY && !syncing) {
        unsynced = 0;
        // an error here is reported by the fsync at the end
        syncing = handle.datasync().then(
          () => {
            syncing = undefined;
          },
          () => {
            syncing = undefined;
          },
        );
      }
      done(null, chunk);
    },
  });
  return { stage, settled: () => syncing };
}

/** Flushes a directory's entries (a rename into it, a directory made in it) to disk. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Where a key lives under the root: also the path nginx appends in `X-Accel-Redirect` mode. */
export function relativePathOf(key: string): string {
  assertKey(key);
  return `${key.slice(0, 2)}/${key}`;
}

export default defineStorage({
  kind: "fs",
  summary: "a directory (a shared NFS mount in a cluster)",
  options,
  // the objects are files: ffmpeg reads videos in place, nginx sends them, statfs tells the free space
  capabilities: ["localPath", "freeBytes"],
  create: async (o) => openFsStorage(o),
});

function openFsStorage(o: z.output<typeof options>): Storage {
  const root = path.resolve(fromRoot(o.root));
  const durable = o.fsync;
  const partialDir = path.join(root, PARTIAL);
  // Directories known to exist (`.partial` and the shards): a mkdir less per write. One removed under us (an
  // operator cleaning up) fails the open or the rename with ENOENT, which forgets them all and makes it again.
  const made = new Set<string>();
  const ensureDir = async (dir: string) => {
    if (made.has(dir)) return;
    const created = await mkdir(dir, { recursive: true });
    // the names of new directories must reach the disk too, or a file renamed into one may be lost with it
    if (durable && created !== undefined) {
      for (let d = dir; ; d = path.dirname(d)) {
        await syncDir(path.dirname(d));
        if (d === created || d === path.dirname(d)) break;
      }
    }
    made.add(dir);
  };
  const retryOnceMade = async <T>(dir: string, work: () => Promise<T>): Promise<T> => {
    await ensureDir(dir);
    try {
      return await work();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      made.clear();
      await ensureDir(dir);
      return work();
    }
  };

  /** The file of a key; `assertKey` has already ruled out separators, dots and encodings. */
  function fileOf(key: string): string {
    const file = path.join(root, relativePathOf(key));
    // belt and braces: a key can never leave the root
    if (path.dirname(path.dirname(file)) !== root) throw new Error(`key ${key} escapes the storage root`);
    return file;
  }

  async function statOf(key: string): Promise<StoredObject | undefined> {
    try {
      const s = await stat(fileOf(key));
      return s.isFile() ? { key, size: s.size, modified: s.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  return {
    kind: "fs",

    async put(key, body: Readable, info) {
      const file = fileOf(key);
      const dir = path.dirname(file);
      // the body may fail (a size limit, a cut connection) before the pipeline below listens: without a
      // listener that error would be uncaught; the pipeline still sees it (`body.errored`)
      body.on("error", () => {});
      // A fresh key is written in place (no reader looks for it yet, see Storage.put): one name made, and its
      // directory's fsync finds it already on disk with the file's own. Any other goes to `.partial` and is
      // renamed over whatever the key holds only once it is whole and flushed (a content-hash name may already
      // be served). Opened here, not by the stream, so a missing directory is made and the open tried again
      // before a byte is read; "w" in place: a crash's leftover under a fresh key is nobody's.
      const target = info.fresh ? file : path.join(partialDir, `${randomBytes(12).toString("hex")}.part`);
      const handle = await retryOnceMade(path.dirname(target), () => open(target, info.fresh ? "w" : "wx"));
      // in place, the name is made by the open: its directory is flushed while the body arrives, not after
      const named = info.fresh && durable ? syncDir(dir) : undefined;
      named?.catch(() => {}); // awaited below; a failed write must not leave it unhandled
      try {
        // The stream owns the handle: with `flush` it fsyncs the file before it closes it (no second open to
        // flush), and the pipeline resolves only after that close. 4 MiB writes: a large upload reaches the
        // disk in a few hundred thread-pool writes, not thousands.
        const out = createWriteStream(target, {
          fd: handle,
          flush: durable,
          highWaterMark: 4 * 1024 * 1024,
        });
        if (durable) {
          const flush = flushingAsItGoes(handle);
          await pipeline(body, flush.stage, out);
          await flush.settled();
        } else {
          await pipeline(body, out);
        }
        if (target !== file) await retryOnceMade(dir, () => rename(target, file));
        // the new name reaches the disk before the caller answers that the object is stored
        if (named) await named;
        else if (durable) await syncDir(dir);
      } catch (err) {
        // closed by the stream already, unless it failed before: a FileHandle's close waits for its writes
        await handle.close().catch(() => {});
        await rm(target, { force: true });
        throw err;
      }
    },

    async get(key, range?: ByteRange) {
      const file = fileOf(key);
      // the size known (a stored file never changes), the stream reads it in chunks of up to READ_CHUNK_MAX
      // rather than fs streams' 64 KiB: a 1 MiB file is 2 reads and 2 socket writes instead of 16, and a
      // small one a single read of its own size
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === "ENOENT" ? new MissingObjectError(key) : err;
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      const highWaterMark = Math.min(Math.max(end - start + 1, 16 * 1024), READ_CHUNK_MAX);
      const stream = createReadStream(file, { start, end: Math.max(end, start), highWaterMark });
      // the open error (ENOENT) arrives as an event: wait for the open so a missing file is a rejection here
      await new Promise<void>((resolve, reject) => {
        stream.once("open", () => resolve());
        stream.once("error", (err: NodeJS.ErrnoException) =>
          reject(err.code === "ENOENT" ? new MissingObjectError(key) : err),
        );
      });
      return stream;
    },

    stat: statOf,

    async delete(key) {
      try {
        await unlink(fileOf(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    },

    async *list() {
      let shards: string[];
      try {
        shards = await readdir(root);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      for (const shard of shards) {
        if (shard === PARTIAL || shard.length !== 2) continue;
        let names: string[];
        try {
          names = await readdir(path.join(root, shard));
        } catch {
          continue;
        }
        for (const name of names) {
          if (!isKey(name) || name.slice(0, 2) !== shard) continue;
          const found = await statOf(name);
          if (found) yield found;
        }
      }
    },

    async sweepPartial(olderThanMs) {
      let names: string[];
      try {
        names = await readdir(partialDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
        throw err;
      }
      let removed = 0;
      const cutoff = Date.now() - olderThanMs;
      for (const name of names) {
        const file = path.join(partialDir, name);
        const s = await stat(file).catch(() => undefined);
        if (s && s.mtimeMs < cutoff) {
          await rm(file, { force: true });
          removed++;
        }
      }
      return removed;
    },

    localPath: fileOf,

    async freeBytes() {
      // the root may not exist before the first upload: its file system is the one it will be made on
      const s = await retryOnceMade(root, () => statfs(root));
      return s.bavail * s.bsize;
    },

    async close() {},
  };
}
