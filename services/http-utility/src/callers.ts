import { timingSafeEqual } from "node:crypto";
import type { Request } from "express";
import { Counter, type Registry } from "prom-client";
import type { ZodOpenApiSecuritySchemeObject } from "zod-openapi";
import type { AppLogin, AuthApi } from "#auth";
import type { ApiScope, Config } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import type { Pool } from "#common/db/pool.ts";
import type { ErrorEntry } from "#common/errors.ts";
import { createAllowList } from "#common/http/address-allow-list.ts";
import { createRateLimit, type RateLimit } from "#common/http/rate-limit.ts";
import type { CallerPolicy as RouteCallerPolicy } from "#common/http/route.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { defaultApp, isBelow, isVersion, minimumVersion } from "./app-version/versions.ts";
import { errors } from "./errors.ts";
import type { AppSessions } from "./sessions/tokens.ts";

/**
 * Who is calling (docs/api.md "Who is calling", docs/security.md "Who can call what"). Apps: HTTP Basic
 * with the user's JID and XMPP password, decided by the auth service's own core (per-domain authenticators,
 * success cache, failures counted per client address: docs/security.md), or `Authorization: Bearer <access
 * token>` of an app session (sessions/tokens.ts: a JWT, told from an API key by its shape).
 * Servers: `Authorization: Bearer <key>`, matched against the SHA-256 of each configured key, with scopes.
 * MongooseIM, on the internal listener: no credentials, its connection's address (`caller.internal`).
 * A route definition names its policy (`caller: caller.app`); `routesRouter` resolves it with
 * `createCallers(…).resolve` before the handler runs, and the handler receives the caller, typed by that policy.
 */
/**
 * `legacy`: no credentials, trusted by the `node` it names under the app's legacy compatibility
 * (docs/cutover.md "Installed apps"); a handler that reads stored data never runs for such a caller.
 */
export type AppCaller = {
  kind: "app";
  jid: Jid;
  legacy?: true;
  /** The app session whose access token the call carried (none for HTTP Basic). */
  sessionId?: string;
};
/** `domain`: the one domain the key acts in, when its config limits it (`apiKeys.<name>.domain`). */
export type ServerCaller = {
  kind: "server";
  key: string;
  scopes: ReadonlySet<ApiScope>;
  domain?: string | undefined;
};

/**
 * The domain a server's call names, as its key allows: the key's own when the key is limited to one (403 for
 * another); otherwise the one named, if any.
 */
export function serverDomain(who: ServerCaller, given: string | undefined): string | undefined {
  if (who.domain !== undefined) {
    if (given !== undefined && given !== who.domain) throw errors.keyDomainOnly(given, who.domain);
    return who.domain;
  }
  return given;
}
export type Caller = AppCaller | ServerCaller;

type ApiKeys = Config["services"]["httpUtility"]["apiKeys"];

/** The names of the security schemes in the OpenAPI document's `components.securitySchemes`. */
export const APP_BASIC = "appBasic";
export const APP_BEARER = "appBearer";
export const API_KEY = "apiKey";

export const securitySchemes: Record<string, ZodOpenApiSecuritySchemeObject> = {
  [APP_BASIC]: {
    type: "http",
    scheme: "basic",
    description:
      "Apps: HTTP Basic with the user's JID (`node@domain`, case-insensitive) as the user name and their XMPP password (the `token` that `POST /api/v1/users/authorize` answered).",
  },
  [APP_BEARER]: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description:
      'Apps: `Authorization: Bearer <access token>` of an app session (`POST /api/v1/sessions`, docs/api.md "Sessions"): a JWT that lives 15 minutes by default; `POST /api/v1/sessions/refresh` gives the next.',
  },
  [API_KEY]: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "sk_…",
    description:
      "Servers: `Authorization: Bearer <API key>`. A key has scopes (`push`, `broadcast`, `locations:read`); an operation lists the scope it needs. Operators create keys with `sidecars api-keys create` (docs/api.md).",
  },
};

/** Security requirements of an operation, by who may call it (docs/security.md "Who can call what"). */
export const security = {
  /** Anyone. */
  public: [] as Record<string, string[]>[],
  /** An app user (HTTP Basic, or the bearer access token of an app session). */
  app: [{ [APP_BASIC]: [] }, { [APP_BEARER]: [] }] as Record<string, string[]>[],
  /** A server whose API key has `scope`. */
  server: (scope: ApiScope): Record<string, string[]>[] => [{ [API_KEY]: [scope] }],
  /** Either an app user (on their own data) or a server whose API key has `scope`. */
  appOrServer: (scope: ApiScope): Record<string, string[]>[] => [
    { [APP_BASIC]: [] },
    { [APP_BEARER]: [] },
    { [API_KEY]: [scope] },
  ],
};

