import { timingSafeEqual } from "node:crypto";
import type { RequestHandler, Response } from "express";
import type { AppLogin, AuthApi } from "#auth";
import type { ApiScope, Config } from "#common/config/schema.ts";
import { hashBytes } from "#common/credentials/hmac.ts";
import { HttpError } from "#common/errors.ts";
import { type Jid, parseJid } from "#common/users/jid.ts";

/**
 * Who is calling (architecture.md "Security model"). Apps: HTTP Basic with the user's JID and XMPP password,
 * decided by the auth service's own core (per-domain authenticators, success cache, failures counted per
 * client address: docs/security.md).
 * Servers: `Authorization: Bearer <key>`, matched against the SHA-256 of each configured key, with scopes.
 * The caller is kept in `res.locals.caller`; read it with `callerOf(res)`.
 */
export type Caller =
  | { kind: "app"; jid: Jid }
  | { kind: "server"; key: string; scopes: ReadonlySet<ApiScope> };

type ApiKeys = Config["services"]["httpUtility"]["apiKeys"];

const REALM = 'Basic realm="xmpp-sidecars", charset="UTF-8"';

export const invalidCredentials = () =>
  new HttpError(
    401,
    "invalid_credentials",
    "Send HTTP Basic credentials: your JID (node@domain) and XMPP password.",
    { "www-authenticate": REALM },
  );
// RFC 6750 §3: no error code when no key was sent, invalid_token for a key we do not know
const invalidApiKey = (presented: boolean) =>
  new HttpError(401, "invalid_api_key", "Send a valid API key as `Authorization: Bearer <key>`.", {
    "www-authenticate": `Bearer realm="xmpp-sidecars"${presented ? ', error="invalid_token"' : ""}`,
  });
const missingScope = (scope: ApiScope) =>
  new HttpError(
    403,
    "insufficient_scope",
    `This API key lacks the scope "${scope}"; ask for a key that has it.`,
    { "www-authenticate": `Bearer realm="xmpp-sidecars", error="insufficient_scope", scope="${scope}"` },
  );
const tooManyFailures = (retryAfterS: number) =>
  new HttpError(
    429,
    "too_many_failures",
    `Too many wrong passwords from your address; retry in ${retryAfterS} s, or from another network.`,
    { "retry-after": String(retryAfterS) },
  );
const authUnavailable = () =>
  new HttpError(503, "auth_unavailable", "Credentials cannot be checked right now; retry in a few seconds.", {
    "retry-after": "5",
  });

export function callerOf(res: Response): Caller {
  const caller = res.locals.caller as Caller | undefined;
  if (!caller) throw new Error("callerOf: no caller middleware ran on this route");
  return caller;
}

/** The JID of an app caller; server callers (who act for anyone their scope allows) get undefined. */
export function appJid(res: Response): Jid | undefined {
  const c = callerOf(res);
  return c.kind === "app" ? c.jid : undefined;
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

/** Whom a caller middleware accepts: an app user, a server with a scope, or either. */
export interface CallerPolicy {
  app: boolean;
  scope?: ApiScope;
}

const policies = new WeakMap<RequestHandler, CallerPolicy>();

/** The policy of a middleware made by `createCallers`, for tools that read the app (the OpenAPI test). */
export function callerPolicy(handler: unknown): CallerPolicy | undefined {
  return typeof handler === "function" ? policies.get(handler as RequestHandler) : undefined;
}

export interface Callers {
  /** An app user (Basic). */
  app: RequestHandler;
  /** A server with `scope` (Bearer). */
  server(scope: ApiScope): RequestHandler;
  /** Either: an app user (acting on their own data) or a server with `scope`. */
  appOrServer(scope: ApiScope): RequestHandler;
}

export function createCallers(deps: { core: AuthApi; apiKeys: ApiKeys }): Callers {
  const keys = Object.entries(deps.apiKeys).map(([name, k]) => ({
    name,
    sha256: Buffer.from(k.sha256, "hex"),
    scopes: new Set(k.scopes),
  }));

  /** `client`: the caller's address, as the socket (or a trusted proxy's X-Forwarded-For) tells it. */
  async function appCaller(header: string, client: string): Promise<Caller> {
    const creds = basicCredentials(header);
    if (!creds) throw invalidCredentials();
    let login: AppLogin;
    try {
      login = await deps.core.checkAppLogin(creds.jid, creds.password, client);
    } catch {
      throw authUnavailable();
    }
    if (!login.ok)
      throw login.reason === "throttled" ? tooManyFailures(login.retryAfterS) : invalidCredentials();
    return { kind: "app", jid: creds.jid };
  }

  function serverCaller(header: string, scope: ApiScope): Caller {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) throw invalidApiKey(false);
    const presented = hashBytes("sha256", m[1]);
    // every key compared, in constant time: which key matched (or that none did) shows in no timing
    let found: (typeof keys)[number] | undefined;
    for (const k of keys) if (timingSafeEqual(k.sha256, presented)) found = k;
    if (!found) throw invalidApiKey(true);
    if (!found.scopes.has(scope)) throw missingScope(scope);
    return { kind: "server", key: found.name, scopes: found.scopes };
  }

  function middleware(accept: CallerPolicy): RequestHandler {
    const handler: RequestHandler = async (req, res, next) => {
      try {
        const header = req.headers.authorization ?? "";
        const isBearer = /^Bearer\s/i.test(header);
        if (accept.scope && (isBearer || !accept.app)) res.locals.caller = serverCaller(header, accept.scope);
        else if (accept.app)
          res.locals.caller = await appCaller(header, req.ip ?? req.socket.remoteAddress ?? "unknown");
        else throw invalidApiKey(false);
        next();
      } catch (err) {
        next(err);
      }
    };
    policies.set(handler, accept);
    return handler;
  }

  return {
    app: middleware({ app: true }),
    server: (scope) => middleware({ app: false, scope }),
    appOrServer: (scope) => middleware({ app: true, scope }),
  };
}
