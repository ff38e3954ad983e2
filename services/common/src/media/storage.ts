import type { Readable } from "node:stream";
import type { MediaConfig } from "../config/media-schema.ts";
import { StartupError } from "../errors.ts";
import { createFsStorage } from "./fs-storage.ts";
import { createS3Storage } from "./s3-storage.ts";

/**
 * Where attachment bytes live (architecture.md "Storage of media"). A backend is chosen at startup by
 * `media.storage.kind`; every backend takes keys made by `newKey()` and checked by `assertKey()` (keys.ts),
 * so no caller-supplied text ever becomes a path or an object name.
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
  put(key: string, body: Readable, info: { contentType: string }): Promise<void>;
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

export class MissingObjectError extends Error {
  override name = "MissingObjectError";
  readonly code = "ENOENT";
  constructor(key: string) {
    super(`no stored object ${key}`);
  }
}

export type StorageFactory = (options: Record<string, unknown>) => Storage | Promise<Storage>;

const BACKENDS: Record<MediaConfig["storage"]["kind"], StorageFactory> = {
  fs: createFsStorage,
  s3: createS3Storage,
};

/** Builds the configured backend; bad options stop the start with one line naming them. */
export async function createStorage(config: MediaConfig["storage"]): Promise<Storage> {
  const factory = BACKENDS[config.kind];
  try {
    return await factory(config.options);
  } catch (err) {
    if (err instanceof StartupError) throw err;
    throw new StartupError(`media.storage (${config.kind}): ${(err as Error).message}`);
  }
}