const APP_ERRORS: ErrorEntry[] = [
  errors.invalidCredentials,
  errors.basicAuthDisabled,
  errors.invalidAccessToken,
  errors.accessTokenExpired,
  errors.sessionRevoked,
  errors.accountDisabled,
  errors.tooManyFailures,
  errors.authUnavailable,
  errors.invalidAppVersion,
  errors.appVersionTooOld,
];
const SERVER_ERRORS: ErrorEntry[] = [errors.invalidApiKey, errors.insufficientScope, errors.keyDomainOnly];

/**
 * Whom a route accepts: anyone, an app user, a server with a scope, either, or (on the internal listener) a
 * connection from an allowed address.
 */
export type PublicPolicy = RouteCallerPolicy<undefined> & { kind: "public" };
export type AppPolicy = RouteCallerPolicy<AppCaller> & { kind: "app"; legacy?: LegacyEndpoint };

/**
 * A legacy endpoint that installed apps call without credentials: its name in `legacy_calls_total` and
 * where the caller's node is in the request (the legacy trust model: the app says who it is).
 */
export interface LegacyEndpoint {
  endpoint: string;
  node(req: Request): unknown;
}
export type ServerPolicy = RouteCallerPolicy<ServerCaller> & { kind: "server"; scope: ApiScope };
export type AppOrServerPolicy = RouteCallerPolicy<Caller> & { kind: "appOrServer"; scope: ApiScope };
/** No credentials: the connection's own address decides (docs/push.md "MongooseIM"); no caller object. */
export type InternalPolicy = RouteCallerPolicy<undefined> & {
  kind: "internal";
  /** Loopback, or an address of the list the policy was made with. */
  allowed(address: string | undefined): boolean;
};
export type CallerPolicy = PublicPolicy | AppPolicy | ServerPolicy | AppOrServerPolicy | InternalPolicy;

/** The policies a route definition names: `caller: caller.appOrServer("locations:read")`. */
export const caller = {
  public: { kind: "public", security: security.public, errors: [] } as PublicPolicy,
  app: { kind: "app", security: security.app, errors: APP_ERRORS } as AppPolicy,
  /**
   * An app user, or, where the app's `legacy` compatibility is on (config `apps.<app>.legacy`), an installed
   * legacy version calling without credentials, trusted by the node `node(req)` names.
   */
  appOrLegacy: (endpoint: string, node: (req: Request) => unknown): AppPolicy => ({
    kind: "app",
    legacy: { endpoint, node },
    security: security.app,
    errors: [...APP_ERRORS, errors.legacyDomainRequired, errors.rateLimited],
  }),
  server: (scope: ApiScope): ServerPolicy => ({
    kind: "server",
    scope,
    security: security.server(scope),
    errors: SERVER_ERRORS,
  }),
  appOrServer: (scope: ApiScope): AppOrServerPolicy => ({
    kind: "appOrServer",
    scope,
    security: security.appOrServer(scope),
    errors: [...APP_ERRORS, ...SERVER_ERRORS],
  }),
  /**
   * A caller that sends no credentials (MongooseIM), let in by its connection's address: loopback or `allow`
   * (`push.hooks.allow`). The document shows no security scheme, and the 403 of any other address.
   */
  internal: (allow: readonly string[]): InternalPolicy => ({
    kind: "internal",
    allowed: createAllowList(allow),
    security: security.public,
    errors: [errors.forbiddenAddress],
  }),
};

/**
 * Resolves an internal policy: the socket's address, never `req.ip`, which a trusted proxy's X-Forwarded-For
 * sets, so that no header can make a stranger local. Needs no auth core: the internal listener's app
 * (app.ts) mounts its routes with this alone.
 */
export function resolveInternalCaller(policy: InternalPolicy, req: Request): undefined {
  const address = req.socket.remoteAddress;
  if (!policy.allowed(address)) throw errors.forbiddenAddress(address);
  return undefined;
}

// fatal: bytes that are not UTF-8 are refused, not turned into U+FFFD (two different passwords would then
// be one, and a client sending Latin-1 would count failures toward a lockout with a password it never had)
const utf8 = new TextDecoder("utf-8", { fatal: true });

function basicCredentials(header: string): { jid: Jid; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m?.[1]) return undefined;
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(m[1], "base64"));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  if (colon <= 0) return undefined;
  try {
    return { jid: parseJid(decoded.slice(0, colon)), password: decoded.slice(colon + 1) };
  } catch {
    return undefined;
  }
}

