import { errors } from "../errors.ts";

/**
 * What an upload may be (docs/attachments.md "Uploading"): plain functions, tested without HTTP. The type is
 * decided from the file's bytes (file-type's magic numbers), never from its name or declared type; the
 * declared type only counts against a file when it names another family (a "video" that is a PNG).
 */

export interface DetectedType {
  mime: string;
  ext: string;
}

export interface AcceptedType {
  contentType: string;
  extension: string;
}

/**
 * Declared types that say nothing: clients send these for any file. text/plain is what a part without a
 * Content-Type header is (RFC 7578 §4.4, and busboy reports it so): older clients send files that way.
 */
const GENERIC = new Set([
  "",
  "application/octet-stream",
  "binary/octet-stream",
  "application/x-binary",
  "text/plain",
]);

const family = (mime: string) => mime.split("/", 1)[0]?.toLowerCase() ?? "";

export function acceptType(
  detected: DetectedType | undefined,
  declared: string | undefined,
  allowed: readonly string[],
  what: string,
): AcceptedType {
  if (!detected) throw errors.unrecognisedType(what, allowed);
  if (!allowed.includes(detected.mime)) throw errors.unsupportedType(detected.mime, what, allowed);
  const said = (declared ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (!GENERIC.has(said) && family(said) !== family(detected.mime)) {
    throw errors.typeMismatch(said, detected.mime);
  }
  return { contentType: detected.mime, extension: EXTENSIONS[detected.mime] ?? detected.ext };
}

/** The extensions stored names get; file-type's own otherwise. */
const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "video/quicktime": "mov",
  "video/x-matroska": "mkv",
};

/**
 * Whether `free` bytes leave at least `reserve` once `coming` more are written: an upload that could take
 * the file system under its reserve is refused before it starts (or before its next file).
 */
export const leavesReserve = (free: number, coming: number, reserve: number) => free - coming >= reserve;
