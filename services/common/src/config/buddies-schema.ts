import { z } from "zod";
import { KIND_NAME } from "../plugins/definition.ts";

/**
 * The `buddies` section (docs/buddies.md): how the runner reaches the XMPP server of each domain, how it
 * reconnects, how runners share the buddies of a cluster, and the buddies defined in config. Buddies added
 * at runtime live in the `buddies` table, which wins over config for the same JID.
 */

export const BUDDY_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A kind is named as every plugin kind is (plugins/definition.ts). */
export { KIND_NAME };

/** Where a buddy's password comes from: never the password itself. */
export const passwordSource = z.union([
  z.object({ file: z.string().min(1).describe("a file holding the password (first line)") }).strict(),
  z
    .object({
      env: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/, "an environment variable name such as BUDDY_ECHO_PASSWORD")
        .describe("an environment variable holding the password"),
    })
    .strict(),
]);
export type PasswordSource = z.infer<typeof passwordSource>;

/** A MUC room: `room@conference.example.com`. */
const roomJid = z
  .string()
  .max(3071)
  .regex(/^[^@/\s"&'<>:]+@[a-z0-9.-]+$/i, "a room's bare JID such as ops@conference.example.com")
  .transform((s) => s.toLowerCase());

/** One buddy, as config and the `buddies` table and the admin API describe it. */
export const buddyDefinition = z
  .object({
    kind: z.string().regex(KIND_NAME, "a kind name such as echo, service, notify").describe("buddy kind"),
    password: passwordSource.describe("`{ file }` or `{ env }`: where its XMPP password is"),
    options: z.record(z.string(), z.unknown()).default({}).describe("options of the kind"),
    rooms: z.array(roomJid).max(100).default([]).describe("MUC rooms it joins"),
    nick: z.string().min(1).max(64).optional().describe("nickname in rooms (default: its username)"),
  })
  .strict();
export type BuddyDefinition = z.output<typeof buddyDefinition>;

const tls = z
  .object({
    verify: z
      .boolean()
      .default(true)
      .describe("verify the server's certificate (turn off only for a test server)"),
    ca: z.string().min(1).optional().describe("PEM file of a private CA to trust for this server"),
  })
  .strict()
  .prefault({});

/** A domain's TLS: only what it changes from `buddies.tls`. */
const domainTls = z
  .object({
    verify: z.boolean().optional().describe("verify the server's certificate"),
    ca: z.string().min(1).optional().describe("PEM file of a private CA to trust for this server"),
  })
  .strict();

const xmppServer = {
  service: z
    .string()
    .regex(/^xmpps?:\/\/[^/\s]+$/, "xmpp://host:5222 (STARTTLS) or xmpps://host:5223 (direct TLS)")
    .describe("where buddies connect: `xmpp://host:port` (STARTTLS) or `xmpps://host:port` (direct TLS)"),
  tls,
};

export const buddiesSchema = z
  .object({
    service: xmppServer.service.default("xmpp://127.0.0.1:5222"),
    tls,
    resource: z.string().min(1).max(64).default("buddy").describe("XMPP resource of every buddy"),
    kindsDir: z
      .string()
      .min(1)
      .default("buddy-kinds")
      .describe("folder of third-party kinds (`<kind>.js` or `<kind>/index.js`), read without a restart"),
    reconnect: z
      .object({
        initialMs: z.number().int().min(10).default(1000).describe("first wait after a lost connection"),
        maxMs: z.number().int().min(10).default(600_000).describe("the wait doubles up to this (10 min)"),
        connectTimeoutMs: z.number().int().min(100).default(20_000).describe("bound on one login attempt"),
      })
      .strict()
      .prefault({}),
    keepalive: z
      .object({
        intervalSeconds: z.number().int().min(1).default(60).describe("XEP-0199 ping to the server every …"),
        timeoutSeconds: z.number().int().min(1).default(20).describe("no answer in this long: reconnect"),
      })
      .strict()
      .prefault({}),
    cluster: z
      .object({
        leaseSeconds: z
          .number()
          .int()
          .min(2)
          .max(300)
          .default(10)
          .describe("a runner that has not renewed its buddies for this long loses them to another"),
        tickMs: z
          .number()
          .int()
          .min(100)
          .max(60_000)
          .default(2000)
          .describe("how often a runner renews, claims free buddies and applies changes"),
      })
      .strict()
      .prefault({}),
    logLines: z.number().int().min(10).max(10_000).default(200).describe("recent log lines kept per buddy"),
    domains: z
      .record(
        z.string().regex(/^[a-z0-9.-]+$/, "a domain of `domains`"),
        z
          .object({
            service: xmppServer.service.optional(),
            tls: domainTls.optional().describe("TLS of this domain's server, over `buddies.tls`"),
            definitions: z
              .record(z.string().regex(BUDDY_NAME, "a user part such as echo or zabbix"), buddyDefinition)
              .default({})
              .describe("buddies of this domain by username"),
          })
          .strict(),
      )
      .default({})
      .describe("per domain: its XMPP server (default `buddies.service`) and its buddies"),
  })
  .strict()
  .prefault({})
  .refine((b) => b.reconnect.initialMs <= b.reconnect.maxMs, {
    path: ["reconnect", "maxMs"],
    message: "must be at least reconnect.initialMs",
  })
  .refine((b) => b.cluster.tickMs * 3 <= b.cluster.leaseSeconds * 1000, {
    path: ["cluster", "tickMs"],
    message: "must be at most a third of leaseSeconds, or a busy runner loses its buddies",
  });
