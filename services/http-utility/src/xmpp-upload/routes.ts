import type { Request, Response } from "express";
import { LRUCache } from "lru-cache";
import { Counter, type Registry } from "prom-client";
import { z } from "zod";
import type { MediaConfig } from "#common/config/media-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import type { Logger } from "#common/logger.ts";
import type { Storage } from "#common/media/storage.ts";
import type { UploadBudget } from "#common/media/upload-budget.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { createDownloads } from "../attachments/downloads.ts";
import type { FreeSpaceCheck } from "../attachments/free-space.ts";
import { downloadHeaders, downloadResponses } from "../attachments/responses.ts";
import type { AttachmentRow } from "../attachments/store.ts";
import { type CallerPolicy, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import { sanitiseContentType } from "./content-type.ts";
import { verifyExternal } from "./external-tokens.ts";
import { receive } from "./receive.ts";
import { type DomainSecrets, readDomainSecrets } from "./secrets.ts";
import { expectedSignatures, readPresignedQuery, signatureMatches } from "./sigv4.ts";
import { complete, findUpload, release, reserve, type Slot, slotName } from "./slot-store.ts";

/**
 * XEP-0363 HTTP File Upload for standard XMPP clients (docs/xmpp-clients.md "File upload (XEP-0363)"): the
 * HTTP side of MongooseIM's `mod_http_upload` (S3 presigned URLs, sigv4.ts) and of ejabberd's and Prosody's
 * external upload (external-tokens.ts), into the same media storage, free-space reserve, gc and downloads as
 * the app uploads. Public: the signature is the PUT's credential and the slot's URL the GET's capability.
 */

export const XMPP_UPLOAD_PREFIX = "/api/v1/xmpp-upload";
const S3 = `${XMPP_UPLOAD_PREFIX}/s3/{domain}/{token}/{filename}`;
const EXT2 = `${XMPP_UPLOAD_PREFIX}/ext/{domain}/{slot}/{filename}`;
const EXT3 = `${XMPP_UPLOAD_PREFIX}/ext/{domain}/{user}/{slot}/{filename}`;

export interface XmppUploadDeps {
  config: Pick<Config, "secrets">;
  pool: Pool;
  storage: Storage;
  media: MediaConfig;
  log: Logger;
  budget: UploadBudget;
  /** `media.freeSpaceReserveBytes`, shared with the app uploads (attachments/media-deps.ts) */
  freeSpace: FreeSpaceCheck;
  metrics?: Registry | undefined;
}

const segment = (description: string) => z.string().min(1).meta({ description });
const domainParam = segment("the XMPP domain, as in the XMPP server's upload URL");
const filenameParam = segment("the file's name as the client asked for its slot (percent-encoded)");
const s3Params = z.object({
  domain: domainParam,
  token: segment("MongooseIM's random token of the slot"),
  filename: filenameParam,
});
const ext2Params = z.object({
  domain: domainParam,
  slot: segment("the slot's random part (Prosody)"),
  filename: filenameParam,
});
const ext3Params = z.object({
  domain: domainParam,
  user: segment("ejabberd's hash of the uploader (`jid_in_url`)"),
  slot: segment("the slot's random part (ejabberd)"),
  filename: filenameParam,
});

const amz = (description: string) => z.string().optional().meta({ description });
const s3Query = z.object({
  "X-Amz-Algorithm": amz("`AWS4-HMAC-SHA256`"),
  "X-Amz-Credential": amz("`<access key id>/<YYYYMMDD>/<region>/s3/aws4_request`"),
  "X-Amz-Date": amz("when MongooseIM signed, `YYYYMMDDTHHMMSSZ`"),
  "X-Amz-Expires": amz("seconds the URL is valid from X-Amz-Date (MongooseIM's `expiration_time`)"),
  "X-Amz-SignedHeaders": amz(
    "`content-length;content-type;host` (content-type when the slot request named one)",
  ),
  "X-Amz-Signature": amz("hex HMAC-SHA256 (AWS Signature Version 4)"),
});
const extQuery = z.object({
  v: z
    .string()
    .optional()
    .meta({ description: "hex HMAC-SHA256 of `<path> <Content-Length>` (ejabberd, Prosody v1)" }),
  v2: z
    .string()
    .optional()
    .meta({ description: "hex HMAC-SHA256 of `<path>\\0<Content-Length>\\0<Content-Type>` (Prosody v2)" }),
});
const putHeaders = z.object({
  "Content-Length": z.string().meta({ description: "the file's size, as signed (411 without it)" }),
  "Content-Type": z
    .string()
    .optional()
    .meta({ description: "the file's type: as signed (S3, v2); kept, sanitised, for its downloads" }),
});
const tokenHeaders = putHeaders.extend({
  Authorization: z
    .string()
    .optional()
    .meta({ description: "`Bearer <JWT>` of Prosody's mod_http_file_share (the `token` protocol)" }),
});
const fileBody = {
  "application/octet-stream": z.string().meta({
    format: "binary",
    description: "the file's bytes, any type: stored byte for byte (OMEMO-encrypted files have no type)",
  }),
};
const PUT_ERRORS = [
  errors.xmppNoDomain,
  errors.xmppBadSignature,
  errors.xmppExpired,
  errors.xmppSlotUsed,
  errors.xmppLengthRequired,
  errors.xmppTooLarge,
  errors.xmppSizeMismatch,
  errors.xmppDomainQuota,
  errors.quotaExceeded,
  errors.uploadBudgetExceeded,
  errors.xmppIncomplete,
  errors.insufficientStorage,
];
const GET_ERRORS = [errors.xmppNoUpload, errors.noAttachment, errors.rangeNotSatisfiable];
const STORED = {
  201: { description: "Stored, byte for byte; `ETag` is the SHA-256 of the bytes (base64url)" },
};
const LIMITS =
  " Refused before a byte is read: a signature that does not match (403 `invalid_signature`), an expired URL " +
  "(403 `url_expired`), a slot already used (409), a file over the domain's `maxBytes` or one that would take " +
  "the domain over its `quotaBytes` (413), storage short of `media.freeSpaceReserveBytes` (507).";
const DOWNLOAD =
  "The file as uploaded, with its sanitised type; `Content-Disposition: attachment` for anything but a few image and " +
  "video types, `Content-Security-Policy: default-src 'none'; sandbox`. HEAD, `ETag`, `If-None-Match` and one `Range` " +
  "as for the attachments.";

/** The path's own segments, decoded (express did) and joined: what the slot and the external HMACs name. */
const slotPath = (segments: readonly string[]) => segments.join("/");

export function xmppUploadRoutes(deps: XmppUploadDeps): Route<CallerPolicy>[] {
  const { pool, storage, media } = deps;
  const settings = media.xmppUpload;
  const secrets: Map<string, DomainSecrets> = readDomainSecrets(settings, deps.config);
  const downloads = createDownloads({ pool, storage, media });
  const checkFreeSpace = deps.freeSpace;
  // completed uploads never change: a minute of rows spares the GETs a query each (a file gc deleted meanwhile
  // answers 404 all the same: downloads.ts `gone`)
  const rows = new LRUCache<string, AttachmentRow>({ max: 10_000, ttl: 60_000 });
  const uploads = deps.metrics
    ? new Counter({
        name: "xmpp_uploads_total",
        help: "XEP-0363 uploads by protocol and outcome (stored, or the refusal's code)",
        labelNames: ["protocol", "outcome"] as const,
        registers: [deps.metrics],
      })
    : undefined;
  const uploadedBytes = deps.metrics
    ? new Counter({
        name: "xmpp_upload_bytes_total",
        help: "bytes of XEP-0363 uploads stored, by protocol",
        labelNames: ["protocol"] as const,
        registers: [deps.metrics],
      })
    : undefined;

  function domainOf(domain: string) {
    const d = settings.domains[domain];
    const s = secrets.get(domain);
    return d && s ? { ...d, secrets: s } : undefined;
  }

  /** The declared length; 411 without one (a chunked body has none, and every signature covers it). */
  function contentLength(req: Request): number {
    const raw = req.headers["content-length"];
    if (req.headers["transfer-encoding"] !== undefined || raw === undefined || !/^\d{1,15}$/.test(raw)) {
      throw errors.xmppLengthRequired();
    }
    return Number(raw);
  }

  /**
   * A refusal before the body was read: a small body is read and dropped so the connection serves the next
   * request; a large one (or one of an unsigned request) is not worth receiving, the connection closes.
   */
  function refuseBody(req: Request, res: Response, signed: boolean) {
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (signed && declared <= 1024 * 1024) req.resume();
    else res.setHeader("Connection", "close");
  }

  /** Checks the limits, reserves the slot, stores the body, completes the row: 201 or a catalogue error. */
  async function store(
    req: Request,
    res: Response,
    o: {
      slot: Slot;
      protocol: string;
      owner: Jid;
      length: number;
      contentType: string;
      limits: { maxBytes: number; quotaBytes: number };
    },
  ) {
    const name = slotName(o.slot);
    let charged = false;
    let reserved = false;
    try {
      if (o.length > o.limits.maxBytes) throw errors.xmppTooLarge(o.slot.domain, o.limits.maxBytes);
      await checkFreeSpace(o.length);
      // the day's budget counts only an uploader the protocol names (Prosody's token): a domain is not a user
      if (o.owner.node !== "") {
        await deps.budget.charge(o.owner, o.length);
        charged = true;
      }
      await reserve(
        pool,
        {
          name,
          owner: o.owner,
          filename: o.slot.path.split("/").at(-1) ?? "",
          contentType: o.contentType,
          size: o.length,
        },
        { domainBytes: o.limits.quotaBytes, userBytes: media.quotaBytes },
      );
      reserved = true;
    } catch (err) {
      if (charged) await deps.budget.refund(o.owner, o.length).catch(() => {});
      refuseBody(req, res, true);
      uploads?.inc({ protocol: o.protocol, outcome: (err as { code?: string }).code ?? "error" });
      throw err;
    }
    try {
      const sha256 = await receive(storage, req, { name, length: o.length, contentType: o.contentType });
      await complete(pool, name, sha256);
      uploads?.inc({ protocol: o.protocol, outcome: "stored" });
      uploadedBytes?.inc({ protocol: o.protocol }, o.length);
      res.setHeader("ETag", `"${Buffer.from(sha256, "hex").toString("base64url")}"`);
      res.status(201).end();
    } catch (err) {
      if (reserved) await release(pool, name).catch(() => {});
      if (charged) await deps.budget.refund(o.owner, o.length).catch(() => {});
      uploads?.inc({ protocol: o.protocol, outcome: (err as { code?: string }).code ?? "error" });
      res.setHeader("Connection", "close");
      throw err;
    }
  }

  /** A refusal of the request itself (signature, expiry, size): counted, the body not read. */
  function refuse(req: Request, res: Response, protocol: string, err: Error & { code?: string }): never {
    refuseBody(req, res, false);
    uploads?.inc({ protocol, outcome: err.code ?? "error" });
    throw err;
  }

  async function putS3(req: Request, res: Response, p: z.output<typeof s3Params>) {
    const d = domainOf(p.domain);
    if (!d?.s3 || !d.secrets.s3)
      return refuse(req, res, "s3", errors.xmppNoDomain(p.domain, "S3 (MongooseIM)"));
    const url = req.originalUrl;
    const q = url.indexOf("?");
    const rawPath = q < 0 ? url : url.slice(0, q);
    const query = readPresignedQuery(q < 0 ? "" : url.slice(q + 1));
    const bad = (reason: string) => refuse(req, res, "s3", errors.xmppBadSignature(reason));
    if ("ok" in query) return bad(query.reason);
    if (query.accessKeyId !== d.s3.accessKeyId) return bad(`the access key is not ${p.domain}'s`);
    if (query.region !== d.s3.region || query.service !== "s3") {
      return bad(`the scope is not ${d.s3.region}/s3 (s3.region of MongooseIM)`);
    }
    if (query.scopeDate !== query.amzDate.slice(0, 8))
      return bad("the credential's date is not X-Amz-Date's");
    if (!query.signedHeaders.includes("host") || !query.signedHeaders.includes("content-length")) {
      return bad("X-Amz-SignedHeaders must include host and content-length, as MongooseIM signs them");
    }
    if (query.expiresSeconds < 1 || query.expiresSeconds > settings.maxExpiresSeconds) {
      return bad(`X-Amz-Expires must be 1 to ${settings.maxExpiresSeconds} seconds`);
    }
    const now = Date.now();
    const signed = query.signedAt.getTime();
    if (now > signed + query.expiresSeconds * 1000) {
      return refuse(
        req,
        res,
        "s3",
        errors.xmppExpired(`signed ${query.amzDate} for ${query.expiresSeconds} s`),
      );
    }
    if (signed > now + settings.clockSkewSeconds * 1000) {
      return refuse(req, res, "s3", errors.xmppExpired(`signed in the future (${query.amzDate})`));
    }
    let length: number;
    try {
      length = contentLength(req);
    } catch (err) {
      return refuse(req, res, "s3", err as Error);
    }
    const expected = expectedSignatures(
      query,
      { method: "PUT", rawPath, headers: req.headers },
      d.secrets.s3,
    );
    if (!signatureMatches(query.signature, expected)) {
      return bad("the signature does not match this URL, Host, Content-Length and Content-Type");
    }
    await store(req, res, {
      slot: { space: "s3", domain: p.domain, path: slotPath([p.token, p.filename]) },
      protocol: "s3",
      owner: { domain: p.domain, node: "" },
      length,
      contentType: sanitiseContentType(req.headers["content-type"]),
      limits: d,
    });
  }

  /** The uploader a token names, when of this domain: their quota and budget then count. */
  function ownerOf(domain: string, uploader: string | undefined): Jid {
    if (uploader === undefined) return { domain, node: "" };
    try {
      const jid = parseJid(uploader);
      return jid.domain === domain ? jid : { domain, node: "" };
    } catch {
      return { domain, node: "" };
    }
  }

  async function putExternal(req: Request, res: Response, domain: string, segments: string[]) {
    const d = domainOf(domain);
    if (!d?.external || !d.secrets.external) {
      return refuse(req, res, "external", errors.xmppNoDomain(domain, "external (ejabberd, Prosody)"));
    }
    let length: number;
    try {
      length = contentLength(req);
    } catch (err) {
      return refuse(req, res, "external", err as Error);
    }
    const contentType = req.headers["content-type"];
    const verdict = verifyExternal(
      {
        path: slotPath(segments),
        segments,
        query: req.query as Record<string, unknown>,
        authorization: req.headers.authorization,
        contentLength: length,
        contentType,
        now: new Date(),
      },
      d.secrets.external,
      d.external.protocols,
    );
    if (!verdict.ok) {
      const err =
        verdict.problem === "size"
          ? errors.xmppSizeMismatch(verdict.signed, length)
          : verdict.problem === "expired"
            ? errors.xmppExpired(verdict.reason)
            : errors.xmppBadSignature(verdict.reason);
      return refuse(req, res, "external", err);
    }
    await store(req, res, {
      slot: { space: "ext", domain, path: slotPath(segments) },
      protocol: verdict.protocol,
      owner: ownerOf(domain, verdict.uploader),
      length,
      contentType: sanitiseContentType(verdict.contentType),
      limits: d,
    });
  }

  async function get(req: Request, res: Response, slot: Slot) {
    const name = slotName(slot);
    let row = rows.get(name);
    if (!row) {
      row = await findUpload(pool, name);
      if (!row) throw errors.xmppNoUpload();
      rows.set(name, row);
    }
    // whatever a sender declared, nothing uploaded runs in our origin (prosody-modules mod_http_upload_external
    // README, "Security headers")
    res.setHeader("Content-Security-Policy", "default-src 'none'; sandbox");
    await downloads.send(req, res, row);
  }

  /** `GET <path>`: a file uploaded through a slot, named by the slot's path parts. */
  const downloadRoute = <P extends z.ZodObject<{ domain: z.ZodString }>>(
    path: string,
    params: P,
    whose: string,
    space: "s3" | "ext",
    parts: (p: z.output<P>) => string[],
  ) =>
    defineRoute({
      method: "get",
      path,
      summary: `Download a file uploaded to ${whose} slot`,
      description: DOWNLOAD,
      caller: caller.public,
      request: { params, headers: downloadHeaders },
      responses: downloadResponses(["*/*"], "The file"),
      errors: GET_ERRORS,
      handler: ({ params: p, req, res }) =>
        get(req, res, { space, domain: p.domain, path: slotPath(parts(p)) }),
    });

  const uploadText = (who: string) =>
    `The PUT URL of a slot that ${who} handed out, as signed. The body is stored byte for byte.${LIMITS}`;

  return [
    defineRoute({
      method: "put",
      path: S3,
      summary: "Upload to a MongooseIM slot (S3 presigned PUT)",
      description: `${uploadText("MongooseIM's `mod_http_upload` (`s3.bucket_url` pointing at `…/api/v1/xmpp-upload/s3/<domain>`)")} The AWS Signature Version 4 in the query is checked as MongooseIM signs it: \`host\`, \`content-length\` and \`content-type\` (when signed) must be as signed, within \`X-Amz-Expires\` of \`X-Amz-Date\`.`,
      caller: caller.public,
      request: { params: s3Params, query: s3Query, headers: putHeaders, documentedBody: fileBody },
      responses: STORED,
      errors: PUT_ERRORS,
      handler: ({ params, req, res }) => putS3(req, res, params),
    }),
    defineRoute({
      method: "put",
      path: EXT2,
      summary: "Upload to a Prosody slot (mod_http_upload_external v/v2, mod_http_file_share token)",
      description: `${uploadText("Prosody's `mod_http_upload_external` (`v` or `v2` in the query) or `mod_http_file_share` (`Authorization: Bearer <JWT>`)")} With a token, a size other than its \`filesize\` is 413 \`size_mismatch\`; with v and v2 the size is part of the signature (403).`,
      caller: caller.public,
      request: { params: ext2Params, query: extQuery, headers: tokenHeaders, documentedBody: fileBody },
      responses: STORED,
      errors: PUT_ERRORS,
      handler: ({ params, req, res }) => putExternal(req, res, params.domain, [params.slot, params.filename]),
    }),
    defineRoute({
      method: "put",
      path: EXT3,
      summary: "Upload to an ejabberd slot (mod_http_upload with external_secret)",
      description: `${uploadText("ejabberd's `mod_http_upload` with `external_secret` (`put_url` pointing at `…/api/v1/xmpp-upload/ext/@HOST@`)")} The \`v\` HMAC covers the path and the size.`,
      caller: caller.public,
      request: { params: ext3Params, query: extQuery, headers: putHeaders, documentedBody: fileBody },
      responses: STORED,
      errors: PUT_ERRORS,
      handler: ({ params, req, res }) =>
        putExternal(req, res, params.domain, [params.user, params.slot, params.filename]),
    }),
    downloadRoute(S3, s3Params, "a MongooseIM", "s3", (p) => [p.token, p.filename]),
    downloadRoute(EXT2, ext2Params, "a Prosody", "ext", (p) => [p.slot, p.filename]),
    downloadRoute(EXT3, ext3Params, "an ejabberd", "ext", (p) => [p.user, p.slot, p.filename]),
  ];
}
