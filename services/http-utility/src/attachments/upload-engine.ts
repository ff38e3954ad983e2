import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Request } from "express";
import { fileTypeFromBuffer } from "file-type";
import type { StorageEngine } from "multer";
import type { MediaConfig, UploadKind } from "#common/config/media-schema.ts";
import type { Logger } from "#common/logger.ts";
import { newKey } from "#common/media/keys.ts";
import { releaseBuffers } from "#common/media/release-buffers.ts";
import type { Storage } from "#common/media/storage.ts";
import { StreamHash } from "#common/media/stream-hash.ts";
import { fromRoot } from "#common/paths.ts";
import { errors } from "../errors.ts";
import type { FreeSpaceCheck } from "./free-space.ts";
import { type EncodedImage, ImageError, type ImageErrorCode, type Images, readHeader } from "./images.ts";
import type { StoredFile } from "./store.ts";
import { acceptType } from "./upload-policy.ts";
import type { createPosterMaker } from "./video-poster.ts";

/**
 * The multer storage engine of attachments: each file is streamed, never held whole. Its first bytes decide
 * its type; a counting, hashing stage enforces the size limit before anything is committed; videos go
 * straight to the storage backend (atomic there), images to a local scratch file that sharp decodes once
 * into the stored original and its thumbnails. On any failure nothing stays under a final name.
 */

export interface UploadedAttachment extends StoredFile {
  originalName: string;
  variants: Array<StoredFile & { variant: string }>;
}

export interface EngineDeps {
  storage: Storage;
  images: Images;
  posters: ReturnType<typeof createPosterMaker>;
  media: MediaConfig;
  log: Logger;
}

const WHAT: Record<UploadKind, string> = { pictures: "pictures", avatars: "avatars", videos: "videos" };

/** An image refused for what it is (images.ts): the sender's problem, answered with its catalogue entry. */
const IMAGE_REFUSALS: Record<ImageErrorCode, (problem: string) => Error> = {
  image_too_large: errors.imageTooLarge,
  invalid_image: errors.invalidImage,
};

/**
 * Counts what passes, and hashes it when asked (videos: images are hashed as stored, after re-encoding);
 * errors (so nothing is committed) once more than `limit` bytes passed.
 */
class Metered extends Transform {
  // not `size`: the S3 upload library reads a Body's `size` as its length, and planned zero parts for a video
  // of several (every video over one part, 5 MiB, failed on s3)
  bytes = 0;
  readonly hash: StreamHash | undefined;
  private readonly limit: number;
  private readonly what: string;
  constructor(limit: number, what: string, hash: boolean) {
    super({ highWaterMark: 1024 * 1024 });
    this.limit = limit;
    this.what = what;
    this.hash = hash ? new StreamHash() : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(errors.fileTooLarge(this.what, this.limit));
      return;
    }
    releaseBuffers(chunk.length);
    const behind = this.hash?.update(chunk);
    if (behind) behind.then(() => done(null, chunk), done);
    else done(null, chunk);
  }
  override _destroy(err: Error | null, done: (err: Error | null) => void) {
    if (err) this.hash?.abort();
    done(err);
  }
}

/** Bytes enough for file-type to recognise every format it knows (its `reasonableDetectionSizeInBytes`). */
const SNIFF_BYTES = 4100;

/**
 * Reads the first `bytes` of a stream without consuming them: they are put back (`unshift`), or, when the
 * whole file was shorter, handed on in a fresh stream.
 */
export function peek(stream: Readable, bytes: number): Promise<{ head: Buffer; body: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const cleanup = () => {
      stream.off("readable", onReadable);
      stream.off("end", onEnd);
      stream.off("error", onError);
    };
    const onReadable = () => {
      while (length < bytes) {
        const chunk = stream.read() as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        length += chunk.length;
      }
      if (length >= bytes) {
        cleanup();
        const head = Buffer.concat(chunks);
        stream.unshift(head);
        resolve({ head, body: stream });
      }
    };
    const onEnd = () => {
      cleanup();
      const head = Buffer.concat(chunks);
      resolve({ head, body: Readable.from([head]) });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    stream.on("readable", onReadable);
    stream.once("end", onEnd);
    stream.once("error", onError);
  });
}

/**
 * `source` through `metered`. The part's own stream is piped, never handed to `pipeline`: an error of ours
 * (the size limit) must not destroy it, because multer takes a part's stream error as the end of that file
 * and answers at once, before our cleanup (the backend's partial file, the scratch file) has run. Errors of
 * the source (a cut connection) still reach `metered`; `_handleFile` drains the source after a failure.
 */
