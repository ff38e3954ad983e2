import { z } from "zod";
import { SCRAM_HASHES } from "../credentials/scram.ts";
import { DURATION_FORMS, durationMs } from "../durations.ts";
import { buddiesSchema } from "./buddies-schema.ts";
import { mediaSchema } from "./media-schema.ts";
import { MONGOOSEIM_VERSIONS } from "./mongooseim.ts";
import { pushSchema } from "./push-schema.ts";
import { retentionSchema } from "./retention-schema.ts";
import type { Secrets } from "./secrets.ts";
import { syslogSchema } from "./syslog-schema.ts";
import { usersSchema } from "./users-schema.ts";

/**
 * The one schema of the configuration: config/default.json, merged with config/<APP_ENV>.json, then the
 * environment overrides of `env-overrides.ts`. Every key carries a description: the README's
 * configuration reference is generated from them (`npm run docs:config`) and a test keeps the two in step.
 */

const port = z.number().int().min(0).max(65535);
const filePath = z.string().min(1);

const tls = z
  .object({
    cert: filePath.optional().describe("PEM certificate (chain) path; legacy layout `ssl/server.crt`"),
    key: filePath.optional().describe("PEM private key path; legacy layout `ssl/server.key`"),
    ca: filePath.optional().describe("PEM CA bundle path, sent with the chain; legacy layout `ssl/ca.crt`"),
  })
  .strict()
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: "set both cert and key (TLS on) or neither (plain HTTP)",
  })
  .describe("TLS: HTTPS when cert and key are set; reloaded on SIGHUP and when the files change");

const listener = {
  host: z.string().min(1).describe("address to listen on"),
  port: port.describe("TCP port (0 = any free port)"),
};

const passwordFormat = z.enum(["plain", "scram"]);

// plugin kinds are strings here and checked at start by their registries, which live with the
// implementations (services/common imports no service): services/auth/src/authenticators/registry.ts,
// services/http-utility/src/registration/sms/registry.ts
const authenticator = z
  .object({
    kind: z.string().min(1).describe("authenticator: `web_users`, `http`, `module`, `jwt` or `ldap`"),
    options: z.record(z.string(), z.unknown()).default({}).describe("options of that kind"),
  })
  .strict();

const smsSender = z
  .object({
    kind: z
      .string()
      .min(1)
      .describe(
        "SMS sender: `log` (development: the code goes to the log), `http` (a gateway API), `twilio`",
      ),
    options: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("options of that kind (docs/registration.md)"),
  })
  .strict();

const registration = z
  .object({
    enabled: z.boolean().default(false).describe("accept phone-number registration (POST /api/v1/users)"),
    countries: z
      .array(z.string().regex(/^[A-Z]{2}$/, "an ISO 3166 alpha-2 code such as GR"))
      .default([])
      .describe("countries whose numbers may register, ISO 3166 alpha-2 (empty: any)"),
    sms: smsSender.default({ kind: "log", options: {} }),
    message: z
      .string()
      .includes("{code}", { message: "must contain {code}" })
      .default("Your {app} code is {code}")
      .describe("SMS text; {code} and {app} are replaced"),
    codeTtlSeconds: z.number().int().min(60).max(3600).default(600).describe("life of a challenge code"),
    resendAfterSeconds: z
      .array(z.number().int().min(1).max(86_400))
      .min(1)
      .default([60, 120, 300, 600])
      .describe("wait before the 2nd, 3rd… code of a session (the last value repeats)"),
    maxSends: z.number().int().min(1).max(20).default(5).describe("codes sent per session"),
    maxChecks: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(5)
      .describe("wrong answers accepted per code from one client address"),
    maxChecksPerNumber: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(15)
      .describe(
        "wrong answers accepted per code from all addresses together (at least maxChecks): bounds guessing",
      ),
    retryWindowSeconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .default(30)
      .describe("how long a retried authorize with the same `nonce` gets the same token back (lost answers)"),
  })
  .strict()
  .refine((r) => r.maxChecksPerNumber >= r.maxChecks, {
    path: ["maxChecksPerNumber"],
    message: "must be at least maxChecks, or one address could never use its attempts",
  });

