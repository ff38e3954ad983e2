import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import { releaseBuffers } from "#common/media/release-buffers.ts";
import type { Storage } from "#common/media/storage.ts";
import { StreamHash } from "#common/media/stream-hash.ts";
import { errors } from "../errors.ts";

/**
 * An XEP-0363 body into the storage backend, byte for byte (never decoded, re-encoded or sniffed): exactly
 * `length` bytes (the signed Content-Length) or nothing is stored, hashed on the hashing worker on the way
 * (stream-hash.ts), as the app uploads' video path does (attachments/upload-engine.ts). A small file (most
 * XEP-0363 files: photos, voice messages) is hashed on the event loop instead: a few milliseconds of hashing
 * cost less than the worker's four 1 MiB buffers per upload and their trips (measured with 1 MiB files,
 * test/bench/xep0363-put.bench.ts).
 */

/** Up to this size a body is hashed inline. */
const INLINE_HASH_BYTES = 4 * 1024 * 1024;

interface Hasher {
  update(chunk: Buffer): Promise<void> | undefined;
  digest(): Promise<string>;
  abort(): void;
}

function inlineHash(): Hasher {
  const hash: Hash = createHash("sha256");
  return {
    update(chunk) {
      hash.update(chunk);
      return undefined;
    },
    digest: async () => hash.digest("hex"),
    abort() {},
  };
}
class Exact extends Transform {
  bytes = 0;
  readonly hash: Hasher;
  private readonly length: number;
  constructor(length: number) {
    super({ highWaterMark: 1024 * 1024 });
    this.length = length;
    this.hash = length <= INLINE_HASH_BYTES ? inlineHash() : new StreamHash();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
    this.bytes += chunk.length;
    if (this.bytes > this.length) {
      done(errors.xmppSizeMismatch(this.length, this.bytes));
      return;
    }
    releaseBuffers(chunk.length);
    const behind = this.hash.update(chunk);
    if (behind) behind.then(() => done(null, chunk), done);
    else done(null, chunk);
  }
  override _flush(done: TransformCallback) {
    done(this.bytes === this.length ? null : errors.xmppIncomplete(this.length, this.bytes));
  }
  override _destroy(err: Error | null, done: (err: Error | null) => void) {
    if (err) this.hash.abort();
    done(err);
  }
}

/** Stores `body` under `name`; answers its SHA-256 (hex). Nothing stays under `name` when it fails. */
export async function receive(
  storage: Storage,
  body: Readable,
  o: { name: string; length: number; contentType: string },
): Promise<string> {
  const exact = new Exact(o.length);
  // a cut connection fails the write, which removes what it wrote (Storage.put's contract)
  body.once("error", (err) => exact.destroy(err));
  body.once("aborted", () => exact.destroy(errors.xmppIncomplete(o.length, exact.bytes)));
  exact.on("error", () => {}); // seen by the backend's write; this keeps an early one from being uncaught
  body.pipe(exact);
  // a slot's name is read only once its row is complete (slot-store.ts): the backend may write it in place
  await storage.put(o.name, exact, { contentType: o.contentType, fresh: true });
  try {
    return await exact.hash.digest();
  } catch (err) {
    await storage.delete(o.name);
    throw err;
  }
}
