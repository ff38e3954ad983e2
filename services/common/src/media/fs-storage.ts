import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, fdatasync } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, statfs, unlink } from "node:fs/promises";
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
 * fsynced, then renamed into place, so a reader never sees half a file and a crash leaves only a partial
 * file that `sweepPartial` removes.
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

/**
 * A long write is flushed to disk as it goes (an fdatasync every 32 MiB, on the thread pool while the next
 * bytes arrive), so the fsync before the rename has only the tail left: 1 GiB would otherwise wait about half
 * a second at the end for the whole file to reach the disk.
 */
const SYNC_EVERY = 32 * 1024 * 1024;

function flushingAsItGoes(out: ReturnType<typeof createWriteStream>) {
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  const stage = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, done) {
      unsynced += chunk.length;
      // the descriptor WriteStream opened (public since Node 0.x, missing from @types/node)
      const fd = (out as unknown as { fd: number | null }).fd;
      if (unsynced >= SYNC_EVERY && !syncing && typeof fd === "number") {
        unsynced = 0;
        // an error here (the file already closed) only means there is nothing left to flush early
        syncing = new Promise<void>((resolve) => fdatasync(fd, () => resolve())).then(() => {
          syncing = undefined;
        });
      }
      done(null, chunk);
    },
  });
  return { stage, settled: () => syncing };
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
  // shard directories known to exist: a mkdir less per write (one removed under us is made again)
  const made = new Set<string>();
  const ensureDir = async (dir: string) => {
    if (made.has(dir)) return;
    await mkdir(dir, { recursive: true });
    made.add(dir);
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

    async put(key, body: Readable) {
      const file = fileOf(key);
      // the body may fail (a size limit, a cut connection) before the pipeline below listens: without a
      // listener that error would be uncaught; the pipeline still sees it (`body.errored`)
      body.on("error", () => {});
      await mkdir(partialDir, { recursive: true });
      const partial = path.join(partialDir, `${randomBytes(12).toString("hex")}.part`);
      try {
        // 4 MiB writes: a large upload reaches the disk in a few hundred thread-pool writes, not thousands
        const out = createWriteStream(partial, { flags: "wx", highWaterMark: 4 * 1024 * 1024 });
        if (durable) {
          const flush = flushingAsItGoes(out);
          await pipeline(body, flush.stage, out);
          await flush.settled();
          const handle = await open(partial, "r");
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
        } else {
          await pipeline(body, out);
        }
        await ensureDir(path.dirname(file));
        await rename(partial, file).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
          made.clear(); // someone removed a directory under us (an operator cleaning up): make it again
          await ensureDir(path.dirname(file));
          await rename(partial, file);
        });
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
    },

    async get(key, range?: ByteRange) {
      const file = fileOf(key);
      const stream = createReadStream(file, range ? { start: range.start, end: range.end } : {});
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
      await mkdir(root, { recursive: true });
      const s = await statfs(root);
      return s.bavail * s.bsize;
    },

    async close() {},
  };
}
