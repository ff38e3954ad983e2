import { HttpError } from "#common/errors.ts";

/**
 * What an upload may be (legacy-api.md "Attachments"): plain functions, tested without HTTP. The type is
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
  if (!detected) {
    throw new HttpError(
      415,
      "unsupported_type",
      `This file's content is not a type ${what} accept (${allowed.join(", ")}): send one of those.`,
    );
  }
  if (!allowed.includes(detected.mime)) {
    throw new HttpError(
      415,
      "unsupported_type",
      `This file is ${detected.mime}; ${what} accept ${allowed.join(", ")}: convert it to one of those.`,
    );
  }
  const said = (declared ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (!GENERIC.has(said) && family(said) !== family(detected.mime)) {
    throw new HttpError(
      415,
      "type_mismatch",
      `The file was sent as ${said} but its content is ${detected.mime}: send it with its real type (or application/octet-stream).`,
    );
  }
  return { contentType: detected.mime, extension: EXTENSIONS[detected.mime] ?? detected.ext };
}

/** The extensions stored names get; file-type's own otherwise. */
const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "video/quicktime": "mov",
  "video/x-matroska": "mkv",
};

const mib = (bytes: number) => {
  const v = bytes / (1024 * 1024);
  return v >= 1 ? `${Number.isInteger(v) ? v : v.toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
};

export const fileTooLarge = (what: string, limit: number) =>
  new HttpError(
    413,
    "file_too_large",
    `A file is over the limit of ${limit} bytes (${mib(limit)}) for ${what}: send a smaller file.`,
  );

export const tooManyFiles = (what: string, max: number) =>
  new HttpError(
    413,
    "too_many_files",
    `At most ${max} file${max === 1 ? "" : "s"} per request for ${what}: send the rest in another request.`,
  );

export const noFiles = () =>
  new HttpError(
    400,
    "no_files",
    "No file was sent: upload multipart/form-data with the file(s) in the field `attachments`.",
  );

export const unexpectedField = (field: string | undefined) =>
  new HttpError(
    400,
    "unexpected_field",
    `Files go in the field \`attachments\`${field ? `, not \`${field}\`` : ""}: rename the form field.`,
  );

export const notMultipart = () =>
  new HttpError(
    415,
    "multipart_required",
    "Uploads are multipart/form-data with the file(s) in the field `attachments`.",
  );

export const malformedMultipart = (problem: string) =>
  new HttpError(
    400,
    "invalid_multipart",
    `The multipart body could not be read (${problem}): send the file(s) in the field \`attachments\`, with at most 20 short text fields.`,
  );

export const requestPixelsExceeded = (limit: number, total: number) =>
  new HttpError(
    413,
    "request_pixels_exceeded",
    `The images of this request add up to more than ${limit} pixels (${total} so far): send fewer or smaller images per request.`,
  );

export const insufficientStorage = () =>
  new HttpError(
    507,
    "insufficient_storage",
    "The server is short of storage space and cannot take this upload now; retry later, or send a smaller file.",
    { "retry-after": "600" },
  );

/**
 * Whether `free` bytes leave at least `reserve` once `coming` more are written: an upload that could take
 * the file system under its reserve is refused before it starts (or before its next file).
 */
export const leavesReserve = (free: number, coming: number, reserve: number) => free - coming >= reserve;