export interface Callers {
  /** The caller of `req` under `policy` (undefined for a public or internal one), or the error that refuses it. */
  resolve(policy: CallerPolicy, req: Request): Promise<Caller | undefined>;
  /**
   * An app's login with the JID and password of a request's body (`POST /api/v1/sessions`), decided exactly
   * as HTTP Basic is (426 for an app too old, failures counted per client address, 403 for a disabled
   * account), whatever the domain's `appBasicAuth`: the app as it declared itself, and where it calls from.
   */
  login(
    req: Request,
    jid: Jid,
    password: string,
  ): Promise<{ caller: AppCaller; app: DeclaredApp; client: string }>;
  /** The app as it declares itself, refused (426) when it is too old. */
  checkApp(req: Request): Promise<DeclaredApp>;
}

/** What the app calling says of itself, in the headers every current app sends (docs/api.md "App versions"). */
export interface DeclaredApp {
  name?: string | undefined;
  version?: string | undefined;
  platform?: string | undefined;
}

const header = (req: Request, name: string): string | undefined => {
  const v = req.headers[name];
  const text = Array.isArray(v) ? v[0] : v;
  return text === undefined || text.trim() === "" ? undefined : text.trim();
};

/** `X-App-Name`, `X-App-Version`, `X-App-Platform`; a version that is no version is refused (400). */
export function declaredApp(req: Request): DeclaredApp {
  const version = header(req, "x-app-version");
  if (version !== undefined && !isVersion(version)) throw errors.invalidAppVersion(version);
  return {
    name: header(req, "x-app-name")?.slice(0, 100),
    version,
    platform: header(req, "x-app-platform")?.toLowerCase().slice(0, 40),
  };
}

export interface CallerDeps {
  core: AuthApi;
  apiKeys: ApiKeys;
  /** Access tokens of app sessions; without them a bearer token of an app is refused. */
  sessions?: AppSessions | undefined;
  /** The domains served, for their `appBasicAuth` switch (kept up to date in place by the service). */
  domains?: Pick<Config, "domains"> | undefined;
  /**
   * The apps (minimum versions, legacy compatibility) and the database their overrides and the legacy rate
   * limits live in; without them no version is checked and no legacy call is taken.
   */
  apps?: { config: Pick<Config, "apps">; pool: Pool; registry?: Registry | undefined };
}

