import type { Readable } from "node:stream";
import { pluginDefiner } from "../plugins/definition.ts";
import type { PluginPoint } from "../plugins/registry.ts";

/**
 * Where attachment bytes live (docs/attachments.md "Storage backends"). A backend is chosen at startup by
 * `media.storage.kind` among the definitions of storage-registry.ts (fs-storage.ts, s3-storage.ts); every
 * backend takes keys made by `newKey()` and checked by `assertKey()` (keys.ts), so no caller-supplied text
 * ever becomes a path or an object name. This file is the contract only: it imports no backend.
 */
export interface StoredObject {
  key: string;
  size: number;
  modified: Date;
}

export interface ByteRange {
  /** first byte, inclusive */
  start: number;
  /** last byte, inclusive */
  end: number;
}

export interface Storage {
  readonly kind: string;
  /**
   * Streams `body` under `key` atomically: once the promise resolves the whole object is there; when the
   * stream errors (a size limit, a cut connection) or the process dies, nothing is under `key` and the
   * partial data is removed (or, after a crash, swept by `sweepPartial`).
   */
  put(key: string, body: Readable, info: PutInfo): Promise<void>;
  /** The object's bytes, or a range of them; rejects with `MissingObjectError` when there is none. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Size and last change, or undefined when there is no such object. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Removes the object; removing a missing one is not an error. */
  delete(key: string): Promise<void>;
  /** Every stored object (gc's orphan sweep). */
  list(): AsyncIterable<StoredObject>;
  /** Removes partial writes older than `olderThanMs` left by a crash; answers how many. */
  sweepPartial(olderThanMs: number): Promise<number>;
  /** The object's local file, for backends that have one (fs): ffmpeg and X-Accel-Redirect read it. */
  localPath?(key: string): string;
  /** Bytes an unprivileged writer may still use where objects are written (fs: statfs), for backends that know. */
  freeBytes?(): Promise<number>;
  close(): Promise<void>;
}

export interface PutInfo {
  contentType: string;
  /**
   * The caller guarantees that nothing reads `key` before `put` resolves and the caller records the object
   * (an XEP-0363 slot: its row says "pending" until then, and a second PUT to it is refused), so the backend
   * may write in place rather than beside and rename (fs: a directory entry and a journal commit less per
   * object). A crash may then leave part of an object under `key`; nothing serves it, and gc removes it with
   * its row or as an orphan. On a failed `put` nothing stays under `key`, as always.
   */
  fresh?: boolean;
}

export class MissingObjectError extends Error {
  override name = "MissingObjectError";
  readonly code = "ENOENT";
  constructor(key: string) {
    super(`no stored object ${key}`);
  }
}

/** The optional abilities of a backend: what the rest of the service does with them, and without. */
export type StorageCapability = "localPath" | "freeBytes";

export const storagePoint: PluginPoint<Storage, StorageCapability> = {
  name: "storage backend",
  docs: "docs/attachments.md",
  capabilities: {
    localPath: {
      summary: "local file path",
      lost: "videos get no poster (ffmpeg reads a file) and media.accelRedirect is not used (nginx sends files)",
      has: (s) => typeof s.localPath === "function",
    },
    freeBytes: {
      summary: "free space",
      lost: "media.freeSpaceReserveBytes is not enforced (the backend reports no free space)",
      has: (s) => typeof s.freeBytes === "function",
    },
  },
};

/** A backend's definition creates asynchronously: a backend may load its SDK only when it is chosen. */
export const defineStorage = pluginDefiner<StorageContext, Promise<Storage>, StorageCapability>();

/** Nothing yet: backends are configured by their options alone. */
export type StorageContext = Record<string, never>;