/** A domain's name, a key of `domains` or the name of a `runtime_domains` row. */
export const domainNameSchema = z
  .string()
  .regex(/^[a-z0-9.-]+$/, "a domain is lower-case letters, digits, dots, dashes");

/**
 * One domain's entry, as under `domains` in config/<env>.json and as a row of `runtime_domains` holds it
 * (runtime-domains.ts, `sidecars domains add`): both are checked by this one schema.
 */
export const domainSchema = z
  .object({
    authenticator: authenticator.default({ kind: "web_users", options: {} }),
    mongooseim: z
      .enum(MONGOOSEIM_VERSIONS)
      .optional()
      .describe(
        "the MongooseIM version serving this domain (`2.1.0` or `6.x`): the services warn when the password settings do not fit it (`sidecars domains example`)",
      ),
    passwordFormat: passwordFormat
      .default("scram")
      .describe("`plain` (MongooseIM password_format plain) or `scram`"),
    keepCleartext: z
      .boolean()
      .default(false)
      .describe("keep cleartext passwords (only for `plain` domains that must answer get_password)"),
    scramFormat: z
      .enum(["legacy", "multi"])
      .default("multi")
      .describe("get_password answer: `legacy` ==SCRAM== (MongooseIM 2.x) or `multi` ==MULTI_SCRAM== (6.x)"),
    scramHashes: z
      .array(z.enum(SCRAM_HASHES))
      .min(1)
      .default([...SCRAM_HASHES])
      .describe("hashes stored for new passwords and served by get_password (MongooseIM's SCRAM mechanisms)"),
    scramIterations: z
      .number()
      .int()
      .min(4096)
      .max(1_000_000)
      .default(10_000)
      .describe("PBKDF2 iterations for new passwords (MongooseIM 2.x default 4096, 6.x 10000)"),
    cacheTtlSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(60)
      .describe("how long a successful password check is remembered (0 = never)"),
    buddies: z
      .array(z.string().min(1))
      .default([])
      .describe("buddy nodes of this domain: always checked against web_users, whatever the authenticator"),
    appBasicAuth: z
      .boolean()
      .default(true)
      .describe(
        'the app API takes HTTP Basic (JID and password) from this domain\'s users; false once its apps use sessions: Basic is refused (401 `basic_auth_disabled`) and only bearer access tokens from `POST /api/v1/sessions` are taken (docs/api.md "Sessions")',
      ),
    registration: registration.default({
      enabled: false,
      countries: [],
      sms: { kind: "log", options: {} },
      message: "Your {app} code is {code}",
      codeTtlSeconds: 600,
      resendAfterSeconds: [60, 120, 300, 600],
      maxSends: 5,
      maxChecks: 5,
      maxChecksPerNumber: 15,
      retryWindowSeconds: 30,
    }),
  })
  .strict()
  .refine((d) => !d.keepCleartext || d.passwordFormat === "plain", {
    path: ["keepCleartext"],
    message: "only a `plain` domain may keep cleartext passwords",
  })
  .refine((d) => d.scramFormat !== "legacy" || d.scramHashes.includes("sha1"), {
    path: ["scramHashes"],
    message: "the legacy ==SCRAM== format needs sha1",
  });

/** A duration of the CLI's `--older-than` form (`15m`, `30d`), within [min, max] (written as durations too). */
const duration = (fallback: string, min: string, max: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => durationMs(v) !== undefined, { message: `is not a duration: ${DURATION_FORMS}` })
    .refine(
      (v) => {
        const ms = durationMs(v);
        return ms === undefined || (ms >= (durationMs(min) ?? 0) && ms <= (durationMs(max) ?? 0));
      },
      { message: `must be from ${min} to ${max}` },
    );