export function createCallers(deps: CallerDeps): Callers {
  const keys = Object.entries(deps.apiKeys).map(([name, k]) => ({
    name,
    sha256: Buffer.from(k.sha256, "hex"),
    scopes: new Set(k.scopes),
    domain: k.domain,
  }));
  const apps = deps.apps;
  const legacyCalls = apps
    ? new Counter({
        name: "legacy_calls_total",
        help: "Calls taken without credentials under an app's legacy compatibility, by endpoint and app",
        labelNames: ["endpoint", "app"] as const,
        registers: apps.registry ? [apps.registry] : [],
      })
    : undefined;
  const legacyLimits = new Map<string, RateLimit>();

  /** `client`: the caller's address, as the socket (or a trusted proxy's X-Forwarded-For) tells it. */
  async function appCaller(header: string, client: string): Promise<AppCaller> {
    const creds = basicCredentials(header);
    if (!creds) throw errors.invalidCredentials();
    // before the password is looked at: a domain whose apps moved to sessions counts no failure here
    if (deps.domains?.domains[creds.jid.domain]?.appBasicAuth === false) throw errors.basicAuthDisabled();
    return checkLogin(creds.jid, creds.password, client);
  }

  async function checkLogin(jid: Jid, password: string, client: string): Promise<AppCaller> {
    let login: AppLogin;
    try {
      login = await deps.core.checkAppLogin(jid, password, client);
    } catch {
      throw errors.authUnavailable();
    }
    if (!login.ok)
      throw login.reason === "throttled"
        ? errors.tooManyFailures(login.retryAfterS)
        : login.reason === "disabled"
          ? errors.accountDisabled()
          : errors.invalidCredentials();
    return { kind: "app", jid };
  }

  /** The app session an access token belongs to: signature, expiry and revocation, no database round trip. */
  async function bearerCaller(token: string): Promise<AppCaller> {
    if (!deps.sessions) throw errors.invalidAccessToken();
    let v: Awaited<ReturnType<AppSessions["verify"]>>;
    try {
      v = await deps.sessions.verify(token);
    } catch {
      throw errors.authUnavailable();
    }
    if (!v.ok) {
      throw v.reason === "expired"
        ? errors.accessTokenExpired()
        : v.reason === "revoked"
          ? errors.sessionRevoked()
          : errors.invalidAccessToken();
    }
    // a domain no longer served (removed at runtime) takes its sessions with it
    if (deps.domains && !Object.hasOwn(deps.domains.domains, v.jid.domain)) throw errors.sessionRevoked();
    return { kind: "app", jid: v.jid, sessionId: v.sessionId };
  }

  /** 426 with `minimumVersion` when the app declares a version below its minimum for its platform. */
  async function checkVersion(declared: DeclaredApp): Promise<void> {
    if (!apps || declared.version === undefined) return;
    const name = declared.name ?? defaultApp(apps.config.apps);
    if (name === undefined || !Object.hasOwn(apps.config.apps, name)) return;
    const minimum = await minimumVersion(apps.pool, apps.config.apps, name, declared.platform);
    if (minimum.ok && isBelow(declared.version, minimum.minimumVersion)) {
      throw errors.appVersionTooOld(name, declared.version, minimum.minimumVersion);
    }
  }

  /**
   * A call without credentials that the app's legacy compatibility takes, as the user its `node` names; or
   * undefined (then it is refused as any call without credentials is).
   */
  async function legacyCaller(
    endpoint: LegacyEndpoint,
    declared: DeclaredApp,
    req: Request,
    client: string,
  ): Promise<AppCaller | undefined> {
    if (!apps) return undefined;
    const name = declared.name ?? defaultApp(apps.config.apps);
    const compat =
      name !== undefined && Object.hasOwn(apps.config.apps, name)
        ? apps.config.apps[name]?.legacy
        : undefined;
    if (!name || !compat || Date.now() >= compat.until.getTime()) return undefined;
    if (declared.version !== undefined && !isBelow(declared.version, compat.belowVersion)) return undefined;
    const node = endpoint.node(req);
    if (typeof node !== "string" || node === "" || node.length > 100) return undefined;
    const named = (req.body as { domain?: unknown } | undefined)?.domain;
    let domain: string;
    if (typeof named === "string" && compat.domains.includes(named)) domain = named;
    else if (compat.domains.length === 1) domain = compat.domains[0] as string;
    else throw errors.legacyDomainRequired(name, compat.domains);
    let jid: Jid;
    try {
      jid = parseJid(`${node.replace(/^\+/, "")}@${domain}`);
    } catch {
      return undefined;
    }
    let limit = legacyLimits.get(name);
    if (!limit) {
      limit = createRateLimit(apps.pool, `legacy:${name}`, compat.perAddress);
      legacyLimits.set(name, limit);
    }
    await limit.consume(client);
    // the node must be a user: a legacy call creates nothing for a name nobody has
    let exists: boolean;
    try {
      exists = await deps.core.userExists(jid);
    } catch {
      throw errors.authUnavailable();
    }
    if (!exists) return undefined;
    legacyCalls?.inc({ endpoint: endpoint.endpoint, app: name });
    return { kind: "app", jid, legacy: true };
  }

  function serverCaller(header: string, scope: ApiScope): ServerCaller {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) throw errors.invalidApiKey(false);
    const presented = hashBytes("sha256", m[1]);
    // every key compared, in constant time: which key matched (or that none did) shows in no timing
    let found: (typeof keys)[number] | undefined;
    for (const k of keys) if (timingSafeEqual(k.sha256, presented)) found = k;
    if (!found) throw errors.invalidApiKey(true);
    if (!found.scopes.has(scope)) throw errors.insufficientScope(scope);
    return { kind: "server", key: found.name, scopes: found.scopes, domain: found.domain };
  }

  async function resolve(policy: CallerPolicy, req: Request): Promise<Caller | undefined> {
    if (policy.kind === "public") return undefined;
    if (policy.kind === "internal") return resolveInternalCaller(policy, req);
    const header = req.headers.authorization ?? "";
    const isBearer = /^Bearer\s/i.test(header);
    // an app's access token is a JWT (two dots); an API key (`sk_…`) never has one
    const accessToken = isBearer ? accessTokenOf(header) : undefined;
    if (policy.kind === "server" || (policy.kind === "appOrServer" && isBearer && !accessToken)) {
      return serverCaller(header, policy.scope);
    }
    // an app: one too old is told to update (426) before anything else, with or without credentials
    const declared = declaredApp(req);
    await checkVersion(declared);
    if (accessToken) return bearerCaller(accessToken);
    const client = req.ip ?? req.socket.remoteAddress ?? "unknown";
    if (policy.kind === "app" && policy.legacy && header === "") {
      const legacy = await legacyCaller(policy.legacy, declared, req, client);
      if (legacy) return legacy;
    }
    return appCaller(header, client);
  }

  return {
    resolve,
    async login(req, jid, password) {
      const app = declaredApp(req);
      await checkVersion(app);
      const client = req.ip ?? req.socket.remoteAddress ?? "unknown";
      return { caller: await checkLogin(jid, password, client), app, client };
    },
    async checkApp(req) {
      const app = declaredApp(req);
      await checkVersion(app);
      return app;
    },
  };
}

/** The token of `Bearer <token>` when it has the shape of a JWS compact serialization (RFC 7515 §7.1). */
function accessTokenOf(header: string): string | undefined {
  const m = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i.exec(header);
  return m?.[1];
}
