import { timingSafeEqual } from "node:crypto";
import type { Request } from "express";
import type { ZodOpenApiSecuritySchemeObject } from "zod-openapi";
import type { AppLogin, AuthApi } from "#auth";
import type { ApiScope, Config } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import type { ErrorEntry } from "#common/errors.ts";
import { createAllowList } from "#common/http/address-allow-list.ts";
import type { CallerPolicy as RouteCallerPolicy } from "#common/http/route.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";
import { errors } from "./errors.ts";

/**
 * Who is calling (docs/api.md "Who is calling", docs/security.md "Who can call what"). Apps: HTTP Basic
 * with the user's JID and XMPP password, decided by the auth service's own core (per-domain authenticators,
 * success cache, failures counted per client address: docs/security.md).
 * Servers: `Authorization: Bearer <key>`, matched against the SHA-256 of each configured key, with scopes.
 * MongooseIM, on the internal listener: no credentials, its connection's address (`caller.internal`).
 * A route definition names its policy (`caller: caller.app`); `routesRouter` resolves it with
 * `createCallers(…).resolve` before the handler runs, and the handler receives the caller, typed by that policy.
 */
export type AppCaller = { kind: "app"; jid: Jid };
export type ServerCaller = { kind: "server"; key: string; scopes: ReadonlySet<ApiScope> };
export type Caller = AppCaller | ServerCaller;

type ApiKeys = Config["services"]["httpUtility"]["apiKeys"];

/** The names of the security schemes in the OpenAPI document's `components.securitySchemes`. */
export const APP_BASIC = "appBasic";
export const API_KEY = "apiKey";

export const securitySchemes: Record<string, ZodOpenApiSecuritySchemeObject> = {
  [APP_BASIC]: {
    type: "http",
    scheme: "basic",
    description:
      "Apps: HTTP Basic with the user's JID (`node@domain`, case-insensitive) as the user name and their XMPP password (the `token` that `POST /api/v1/users/authorize` answered).",
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
  /** An app user (HTTP Basic). */
  app: [{ [APP_BASIC]: [] }] as Record<string, string[]>[],
  /** A server whose API key has `scope`. */
  server: (scope: ApiScope): Record<string, string[]>[] => [{ [API_KEY]: [scope] }],
  /** Either an app user (on their own data) or a server whose API key has `scope`. */
  appOrServer: (scope: ApiScope): Record<string, string[]>[] => [{ [APP_BASIC]: [] }, { [API_KEY]: [scope] }],
};

const APP_ERRORS: ErrorEntry[] = [errors.invalidCredentials, errors.tooManyFailures, errors.authUnavailable];
const SERVER_ERRORS: ErrorEntry[] = [errors.invalidApiKey, errors.insufficientScope];

/**
 * Whom a route accepts: anyone, an app user, a server with a scope, either, or (on the internal listener) a
 * connection from an allowed address.
 */
export type PublicPolicy = RouteCallerPolicy<undefined> & { kind: "public" };
export type AppPolicy = RouteCallerPolicy<AppCaller> & { kind: "app" };
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
}

export function createCallers(deps: { core: AuthApi; apiKeys: ApiKeys }): Callers {
  const keys = Object.entries(deps.apiKeys).map(([name, k]) => ({
    name,
    sha256: Buffer.from(k.sha256, "hex"),
    scopes: new Set(k.scopes),
  }));

  /** `client`: the caller's address, as the socket (or a trusted proxy's X-Forwarded-For) tells it. */
  async function appCaller(header: string, client: string): Promise<AppCaller> {
    const creds = basicCredentials(header);
    if (!creds) throw errors.invalidCredentials();
    let login: AppLogin;
    try {
      login = await deps.core.checkAppLogin(creds.jid, creds.password, client);
    } catch {
      throw errors.authUnavailable();
    }
    if (!login.ok)
      throw login.reason === "throttled"
        ? errors.tooManyFailures(login.retryAfterS)
        : errors.invalidCredentials();
    return { kind: "app", jid: creds.jid };
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
    return { kind: "server", key: found.name, scopes: found.scopes };
  }

  async function resolve(policy: CallerPolicy, req: Request): Promise<Caller | undefined> {
    if (policy.kind === "public") return undefined;
    if (policy.kind === "internal") return resolveInternalCaller(policy, req);
    const header = req.headers.authorization ?? "";
    const isBearer = /^Bearer\s/i.test(header);
    if (policy.kind === "server" || (policy.kind === "appOrServer" && isBearer)) {
      return serverCaller(header, policy.scope);
    }
    return appCaller(header, req.ip ?? req.socket.remoteAddress ?? "unknown");
  }

  return { resolve };
}