/** App sessions (docs/api.md "Sessions"): how long their tokens live. */
const appSessionsSchema = z
  .object({
    accessTtl: duration("15m", "1m", "24h").describe(
      "life of an access token (`15m`): how long a stolen one works, and how long a revoked session's tokens are remembered as revoked",
    ),
    refreshTtl: duration("30d", "1h", "365d").describe(
      "life of a refresh token (`30d`): an app not seen for that long logs in with its password again; each refresh starts it over",
    ),
  })
  .strict()
  .refine((s) => (durationMs(s.accessTtl) ?? 0) < (durationMs(s.refreshTtl) ?? 0), {
    path: ["refreshTtl"],
    message: "must be longer than accessTtl",
  })
  .prefault({})
  .describe('app sessions: bearer access tokens and rotating refresh tokens (docs/api.md "Sessions")');

/** Keys of the buddies service by name, made by `sidecars buddies admin-key`: only their SHA-256. */
const buddiesKeys = z
  .record(
    z.string().regex(/^[\w.-]+$/, "letters, digits, . _ -"),
    z
      .object({
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, "the hex SHA-256 of the key (`sidecars buddies admin-key`)"),
      })
      .strict(),
  )
  .default({});

const LOOPBACK = ["127.0.0.1", "::1", "localhost"];

/** What a server API key may be allowed to do. */
export const API_SCOPES = ["push", "broadcast", "locations:read"] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** The rate limits of the public API, each `{ points, seconds }`. */
export const RATE_LIMITS = [
  "registerPerIp",
  "registerPerNumber",
  "authorizePerIp",
  "authorizePerNumber",
  "registerPerNumberIp",
  "authorizePerNumberIp",
  "smsPerDay",
  "smsPerPrefixPerDay",
  "generatedAvatarsPerIp",
] as const;
export type RateLimitName = (typeof RATE_LIMITS)[number];

