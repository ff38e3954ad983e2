import type { Request, Response } from "express";
import multer from "multer";
import type { MediaConfig, UploadKind } from "#common/config/media-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { type ErrorEntry, HttpError } from "#common/errors.ts";
import { defineRoute } from "#common/http/route.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import type { UploadBudget } from "#common/media/upload-budget.ts";
import { type AppCaller, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import type { FreeSpaceCheck } from "./free-space.ts";
import { MEDIA_DEFAULTS as DEFAULTS, mib, type UploadAnswer, uploadAnswer, uploadBody } from "./schema.ts";
import { type AttachmentKind, recordAttachments, usedBytes } from "./store.ts";
import {
  attachmentOf,
  createUploadEngine,
  type EngineDeps,
  type UploadedAttachment,
} from "./upload-engine.ts";

/**
 * One upload endpoint: the caller's quota, daily budget and the storage's free space, multer with the kind's
 * limits and our engine, then the rows of everything stored in one transaction. Whatever fails after a file
 * was stored removes it again. multer runs inside the route's handler, not as a `use` middleware before it:
 * the checks before a byte is read need the caller, which only the handler receives.
 */

const KIND: Record<UploadKind, AttachmentKind> = { pictures: "picture", avatars: "avatar", videos: "video" };

export interface UploadRouteDeps extends EngineDeps {
  pool: Pool;
  storage: Storage;
  media: MediaConfig;
  log: Logger;
  /** Called with the names whose objects were deleted (a replaced avatar): caches forget them. */
  onDeleted: (names: string[]) => void;
  /** `media.dailyUploadBytes`, shared by the upload kinds */
  budget: UploadBudget;
  /** `media.freeSpaceReserveBytes`, shared by every upload route (media-deps.ts) */
  freeSpace: FreeSpaceCheck;
}

/** The catalogue errors an upload of `kind` may answer (besides its caller's). */
function uploadErrors(kind: UploadKind): ErrorEntry[] {
  const images =
    kind === "videos"
      ? []
      : [errors.requestPixelsExceeded, errors.invalidImage, errors.imageTooLarge, errors.imagesBusy];
  return [
    errors.noFiles,
    errors.unexpectedField,
    errors.invalidMultipart,
    errors.fileTooLarge,
    errors.tooManyFiles,
    errors.quotaExceeded,
    errors.multipartRequired,
    errors.unrecognisedType,
    errors.unsupportedType,
    errors.typeMismatch,
    errors.uploadBudgetExceeded,
    errors.insufficientStorage,
    ...images,
  ];
}

/** multipart framing and field overhead: what a Content-Length carries besides the files' bytes */
const FRAMING = 64 * 1024;

/**
 * busboy's and multer's own errors about the body (no boundary, a body cut short, a broken part header, a
 * client gone): the sender's problem, not an internal error. Our engine's and the backend's errors are
 * neither these messages nor of these origins.
 */
const UNREADABLE =
  /^(Multipart: |Malformed (part header|content type)|Unexpected end of (form|file)|Request (aborted|closed))/;
const isUnreadableBody = (err: unknown): err is Error =>
  err instanceof Error && !(err instanceof HttpError) && UNREADABLE.test(err.message);

/** multer's and busboy's refusals of a body, as catalogue errors; any other error as it is. */
function bodyError(err: unknown, kind: UploadKind, limits: { maxBytes: number; maxFiles: number }): unknown {
  if (err instanceof multer.MulterError) {
    switch (err.code) {
      case "LIMIT_FILE_SIZE":
        return errors.fileTooLarge(kind, limits.maxBytes);
      case "LIMIT_FILE_COUNT":
        return errors.tooManyFiles(kind, limits.maxFiles);
      case "LIMIT_UNEXPECTED_FILE":
        return err.field === "attachments"
          ? errors.tooManyFiles(kind, limits.maxFiles)
          : errors.unexpectedField(err.field);
      default:
        return errors.invalidMultipart(err.message);
    }
  }
  return isUnreadableBody(err) ? errors.invalidMultipart(err.message) : err;
}

/** The limits an upload of `kind` meets, with their defaults, for its description. */
function uploadLimits(kind: UploadKind): string {
  const limits = DEFAULTS.uploads[kind];
  const pixels =
    kind === "videos"
      ? ""
      : ` The images of one request may declare at most \`media.images.requestPixels\` (${DEFAULTS.images.requestPixels} by default) pixels together, each at most \`media.images.maxPixels\` (${DEFAULTS.images.maxPixels} by default); this process decodes \`media.images.slots\` images at once with \`media.images.queue\` waiting (${DEFAULTS.images.slots} and ${DEFAULTS.images.queue} by default).`;
  return (
    ` Limits: \`media.uploads.${kind}.maxBytes\` (${mib(limits.maxBytes)} by default) a file, \`media.uploads.${kind}.maxFiles\` (${limits.maxFiles} by default) a request;` +
    ` \`media.quotaBytes\` (${mib(DEFAULTS.quotaBytes)} by default) stored by the caller; \`media.dailyUploadBytes\` (${mib(DEFAULTS.dailyUploadBytes)} by default) uploaded in 24 hours;` +
    ` the storage keeps \`media.freeSpaceReserveBytes\` (${mib(DEFAULTS.freeSpaceReserveBytes)} by default) free.${pixels} A refused upload stores nothing.`
  );
}

/** `POST <path>`: an app user stores files of `kind`; `text` is its summary and description. */
export function uploadRoute(
  kind: UploadKind,
  deps: UploadRouteDeps,
  urlOf: (req: Request, name: string) => string,
  text: { path: string; summary: string; description: string },
) {
  const handle = uploadHandler(kind, deps, urlOf);
  return defineRoute({
    method: "post",
    path: text.path,
    summary: text.summary,
    description: text.description + uploadLimits(kind),
    // installed legacy apps (callers.ts `appOrLegacy`) name the uploader in the query: the multipart body is
    // read only once the caller is known
    caller: caller.appOrLegacy(`upload_${kind}`, (req) => req.query.node),
    // multer reads the body (below), outside the JSON and form parsers: described here, never parsed with it
    request: { documentedBody: { "multipart/form-data": uploadBody(kind) } },
    responses: {
      201: {
        description: "Stored; each file is answered, also in the legacy shape `files.attachments`",
        schema: uploadAnswer,
      },
    },
    errors: uploadErrors(kind),
    handler: ({ caller: who, req, res }) => handle(who, req, res),
  });
}

function uploadHandler(
  kind: UploadKind,
  deps: UploadRouteDeps,
  urlOf: (req: Request, name: string) => string,
): (who: AppCaller, req: Request, res: Response) => Promise<void> {
  const limits = deps.media.uploads[kind];
  const checkFreeSpace = deps.freeSpace;
  // busboy's buffers (multer 2 passes them on; @types/multer does not know them yet): 1 MiB rather than the
  // 64 KiB default, so a large upload moves in fewer, larger steps
  const buffers = { highWaterMark: 1024 * 1024, fileHwm: 1024 * 1024 } as multer.Options;
  const upload = multer({
    ...buffers,
    storage: createUploadEngine(kind, deps, { freeSpace: checkFreeSpace }),
    limits: {
      fileSize: limits.maxBytes,
      files: limits.maxFiles,
      fields: 20,
      fieldSize: 64 * 1024,
      parts: limits.maxFiles + 20,
      headerPairs: 100,
    },
    // browsers, OkHttp and fetch send a filename's UTF-8 bytes as they are: latin1 (busboy's default) would
    // answer "été.jpg" as "Ã©tÃ©.jpg"
    defParamCharset: "utf8",
  }).array("attachments", limits.maxFiles);

  const removeFiles = (files: UploadedAttachment[]) =>
    Promise.all(
      files.flatMap((f) => [f, ...f.variants]).map((f) => deps.storage.delete(f.name).catch(() => {})),
    );

  /** Refuses the upload before a byte of it is read, when it cannot fit. */
  async function beforeUpload(who: AppCaller, req: Request) {
    if (!req.is("multipart/form-data")) throw errors.multipartRequired();
    // what this request can write at most: its Content-Length when it says one, the kind's limits otherwise
    const declared = Number(req.get("content-length"));
    const most = limits.maxFiles * limits.maxBytes;
    const coming = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, most) : most;
    await checkFreeSpace(coming);
    // Refused before a byte is read when the quota or the day's budget is already spent (the exact checks
    // are at the end). A video is stored as sent, so its Content-Length (less the multipart framing)
    // already tells; an image's stored size is only known once it is re-encoded.
    const sent = Number.isFinite(declared) ? declared : 0;
    const left = await deps.budget.left(who.jid);
    if (left.bytes <= 0 || (kind === "videos" && sent > left.bytes + FRAMING)) {
      const daily = deps.media.dailyUploadBytes;
      throw errors.uploadBudgetExceeded(daily, daily - left.bytes, sent, left.resetsAt ?? new Date());
    }
    // not for an avatar, which replaces the one before it and may fit once that one is gone
    if (deps.media.quotaBytes > 0 && kind !== "avatars") {
      const used = await usedBytes(deps.pool, who.jid);
      if (
        used >= deps.media.quotaBytes ||
        (kind === "videos" && used + sent > deps.media.quotaBytes + FRAMING)
      ) {
        throw errors.quotaExceeded(deps.media.quotaBytes, used, sent);
      }
    }
  }

  /** multer, streaming each file through our engine as it arrives. */
  const receive = (req: Request, res: Response) =>
    new Promise<void>((resolve, reject) => {
      upload(req, res, (err?: unknown) => {
        if (err) reject(bodyError(err, kind, limits));
        else resolve();
      });
    });

  async function record(who: AppCaller, req: Request, res: Response) {
    const files = ((req.files as Express.Multer.File[] | undefined) ?? []).map(attachmentOf);
    try {
      if (files.length === 0) throw errors.noFiles();
      const bytes = files.reduce((n, f) => n + f.size + f.variants.reduce((m, v) => m + v.size, 0), 0);
      await deps.budget.charge(who.jid, bytes);
      const { replaced } = await recordAttachments(
        deps.pool,
        who.jid,
        KIND[kind],
        files,
        deps.media.quotaBytes,
      ).catch(async (err: unknown) => {
        await deps.budget.refund(who.jid, bytes);
        throw err;
      });
      if (replaced.length > 0) {
        deps.onDeleted(replaced);
        await Promise.all(replaced.map((n) => deps.storage.delete(n).catch(() => {})));
      }
    } catch (err) {
      await removeFiles(files);
      throw err;
    }
    const answers: UploadAnswer[] = files.map((f) => {
      const thumbnails = Object.fromEntries(f.variants.map((v) => [v.variant, urlOf(req, v.name)]));
      return {
        name: f.originalName,
        fileName: f.name,
        url: urlOf(req, f.name),
        thumbnailUrl: f.variants[0] ? urlOf(req, f.variants[0].name) : null,
        thumbnails,
        contentType: f.contentType,
        size: f.size,
        width: f.width ?? null,
        height: f.height ?? null,
        sha256: f.sha256,
      };
    });
    // legacy clients read files.attachments (one object for one file, as the legacy server answered)
    res.status(201).json({
      attachments: answers,
      files: { attachments: answers.length === 1 ? answers[0] : answers },
    });
  }

  return async (who, req, res) => {
    await beforeUpload(who, req);
    await receive(req, res);
    await record(who, req, res);
  };
}
