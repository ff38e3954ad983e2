import { z } from "zod";
import { passwordSource } from "./buddies-schema.ts";

/**
 * `media.xmppUpload`: XEP-0363 HTTP File Upload for standard XMPP clients, the HTTP side of the XMPP servers'
 * upload modules (docs/xmpp-clients.md "File upload (XEP-0363)"), into the same media storage as the app
 * uploads. Per domain: which protocols it takes, their shared secrets, its size limit and storage quota.
 */

const MiB = 1024 * 1024;

/** Where a shared secret comes from (never the secret itself): an environment variable or a file. */
const secretSource = passwordSource;

/** The external-upload protocols (prosody-modules mod_http_upload_external's README "Implementation"). */
export const EXTERNAL_PROTOCOLS = ["v", "v2", "token"] as const;
export type ExternalProtocol = (typeof EXTERNAL_PROTOCOLS)[number];

const s3Schema = z
  .object({
    accessKeyId: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{3,128}$/, "letters, digits, _ . - (MongooseIM's s3.access_key_id)")
      .describe("MongooseIM's `s3.access_key_id`: the key the presigned URLs name"),
    secretAccessKey: secretSource.describe(
      "MongooseIM's `s3.secret_access_key`: `{ env: NAME }` or `{ file: path }`, never the key itself",
    ),
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, "a region name such as us-east-1")
      .default("us-east-1")
      .describe("MongooseIM's `s3.region` (part of the signature's scope)"),
  })
  .strict();

const externalSchema = z
  .object({
    secret: secretSource.describe(
      "ejabberd's `external_secret`, Prosody's `http_upload_external_secret` / `http_file_share_secret`: `{ env: NAME }` or `{ file: path }`",
    ),
    protocols: z
      .array(z.enum(EXTERNAL_PROTOCOLS))
      .min(1)
      .default([...EXTERNAL_PROTOCOLS])
      .describe(
        'accepted: `v` (ejabberd `external_secret`, Prosody mod_http_upload_external v1), `v2` (its `protocol = "v2"`), `token` (Prosody mod_http_file_share\'s JWT)',
      ),
  })
  .strict();

export const xmppUploadDomainSchema = z
  .object({
    maxBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * 1024 * MiB)
      .default(100 * MiB)
      .describe(
        "largest file accepted, bytes (413 above it): set the XMPP server's own limit to this or less",
      ),
    quotaBytes: z
      .number()
      .int()
      .min(0)
      .default(10 * 1024 * MiB)
      .describe(
        "bytes the domain's XEP-0363 uploads may store together (413 `quota_exceeded`; 0 = no quota)",
      ),
    s3: s3Schema.optional().describe("MongooseIM `mod_http_upload` (S3 presigned PUT URLs, AWS SigV4)"),
    external: externalSchema
      .optional()
      .describe(
        "ejabberd `mod_http_upload` with `external_secret`, Prosody `mod_http_upload_external` / `mod_http_file_share`",
      ),
  })
  .strict()
  .refine((d) => d.s3 !== undefined || d.external !== undefined, {
    message: "give s3 (MongooseIM) or external (ejabberd, Prosody), or both",
  });

export const xmppUploadSchema = z
  .object({
    maxExpiresSeconds: z
      .number()
      .int()
      .min(1)
      .max(604_800)
      .default(604_800)
      .describe("longest `X-Amz-Expires` a presigned URL may carry (S3's own maximum: 7 days)"),
    clockSkewSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(300)
      .describe("how far in the future a URL's signing time may be (clocks of two machines differ)"),
    domains: z
      .record(z.string().regex(/^[a-z0-9.-]+$/, "a lower-case domain name"), xmppUploadDomainSchema)
      .default({})
      .describe("per XMPP domain: its protocols, secrets, size limit and quota; none: XEP-0363 is off"),
  })
  .strict()
  .prefault({})
  .describe("XEP-0363 uploads of standard XMPP clients (docs/xmpp-clients.md)");

export type XmppUploadConfig = z.infer<typeof xmppUploadSchema>;
export type XmppUploadDomain = z.infer<typeof xmppUploadDomainSchema>;