/** An app version: dotted numbers, an optional pre-release (`2.0.0-beta`), or an integer build code. */
export const VERSION = /^\d{1,9}(\.\d{1,9}){0,3}(-(?=.{1,40}$)[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/**
 * Legacy app compatibility (docs/cutover.md "Installed apps"): opt-in per app and domain, bounded by a
 * version and a required end date, rate-limited per address. The legacy services trusted the `node` field;
 * this keeps that for the installed versions only, for the cut-over's weeks, on endpoints that write the
 * caller's own data (no read of stored data goes through it).
 */
const legacyCompatSchema = z
  .object({
    domains: z
      .array(z.string().min(1))
      .min(1, "name at least one domain whose installed apps call without credentials")
      .describe("the domains whose installed apps of this app may call without credentials"),
    belowVersion: z
      .string()
      .regex(VERSION, "a version such as 1.10.2, 2.0.0-beta or a build number")
      .describe(
        "versions below this one (declared in `X-App-Version`) are legacy; a call that declares no version is an installed legacy app",
      ),
    until: z.iso
      .datetime({ offset: true, error: "until must be a date and time such as 2027-03-31T00:00:00Z" })
      .or(z.iso.date({ error: "until must be a date such as 2027-03-31" }))
      .transform((v) => new Date(v))
      .describe(
        "the end of compatibility (ISO 8601 date or date-time): from then on, credentials are required",
      ),
    perAddress: z
      .object({
        points: z.number().int().positive().default(120),
        seconds: z.number().int().positive().default(60),
      })
      .strict()
      .default({ points: 120, seconds: 60 })
      .describe("legacy calls allowed per client address and period (429 with Retry-After beyond)"),
  })
  .strict();

/** Every key of the config, each checked on its own; `configSchema` adds the checks across them. */
export const configFieldsSchema = z
  .object({
    env: z
      .enum(["development", "test", "demo", "production"])
      .describe("APP_ENV: which config/<env>.json applies"),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).describe("pino level"),
        pretty: z.boolean().describe("human-readable lines instead of JSON (development)"),
        syslog: syslogSchema.optional(),
      })
      .strict(),
    database: z
      .object({
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
          .optional()
          .describe("PostgreSQL URL (env DATABASE_URL); unset = the embedded PostgreSQL"),
        poolMax: z.number().int().min(1).max(500).describe("connections per process"),
        connectTimeoutMs: z.number().int().min(100).describe("give up connecting after this long"),
        statementTimeoutMs: z.number().int().min(0).describe("server-side statement_timeout (0 = none)"),
        embedded: z
          .object({
            dataDir: filePath.describe("data directory of the embedded PostgreSQL"),
            port: port.min(1).describe("its port, on 127.0.0.1 only"),
            database: z.string().min(1).describe("database the services use"),
          })
          .strict(),
      })
      .strict(),
    shutdown: z
      .object({
        timeoutMs: z
          .number()
          .int()
          .min(100)
          .max(60_000)
          .describe("bound on finishing in-flight requests at SIGINT/SIGTERM (pm2 kill_timeout is above it)"),
        keepAliveTimeoutMs: z
          .number()
          .int()
          .min(100)
          .describe(
            "idle keep-alive connections close after this long; at shutdown they get this long for a last request",
          ),
      })
      .strict()
      .refine((s) => s.keepAliveTimeoutMs < s.timeoutMs, {
        path: ["keepAliveTimeoutMs"],
        message: "must be below shutdown.timeoutMs, or shutdown cuts idle keep-alive clients off",
      }),
    metrics: z
      .object({
        allow: z
          .array(
            z.union([z.ipv4(), z.ipv6(), z.cidrv4(), z.cidrv6()], {
              error: "must be an IP address or CIDR block",
            }),
          )
          .describe("addresses or CIDR blocks that may read /metrics (loopback always may)"),
      })
      .strict(),
    services: z
      .object({
        httpUtility: z
          .object({
            ...listener,
            tls,
            internal: z
              .object({
                host: z
                  .string()
                  .min(1)
                  .describe(
                    "address of the internal listener: loopback unless MongooseIM runs on another host",
                  ),
                port: port.describe("its TCP port (0 = any free port)"),
              })
              .strict()
              .describe(
                "the internal listener: MongooseIM's message hook and the MongoosePush API (`/v2|v3/notification`), never served on the public one (docs/push.md)",
              ),
            trustProxy: z
              .array(z.string().min(1))
              .describe(
                "proxies whose X-Forwarded-For names the client (express `trust proxy`: loopback, CIDRs); a request from one without the header is refused (docs/operations.md)",
              ),
            apiKeys: z
              .record(
                z.string().regex(/^[\w.-]+$/, "letters, digits, . _ -"),
                z
                  .object({
                    sha256: z
                      .string()
                      .regex(/^[0-9a-f]{64}$/, "the hex SHA-256 of the key (`sidecars api-keys create`)"),
                    scopes: z
                      .array(z.enum(API_SCOPES))
                      .min(1)
                      .describe(`any of ${API_SCOPES.join(", ")}`),
                    domain: z
                      .string()
                      .min(1)
                      .optional()
                      .describe(
                        "the one domain this key acts in: a call naming no domain is in it (a legacy backend's `send` names none), a call naming another is refused",
                      ),
                  })
                  .strict(),
              )
              .describe("server API keys by name: the SHA-256 of each key (never the key) and its scopes"),
            rateLimits: z
              .record(
                z.enum(RATE_LIMITS),
                z
                  .object({
                    points: z.number().int().min(1).describe("requests allowed"),
                    seconds: z.number().int().min(1).describe("per this many seconds"),
                  })
                  .strict(),
              )
              .describe(`limits shared by all processes through PostgreSQL: ${RATE_LIMITS.join(", ")}`),
            sessions: appSessionsSchema,
            locations: z
              .object({
                maxBatch: z.number().int().min(1).max(10_000).describe("reports per request"),
                futureSkewSeconds: z
                  .number()
                  .int()
                  .min(0)
                  .describe("how far in the future a report's date may be (clock skew)"),
              })
              .strict(),
          })
          .strict()
          .describe("public app API (env HTTP_UTILITY_PORT)"),
        auth: z
          .object({
            ...listener,
            allowNonLoopback: z
              .boolean()
              .describe("allow a non-loopback host (off: the auth service refuses to bind beyond loopback)"),
            pathPrefix: z
              .string()
              .regex(/^\/(.*\/)?$/, "must start and end with /")
              .describe("MongooseIM path_prefix"),
            backendTimeoutMs: z
              .number()
              .int()
              .min(50)
              .max(30_000)
              .describe("bound on one backend check (MongooseIM gives up after 2 s in 6.x, 5 s in 2.1.0)"),
            guard: z
              .object({
                windowSeconds: z.number().int().min(1).describe("failures are counted within this long"),
                maxFailures: z
                  .number()
                  .int()
                  .min(1)
                  .describe(
                    "failed app logins of one JID from one client address that refuse that address for that JID",
                  ),
                maxFailuresPerAddress: z
                  .number()
                  .int()
                  .min(1)
                  .default(30)
                  .describe(
                    "failed app logins from one client address, any JID, that refuse the address before any check",
                  ),
                lockSeconds: z
                  .number()
                  .int()
                  .min(1)
                  .describe(
                    "how long a refused address stays refused (only that address: never the account)",
                  ),
                delayAfterFailures: z
                  .number()
                  .int()
                  .min(0)
                  .default(5)
                  .describe(
                    "MongooseIM/ejabberd checks (no client address): wrong answers of a JID after this many are slowed",
                  ),
                maxDelayMs: z
                  .number()
                  .int()
                  .min(0)
                  .max(10_000)
                  .default(1000)
                  .describe(
                    "the longest such a wrong answer is held back (250 ms, doubling); a right password is never",
                  ),
              })
              .strict()
              .describe("guessing bounds, shared by all processes through PostgreSQL (docs/security.md)"),
            basicAuth: z
              .string()
              .regex(/^[^:]+:.+$/, "must be user:password")
              .optional()
              .describe(
                "MongooseIM basic_auth `user:password` (env AUTH_BASIC_AUTH or AUTH_BASIC_AUTH_FILE)",
              ),
          })
          .strict()
          .refine((a) => a.allowNonLoopback || LOOPBACK.includes(a.host), {
            path: ["host"],
            message: "is not loopback: use 127.0.0.1, or set services.auth.allowNonLoopback",
          })
          .describe("MongooseIM auth contract (env AUTH_PORT)"),
        buddies: z
          .object({
            ...listener,
            admins: buddiesKeys.describe(
              "admin keys by name (HTTP Basic `name:key` or Bearer key): the SHA-256 of each key",
            ),
            hookKeys: buddiesKeys.describe(
              "keys that may call buddies' HTTP hooks only (monitoring webhooks), stored as admin keys are",
            ),
          })
          .strict()
          .describe("buddies admin API and page (env BUDDIES_ADMIN_PORT)"),
      })
      .strict(),
    media: mediaSchema,
    buddies: buddiesSchema,
    push: pushSchema,
    retention: retentionSchema,
    users: usersSchema,
    apps: z
      .record(
        z.string().min(1).max(100),
        z
          .object({
            minimumVersion: z
              .record(
                z.string().regex(/^[a-z0-9_-]+$/, "a platform name such as android, ios or default"),
                z.string().regex(VERSION, "a version such as 1.10.2, 2.0.0-beta or a build number"),
              )
              .describe(
                "per platform (`android`, `ios`…; `default` for any other); `sidecars apps set-minimum` overrides",
              ),
            default: z
              .boolean()
              .optional()
              .describe(
                "the app that answers `GET /api/v1/minimum_app_version` without `appName`, as installed legacy apps call it (one app at most; the only app configured is the default without it)",
              ),
            legacy: legacyCompatSchema
              .optional()
              .describe(
                "legacy compatibility (docs/cutover.md): installed versions below `belowVersion` may call the legacy app endpoints without credentials, trusted by their `node` field, in `domains`, until `until`; off without it",
              ),
          })
          .strict(),
      )
      .superRefine((apps, ctx) => {
        const defaults = Object.keys(apps).filter((name) => apps[name]?.default);
        if (defaults.length > 1) {
          ctx.addIssue({
            code: "custom",
            message: `${defaults.join(", ")} are all marked default: mark one app at most`,
          });
        }
      })
      .describe("apps by appName: the minimum version each platform must run"),
    domains: z
      .record(domainNameSchema, domainSchema)
      .describe("XMPP domains served, each `{ authenticator, passwordFormat, keepCleartext, buddies }`"),
  })
  .strict();

