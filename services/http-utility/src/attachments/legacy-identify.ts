import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import path from "node:path";
import { fileTypeFromBuffer } from "file-type";
import { IMAGE_TYPES, VIDEO_TYPES } from "#common/config/media-schema.ts";
import { contentTypeOf, ImageError, readHeader } from "./images.ts";
import { LEGACY_DIRS, type LegacyDir } from "./legacy-names.ts";
import type { LegacyFile } from "./legacy-store.ts";

/**
 * What one legacy file is (legacy-import.ts): opened without following a link, still the file that was
 * stat'ed, typed from its bytes (file-type's magic numbers for the family, as uploads are; for pictures and
 * avatars sharp's reading of the header, which gives the served type and the dimensions) and hashed as a
 * stream. Whatever makes it unservable is answered as a problem with its reason, never thrown.
 */

export type ProblemReason =
  | "unsafe_name"
  | "name_taken"
  | "not_a_file"
  | "unexpected_entry"
  | "unreadable"
  | "empty"
  | "unknown_type"
  | "unsupported_type"
  | "invalid_image";

export interface ImportProblem {
  /** relative to the legacy root */
  path: string;
  reason: ProblemReason;
  detail: string;
}

export interface LegacyEntry {
  dir: LegacyDir;
  name: string;
  /** `<dir>/<name>` */
  path: string;
}

export type Identified = { file: LegacyFile } | { problem: ImportProblem };

export const problem = (
  entry: { path: string },
  reason: ProblemReason,
  detail: string,
): { problem: ImportProblem } => ({
  problem: { path: entry.path, reason, detail },
});

/** file-type's `reasonableDetectionSizeInBytes`, as uploads sniff (upload-engine.ts) */
const SNIFF_BYTES = 4100;
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Imported originals are served as they are: no pixel limit applies to reading their header. */
const NO_LIMIT = Number.MAX_SAFE_INTEGER;
const IMAGE_MIMES: readonly string[] = IMAGE_TYPES;
const VIDEO_MIMES: readonly string[] = VIDEO_TYPES;

/** The row of a legacy file (its SHA-256 empty without `hash`: a dry run), or why it cannot be served. */
export async function identifyLegacyFile(
  root: string,
  entry: LegacyEntry,
  seen: Stats,
  o: { hash: boolean },
): Promise<Identified> {
  const file = path.join(root, entry.path);
  let handle: FileHandle;
  try {
    handle = await open(file, FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") return problem(entry, "not_a_file", "a symbolic link: links are not followed");
    return problem(entry, "unreadable", code ?? String(err));
  }
  try {
    const s = await handle.stat();
    if (!s.isFile() || s.ino !== seen.ino || s.dev !== seen.dev) {
      return problem(entry, "unreadable", "replaced while it was imported: run the import again");
    }
    const head = Buffer.alloc(Math.min(SNIFF_BYTES, s.size));
    await handle.read(head, 0, head.length, 0);
    const type = await fileTypeFromBuffer(head);
    const kind = LEGACY_DIRS[entry.dir];
    if (!type) return problem(entry, "unknown_type", "its first bytes are of no known type");
    const allowed = kind === "video" ? VIDEO_MIMES : IMAGE_MIMES;
    if (!allowed.includes(type.mime)) {
      return problem(
        entry,
        "unsupported_type",
        `${type.mime}, not a type of ${entry.dir}/ (${allowed.join(", ")})`,
      );
    }
    let contentType = type.mime;
    let width: number | undefined;
    let height: number | undefined;
    if (kind !== "video") {
      try {
        const header = await readHeader(file, kind, NO_LIMIT, NO_LIMIT);
        contentType = contentTypeOf(header);
        width = header.width;
        height = header.height;
      } catch (err) {
        if (err instanceof ImageError) return problem(entry, "invalid_image", err.message);
        throw err;
      }
    }
    let sha256 = "";
    if (o.hash) {
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of handle.createReadStream({
        start: 0,
        autoClose: false,
        highWaterMark: 1024 * 1024,
      })) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      const after = await handle.stat();
      if (bytes !== s.size || after.size !== s.size || after.mtimeMs !== s.mtimeMs) {
        return problem(entry, "unreadable", "changed while it was read: run the import again");
      }
      sha256 = hash.digest("hex");
    }
    const legacyFile: LegacyFile = {
      name: entry.name,
      kind,
      legacyPath: entry.path,
      contentType,
      size: s.size,
      sha256,
      width,
      height,
      created: new Date(Math.floor(s.mtimeMs)),
    };
    return { file: legacyFile };
  } catch (err) {
    return problem(entry, "unreadable", (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  } finally {
    await handle.close();
  }
}
