import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type { Logger } from "#common/logger.ts";
import { type ByteRange, MissingObjectError } from "#common/media/storage.ts";
import { fromRoot } from "#common/paths.ts";
import { legacyFileOf } from "./legacy-names.ts";
import type { AttachmentRow } from "./store.ts";

/**
 * The bytes of imported legacy files, read in place under `media.legacyRoot` (docs/attachments.md "Importing
 * legacy media"): never written, never deleted. A file is opened without following a symbolic link, and only
 * when it is still the file that was imported (a regular file of the recorded size and mtime): the answer's
 * Content-Length and ETag come from the row, so a file changed since (the legacy services writing again after
 * a way back) answers 404 with a warning to import again, never other bytes under the old ETag.
 */

export interface LegacyFiles {
  /** The file of an imported row, open and checked; rejects with MissingObjectError when it cannot be served. */
  open(row: AttachmentRow): Promise<FileHandle>;
  /** Its bytes, or a range of them. */
  read(row: AttachmentRow, range?: ByteRange): Promise<Readable>;
  /** Its bytes in memory when it has at most `maxBytes` (thumbnails are made from them), else undefined. */
  readAll(row: AttachmentRow, maxBytes: number): Promise<Buffer | undefined>;
}

/** Warnings remembered per process, so that a file asked for again and again is said once. */
const WARNED_MAX = 1000;

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function createLegacyFiles(deps: { legacyRoot: string | undefined; log?: Logger }): LegacyFiles {
  const root = deps.legacyRoot === undefined ? undefined : path.resolve(fromRoot(deps.legacyRoot));
  const warned = new Set<string>();
  function warn(what: string, fields: Record<string, unknown>, msg: string) {
    if (warned.has(what) || warned.size >= WARNED_MAX) return;
    warned.add(what);
    deps.log?.warn(fields, msg);
  }

  async function openRow(row: AttachmentRow): Promise<FileHandle> {
    const legacyPath = row.legacyPath ?? "";
    if (!root) {
      warn("", {}, "an imported legacy file was asked for, but media.legacyRoot is not set: it answers 404");
      throw new MissingObjectError(row.name);
    }
    const file = legacyFileOf(root, legacyPath);
    if (!file) {
      warn(row.name, { name: row.name, legacyPath }, "an imported row names no legacy file: it answers 404");
      throw new MissingObjectError(row.name);
    }
    let handle: FileHandle;
    try {
      handle = await open(file, FLAGS);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ELOOP" || code === "EACCES" || code === "ENOTDIR") {
        warn(row.name, { file, code }, "an imported legacy file cannot be opened: it answers 404");
        throw new MissingObjectError(row.name);
      }
      throw err;
    }
    try {
      const s = await handle.stat();
      if (!s.isFile() || s.size !== row.size || Math.floor(s.mtimeMs) !== row.created.getTime()) {
        warn(
          row.name,
          { file, size: s.size, mtime: s.mtime, imported: { size: row.size, mtime: row.created } },
          "a legacy file changed since it was imported: it answers 404 until `sidecars media import` runs again",
        );
        throw new MissingObjectError(row.name);
      }
      return handle;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  return {
    open: openRow,
    async read(row, range) {
      const handle = await openRow(row);
      // the stream closes the handle when it ends or is destroyed (a client gone)
      return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
    },
    async readAll(row, maxBytes) {
      if (row.size > maxBytes) return undefined;
      const handle = await openRow(row);
      try {
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    },
  };
}