function metering(source: Readable, metered: Metered): Metered {
  source.once("error", (err) => metered.destroy(err));
  // Whoever reads `metered` (the backend's write) learns of its errors from the stream itself, also of one
  // that came before it listened (fs storage awaits a mkdir first; a small file is all there by then): this
  // listener only keeps such an early error from being an uncaught exception that ends the process.
  metered.on("error", () => {});
  source.pipe(metered);
  return metered;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

export function createUploadEngine(
  kind: UploadKind,
  deps: EngineDeps,
  checks: { freeSpace?: FreeSpaceCheck } = {},
): StorageEngine {
  const limits = deps.media.uploads[kind];
  const what = WHAT[kind];
  const tmpDir = fromRoot(deps.media.tmpDir);
  const settings = deps.media.images;
  /** pixels the images of each request have declared so far (`media.images.requestPixels`) */
  const declaredPixels = new WeakMap<Request, number>();

  /**
   * Reads an image's header (no decoding) and counts its pixels against its request's budget: ten 40 MP
   * images in one request are refused before most of them are decoded.
   */
  async function admit(req: Request, input: string): Promise<void> {
    const header = await readHeader(
      input,
      kind === "avatars" ? "avatar" : "picture",
      settings.maxPixels,
      settings.maxStoredPixels,
    );
    const total = (declaredPixels.get(req) ?? 0) + header.pixels;
    declaredPixels.set(req, total);
    if (total > settings.requestPixels) throw errors.requestPixelsExceeded(settings.requestPixels, total);
  }

  /** Puts a buffer under a fresh name: originals and thumbnails made from images. */
  async function putImage(image: EncodedImage): Promise<StoredFile> {
    const name = newKey(image.extension);
    await deps.storage.put(name, Readable.from([image.data]), { contentType: image.contentType });
    return {
      name,
      contentType: image.contentType,
      size: image.data.length,
      sha256: sha256(image.data),
      width: image.width,
      height: image.height,
    };
  }

  async function removeAll(files: StoredFile[]) {
    await Promise.all(files.map((f) => deps.storage.delete(f.name).catch(() => {})));
  }

  /** Stores the images derived from `input`; on a failure half-way, removes what it stored. */
  async function storeImages(req: Request, input: string, original: string): Promise<UploadedAttachment> {
    const processed = await admit(req, input)
      .then(() => deps.images.process(input, kind === "avatars" ? "avatar" : "picture"))
      .catch((err) => {
        // a broken image or a decompression bomb is the sender's problem, said as such
        if (err instanceof ImageError) throw IMAGE_REFUSALS[err.code](err.message);
        throw err;
      });
    // the original and its thumbnails are written at once, each waiting on its own fsync; when one fails,
    // the others are let finish and removed, so nothing stays behind
    const images = [processed.original, ...processed.thumbnails];
    const results = await Promise.allSettled(images.map((image) => putImage(image)));
    const stored = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      await removeAll(stored);
      throw failed.reason;
    }
    const [main, ...thumbnails] = stored as [StoredFile, ...StoredFile[]];
    const variants = thumbnails.map((v, i) => ({ ...v, variant: String(processed.thumbnails[i]?.size) }));
    return { ...main, originalName: original, variants };
  }

  /** A video's poster thumbnails, when ffmpeg and a local file are there; never fails the upload. */
  async function posterOf(name: string): Promise<Array<StoredFile & { variant: string }>> {
    const file = deps.storage.localPath?.(name);
    if (!file) return [];
    const frame = await deps.posters.poster(file);
    if (!frame) return [];
    const stored: Array<StoredFile & { variant: string }> = [];
    try {
      for (const t of await deps.images.thumbnailsOf(frame)) {
        stored.push({ ...(await putImage(t)), variant: String(t.size) });
      }
      return stored;
    } catch (err) {
      deps.log.warn({ err, name }, "video poster not stored");
      await removeAll(stored);
      return [];
    }
  }

  async function handle(req: Request, file: Express.Multer.File): Promise<UploadedAttachment> {
    const { head, body: typed } = await peek(file.stream, SNIFF_BYTES);
    let accepted: ReturnType<typeof acceptType>;
    try {
      accepted = acceptType(await fileTypeFromBuffer(head), file.mimetype, limits.types, what);
      // other uploads may have used the space since the request began: looked at again for every file
      await checks.freeSpace?.(0);
    } catch (err) {
      typed.resume(); // the rest of this part is read and dropped; multer drains the request
      throw err;
    }
    const metered = new Metered(limits.maxBytes, what, kind === "videos");
    const originalName = file.originalname ?? "";

    if (kind === "videos") {
      const name = newKey(accepted.extension);
      // the meter's errors (the size limit) and the source's (a cut connection) fail the backend's write,
      // which then removes what it wrote
      await deps.storage.put(name, metering(typed, metered), { contentType: accepted.contentType });
      let sha256: string;
      try {
        sha256 = await (metered.hash as StreamHash).digest();
      } catch (err) {
        await deps.storage.delete(name);
        throw err;
      }
      const main: StoredFile = { name, contentType: accepted.contentType, size: metered.bytes, sha256 };
      return { ...main, originalName, variants: await posterOf(name) };
    }

    await mkdir(tmpDir, { recursive: true });
    const scratch = path.join(tmpDir, `${randomBytes(12).toString("hex")}.upload`);
    try {
      await pipeline(metering(typed, metered), createWriteStream(scratch, { flags: "wx" }));
      return await storeImages(req, scratch, originalName);
    } finally {
      await rm(scratch, { force: true });
    }
  }

  return {
    _handleFile(
      req: Request,
      file: Express.Multer.File,
      cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void,
    ) {
      handle(req, file).then(
        (info) => cb(null, { attachment: info } as Partial<Express.Multer.File>),
        (err) => {
          file.stream.resume();
          cb(err);
        },
      );
    },
    _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void) {
      const info = (file as { attachment?: UploadedAttachment }).attachment;
      if (!info) {
        cb(null);
        return;
      }
      removeAll([info, ...info.variants]).then(() => cb(null), cb);
    },
  };
}

export const attachmentOf = (file: Express.Multer.File): UploadedAttachment => {
  const info = (file as { attachment?: UploadedAttachment }).attachment;
  if (!info) throw new Error("upload engine: a file without its stored attachment");
  return info;
};