export const configSchema = configFieldsSchema.superRefine((c, ctx) => {
  for (const problem of domainReferenceProblems(c)) ctx.addIssue({ code: "custom", ...problem });
});

type ConfigFields = z.output<typeof configFieldsSchema>;

/**
 * The checks across the config that involve domains: what names a domain (apiKeys.<k>.domain,
 * apps.<a>.legacy.domains, buddies.domains) names one of `domains`, and a buddy's domain lets it log in.
 * `domains` is every domain served: the files' and the database's together (runtime-domains.ts), so a file may
 * name a domain added with `sidecars domains add`, and such a domain is checked against what the files say.
 */
export function domainReferenceProblems(
  c: Pick<ConfigFields, "services" | "apps" | "buddies" | "domains">,
): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const notServed =
    "is not a domain of `domains`: add it there first (or to the database: `sidecars domains add`)";
  for (const [name, key] of Object.entries(c.services.httpUtility.apiKeys)) {
    if (key.domain !== undefined && !c.domains[key.domain]) {
      problems.push({
        path: ["services", "httpUtility", "apiKeys", name, "domain"],
        message: `${key.domain} ${notServed}`,
      });
    }
  }
  for (const [appName, app] of Object.entries(c.apps)) {
    for (const d of app.legacy?.domains ?? []) {
      if (!c.domains[d]) {
        problems.push({ path: ["apps", appName, "legacy", "domains"], message: `${d} ${notServed}` });
      }
    }
  }
  for (const [domainName, d] of Object.entries(c.buddies.domains)) {
    const served = c.domains[domainName];
    if (!served) {
      problems.push({ path: ["buddies", "domains", domainName], message: notServed });
      continue;
    }
    for (const username of Object.keys(d.definitions)) {
      const problem = buddyHomeProblem(served, domainName, username);
      if (problem) {
        problems.push({
          path: ["buddies", "domains", domainName, "definitions", username],
          message: problem,
        });
      }
    }
  }
  return problems;
}

/**
 * Why `username` cannot be a buddy of a domain, or undefined: a buddy logs in with a web_users password, so
 * in a domain whose users another backend checks it must be listed in `domains.<domain>.buddies`.
 */
export function buddyHomeProblem(
  domain: { authenticator: { kind: string }; buddies: readonly string[] },
  domainName: string,
  username: string,
): string | undefined {
  if (domain.authenticator.kind === "web_users") return undefined;
  if (domain.buddies.map((b) => b.toLowerCase()).includes(username.toLowerCase())) return undefined;
  return `${domainName} checks passwords with its ${domain.authenticator.kind} backend: add "${username}" to domains.${domainName}.buddies so it logs in with its web_users password`;
}

/** The loaded config: the files and the environment, validated, and the secrets its keys name (secrets.ts). */
export type Config = z.infer<typeof configSchema> & { secrets: Secrets };
export type DomainConfig = Config["domains"][string];
