import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { MediaConfig } from "#common/config/media-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { newKey } from "#common/media/keys.ts";
import { MissingObjectError, type Storage } from "#common/media/storage.ts";
import { ImageError, type Images } from "./images.ts";
import type { LegacyFiles } from "./legacy-files.ts";
import { recordLegacyVariants } from "./legacy-store.ts";
import type { AttachmentRow, StoredFile } from "./store.ts";

/**
 * Thumbnails of imported legacy pictures and avatars, made on their first request (docs/attachments.md
 * "Importing legacy media"): decoded once on the image worker like an upload's, within the same slots and
 * queue (503 `images_busy` beyond it), stored in the storage backend as ordinary variants of the legacy row,
 * so every later request is a plain variant download. A legacy file larger than its kind's upload limit, or
 * one the image code refuses, gets none (404, one warning).
 */

export interface LegacyThumbnails {
  /** Makes and records the thumbnails of an imported picture or avatar when it has none yet. */
  make(row: AttachmentRow): Promise<void>;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

export function createLegacyThumbnails(deps: {
  pool: Pool;
  storage: Storage;
  images: Images;
  legacy: LegacyFiles;
  media: MediaConfig;
  log: Logger;
}): LegacyThumbnails {
  const { storage, media, log } = deps;
  /** one making per original in this process; other processes are settled by recordLegacyVariants' lock */
  const making = new Map<string, Promise<void>>();

  async function makeNow(row: AttachmentRow): Promise<void> {
    const kind = row.kind === "avatar" ? "avatar" : "picture";
    const limit = media.uploads[kind === "avatar" ? "avatars" : "pictures"].maxBytes;
    let data: Buffer | undefined;
    try {
      data = await deps.legacy.readAll(row, limit);
    } catch (err) {
      if (err instanceof MissingObjectError) return; // legacy-files.ts said why
      throw err;
    }
    if (!data) {
      log.warn(
        { name: row.name, size: row.size, limit },
        "legacy file larger than its kind's uploads: no thumbnails",
      );
      return;
    }
    let thumbnails: Awaited<ReturnType<Images["thumbnailsOf"]>>;
    try {
      thumbnails = await deps.images.thumbnailsOf(data, kind);
    } catch (err) {
      if (!(err instanceof ImageError)) throw err;
      log.warn({ name: row.name, reason: err.message }, "legacy file: no thumbnails");
      return;
    }
    const stored: Array<StoredFile & { variant: string }> = [];
    try {
      for (const t of thumbnails) {
        const name = newKey(t.extension);
        await storage.put(name, Readable.from([t.data]), { contentType: t.contentType });
        stored.push({
          name,
          variant: String(t.size),
          contentType: t.contentType,
          size: t.data.length,
          sha256: sha256(t.data),
          width: t.width,
          height: t.height,
        });
      }
      if (await recordLegacyVariants(deps.pool, row, stored)) return;
    } catch (err) {
      await removeAll(stored);
      throw err;
    }
    await removeAll(stored); // another process recorded its own first
  }

  async function removeAll(files: StoredFile[]) {
    await Promise.all(files.map((f) => storage.delete(f.name).catch(() => {})));
  }

  return {
    make(row) {
      const running = making.get(row.name);
      if (running) return running;
      const work = makeNow(row).finally(() => making.delete(row.name));
      making.set(row.name, work);
      return work;
    },
  };
}
