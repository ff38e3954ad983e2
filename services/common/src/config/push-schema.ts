import { z } from "zod";
import { xep0357Schema } from "./xep0357-schema.ts";

/**
 * The `push` section (docs/push.md): provider credentials per app, the app of each domain, and how sends are
 * retried, capped and relayed. Secrets stay in files named here, never in the config itself.
 */

const filePath = z.string().min(1);

/**
 * The options of the push senders, by the key that chooses them (`fcm`, `apns`, `log`): the definitions of
 * services/http-utility/src/push/senders/ take these schemas as theirs. Unlike the other plugin points the
 * kinds are keys here rather than a `kind` string, so config checks them when it loads.
 */
export const fcmCredentials = z
  .object({
    serviceAccountFile: filePath.describe("the Firebase service-account JSON key of this app"),
    projectId: z.string().min(1).optional().describe("Firebase project (default: the key's project_id)"),
  })
  .strict();

export const apnsCredentials = z
  .object({
    bundleId: z.string().min(1).describe("the app's bundle id: the APNs topic (`<bundleId>.voip` for VoIP)"),
    production: z.boolean().default(true).describe("api.push.apple.com (true) or the sandbox (false)"),
    keyFile: filePath.optional().describe("token auth (preferred): the `.p8` signing key"),
    keyId: z.string().min(1).optional().describe("token auth: the key's id"),
    teamId: z.string().min(1).optional().describe("token auth: the Apple team id"),
    certFile: filePath.optional().describe("certificate auth: the PEM certificate"),
    certKeyFile: filePath.optional().describe("certificate auth: its PEM private key"),
    passphraseEnv: z
      .string()
      .optional()
      .describe("certificate auth: env variable holding the key's passphrase"),
  })
  .strict()
  .refine((a) => (a.keyFile && a.keyId && a.teamId) || (a.certFile && a.certKeyFile), {
    message: "give keyFile, keyId and teamId (token auth) or certFile and certKeyFile (certificates)",
  });

/** Development: no credentials, every push of the app is written to the service's log (docs/push.md). */
export const logSenderOptions = z.object({}).strict();

export const pushSchema = z
  .object({
    apps: z
      .record(
        z.string().regex(/^[\w.-]{1,100}$/, "an app name such as OyoChat"),
        z
          .object({
            fcm: fcmCredentials.optional(),
            apns: apnsCredentials.optional(),
            log: logSenderOptions.optional(),
          })
          .strict()
          // `log` takes every service of the app: beside fcm or apns, which one a token went to would depend on
          // the order of the keys
          .refine((a) => a.log === undefined || (a.fcm === undefined && a.apns === undefined), {
            message: "`log` serves every service of the app: give it alone, or fcm and/or apns without it",
            path: ["log"],
          }),
      )
      .default({})
      .describe(
        "provider credentials by app: `fcm` and/or `apns`; or `log` (`{}`, development only: each push is written to the http-utility log, refused in production)",
      ),
    domains: z
      .record(z.string().regex(/^[a-z0-9.-]+$/), z.object({ app: z.string().min(1) }).strict())
      .default({})
      .describe("the app whose credentials push to a domain's users when a token names none"),
    maxTokensPerUser: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe("devices per user and app; registering one more forgets the least recently registered"),
    tokenMoveAfterDays: z
      .number()
      .min(0)
      .max(3650)
      .default(30)
      .describe(
        "a token registered to another user moves to the caller without that device's `deviceSecret` only when its registration is older than this (docs/push.md)",
      ),
    retry: z
      .object({
        attempts: z.number().int().min(1).max(10).default(3).describe("tries per token on 429 and 5xx"),
        initialMs: z.number().int().min(10).default(500).describe("first wait, doubling"),
        maxMs: z
          .number()
          .int()
          .min(10)
          .default(30_000)
          .describe("longest wait (a longer Retry-After gives up)"),
      })
      .strict()
      .prefault({}),
    hooks: z
      .object({
        allow: z
          .array(
            z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], { error: "an IP address or CIDR block" }),
          )
          .default([])
          .describe(
            "addresses MongooseIM calls from (its hooks and MongoosePush API on the internal listener), checked on the connection, never a header; loopback always may",
          ),
        sessions: z
          .object({
            url: z
              .url({ protocol: /^https?$/, error: "an http(s) URL such as http://127.0.0.1:8088/api" })
              .describe(
                "MongooseIM 2.1.0's admin REST API (mod_commands), e.g. http://127.0.0.1:8088/api: `GET <url>/sessions/<host>`",
              ),
            cacheMs: z
              .number()
              .int()
              .min(0)
              .max(60_000)
              .default(2000)
              .describe("how long a host's session list is used before it is fetched again"),
            timeoutMs: z.number().int().min(50).max(10_000).default(1000).describe("bound on one fetch"),
            onError: z
              .enum(["push", "skip"])
              .default("push")
              .describe(
                "when the list cannot be had: `push` (fail open: a user may get a push while online) or `skip` (fail closed: an offline user may miss one)",
              ),
          })
          .strict()
          .optional()
          .describe(
            "MongooseIM 2.1.0 only: chat-message pushes only to receivers with no session, as MongooseIM's admin API lists them (6.x pushes for offline users by itself)",
          ),
      })
      .strict()
      .prefault({}),
    relay: z
      .object({
        attempts: z.number().int().min(1).max(20).default(5).describe("tries to deliver a reply or resolve"),
        timeoutMs: z.number().int().min(100).default(5000).describe("bound on one try"),
        allowTargets: z
          .array(z.string().min(1))
          .default([])
          .describe(
            "callbackUrl hosts, IP addresses or CIDR blocks allowed although loopback, private or link-local (every other special-use address is refused)",
          ),
        hookKey: z
          .string()
          .min(1)
          .optional()
          .describe(
            "a key of `services.buddies.hookKeys` (`sidecars buddies admin-key push --hook`) to call a buddy's hook with (env BUDDIES_HOOK_KEY or BUDDIES_HOOK_KEY_FILE); without it relaying to a buddy fails",
          ),
      })
      .strict()
      .prefault({}),
    xep0357: xep0357Schema.describe(
      "the XEP-0357 app server of standard XMPP clients, one component per domain (docs/xmpp-clients.md)",
    ),
  })
  .strict()
  .prefault({});

export type PushConfig = z.output<typeof pushSchema>;
