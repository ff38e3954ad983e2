import type { Request, RequestHandler, Response } from "express";
import multer from "multer";
import type { MediaConfig, UploadKind } from "#common/config/media-schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { HttpError } from "#common/errors.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import { type UploadBudget, uploadBudgetExceeded } from "#common/media/upload-budget.ts";
import { callerOf } from "../callers.ts";
import { createFreeSpaceCheck } from "./free-space.ts";
import { type AttachmentKind, quotaExceeded, recordAttachments, usedBytes } from "./store.ts";
import {
  attachmentOf,
  createUploadEngine,
  type EngineDeps,
  type UploadedAttachment,
} from "./upload-engine.ts";
import {
  fileTooLarge,
  malformedMultipart,
  noFiles,
  notMultipart,
  tooManyFiles,
  unexpectedField,
} from "./upload-policy.ts";

/**
 * One upload endpoint: the caller's quota, daily budget and the storage's free space, multer with the kind's
 * limits and our engine, then the rows of everything stored in one transaction. Whatever fails after a file
 * was stored removes it again.
 */

const KIND: Record<UploadKind, AttachmentKind> = { pictures: "picture", avatars: "avatar", videos: "video" };

export interface UploadAnswer {
  name: string;
  fileName: string;
  url: string;
  thumbnailUrl: string | null;
  thumbnails: Record<string, string>;
  contentType: string;
  size: number;
  width: number | null;
  height: number | null;
  sha256: string;
}

export interface UploadRouteDeps extends EngineDeps {
  pool: Pool;
  storage: Storage;
  media: MediaConfig;
  log: Logger;
  /** Called with the names whose objects were deleted (a replaced avatar): caches forget them. */
  onDeleted: (names: string[]) => void;
  /** `media.dailyUploadBytes`, shared by the upload kinds */
  budget: UploadBudget;
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
const isUnreadableBody = (err: unknown) =>
  err instanceof Error && !(err instanceof HttpError) && UNREADABLE.test(err.message);

export function uploadRoute(
  kind: UploadKind,
  deps: UploadRouteDeps,
  urlOf: (req: Request, name: string) => string,
): RequestHandler[] {
  const limits = deps.media.uploads[kind];
  const checkFreeSpace = createFreeSpaceCheck(deps.storage, deps.media.freeSpaceReserveBytes, deps.log);
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

  const beforeUpload: RequestHandler = async (req, res, next) => {
    try {
      if (!req.is("multipart/form-data")) throw notMultipart();
      const caller = callerOf(res);
      if (caller.kind !== "app") throw new Error("upload reached without an app caller");
      // what this request can write at most: its Content-Length when it says one, the kind's limits otherwise
      const declared = Number(req.get("content-length"));
      const most = limits.maxFiles * limits.maxBytes;
      const coming = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, most) : most;
      await checkFreeSpace(coming);
      // Refused before a byte is read when the quota or the day's budget is already spent (the exact checks
      // are at the end). A video is stored as sent, so its Content-Length (less the multipart framing)
      // already tells; an image's stored size is only known once it is re-encoded.
      const sent = Number.isFinite(declared) ? declared : 0;
      const left = await deps.budget.left(caller.jid);
      if (left.bytes <= 0 || (kind === "videos" && sent > left.bytes + FRAMING)) {
        const daily = deps.media.dailyUploadBytes;
        throw uploadBudgetExceeded(daily, daily - left.bytes, sent, left.resetsAt ?? new Date());
      }
      // not for an avatar, which replaces the one before it and may fit once that one is gone
      if (deps.media.quotaBytes > 0 && kind !== "avatars") {
        const used = await usedBytes(deps.pool, caller.jid);
        if (
          used >= deps.media.quotaBytes ||
          (kind === "videos" && used + sent > deps.media.quotaBytes + FRAMING)
        ) {
          throw quotaExceeded(deps.media.quotaBytes, used, sent);
        }
      }
      next();
    } catch (err) {
      next(err);
    }
  };

  const receive: RequestHandler = (req, res, next) => {
    upload(req, res, (err?: unknown) => {
      if (err instanceof multer.MulterError) {
        switch (err.code) {
          case "LIMIT_FILE_SIZE":
            return next(fileTooLarge(kind, limits.maxBytes));
          case "LIMIT_FILE_COUNT":
            return next(tooManyFiles(kind, limits.maxFiles));
          case "LIMIT_UNEXPECTED_FILE":
            return next(
              err.field === "attachments" ? tooManyFiles(kind, limits.maxFiles) : unexpectedField(err.field),
            );
          default:
            return next(malformedMultipart(err.message));
        }
      }
      next(isUnreadableBody(err) ? malformedMultipart((err as Error).message) : err);
    });
  };

  const record = async (req: Request, res: Response) => {
    const files = ((req.files as Express.Multer.File[] | undefined) ?? []).map(attachmentOf);
    try {
      if (files.length === 0) throw noFiles();
      const caller = callerOf(res);
      if (caller.kind !== "app") throw new Error("upload reached without an app caller");
      const bytes = files.reduce((n, f) => n + f.size + f.variants.reduce((m, v) => m + v.size, 0), 0);
      await deps.budget.charge(caller.jid, bytes);
      const { replaced } = await recordAttachments(
        deps.pool,
        caller.jid,
        KIND[kind],
        files,
        deps.media.quotaBytes,
      ).catch(async (err: unknown) => {
        await deps.budget.refund(caller.jid, bytes);
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
  };

  return [
    beforeUpload,
    receive,
    (req, res, next) => {
      record(req, res).catch(next);
    },
  ];
}
