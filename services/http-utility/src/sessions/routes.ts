import { decodeJwt } from "jose";
import type { AuthApi } from "#auth";
import type { Config } from "#common/config/schema.ts";
import type { Pool } from "#common/db/pool.ts";
import { defineRoute, type Route } from "#common/http/route.ts";
import {
  type AppSession,
  createSession,
  listSessions,
  refreshSession,
  revokeAllSessions,
  revokeSession,
} from "#common/users/app-sessions.ts";
import { type CallerPolicy, type Callers, caller } from "../callers.ts";
import { errors } from "../errors.ts";
import {
  loginBody,
  refreshBody,
  revokedAnswer,
  type SessionsAnswer,
  sessionParams,
  sessionsAnswer,
  type TokensAnswer,
  tokensAnswer,
} from "./schema.ts";
import type { AppSessions } from "./tokens.ts";

/**
 * App sessions (docs/api.md "Sessions"): the password once for an access token and a rotating refresh token,
 * the caller's sessions listed and ended. The tokens are made and checked by tokens.ts; what is stored of
 * them (hashes only) by #common/users/app-sessions.ts.
 */

const LOGIN_ERRORS = [
  errors.invalidCredentials,
  errors.accountDisabled,
  errors.tooManyFailures,
  errors.authUnavailable,
  errors.invalidAppVersion,
  errors.appVersionTooOld,
];

// RFC 6749 §5.1: an answer holding tokens is not stored by any cache on the way
const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

export function sessionRoutes(deps: {
  config: Pick<Config, "domains">;
  pool: Pool;
  core: Pick<AuthApi, "userExists">;
  sessions: AppSessions;
  callers: Pick<Callers, "login" | "checkApp">;
}): Route<CallerPolicy>[] {
  const { pool, sessions } = deps;

  /**
   * On a `jwt` domain, when the client logged in with an SSO token (a buddy logs in with its web_users password
   * instead): the token's `exp`, which the authenticator has just checked. The session ends with it, so that a
   * user the identity provider stops issuing tokens to is out within a token's life, not a refresh TTL's.
   */
  function ssoTokenEnd(domain: string, password: string): Date | undefined {
    if (
      !Object.hasOwn(deps.config.domains, domain) ||
      deps.config.domains[domain]?.authenticator.kind !== "jwt"
    )
      return undefined;
    try {
      const { exp } = decodeJwt(password);
      return typeof exp === "number" ? new Date(exp * 1000) : undefined;
    } catch {
      return undefined;
    }
  }

  async function tokens(session: AppSession, refreshToken: string): Promise<TokensAnswer> {
    const access = await sessions.issue(session);
    return {
      accessToken: access.token,
      tokenType: "Bearer",
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: Math.max(0, Math.floor((session.expiresAt.getTime() - Date.now()) / 1000)),
      sessionId: session.id,
    };
  }

  return [
    defineRoute({
      method: "post",
      path: "/api/v1/sessions",
      summary: "Log in once: an access token and a refresh token for the user's JID and password",
      description:
        "The password is checked exactly as HTTP Basic's would be (the domain's authenticator, failures counted " +
        "per client address, 403 for a disabled account, 426 for an app below its minimum version), also where " +
        "the domain has switched Basic off (`domains.<d>.appBasicAuth`). On a domain whose authenticator is " +
        "`jwt` the password is the user's SSO token. Send the access token as `Authorization: Bearer <token>` " +
        "to every app operation; before it expires, `POST /api/v1/sessions/refresh` gives the next pair.",
      caller: caller.public,
      request: { body: loginBody },
      responses: {
        201: { description: "Logged in: the session's tokens", schema: tokensAnswer },
      },
      errors: LOGIN_ERRORS,
      async handler({ body, req, res }) {
        const login = await deps.callers.login(req, body.jid, body.password);
        const { session, refreshToken } = await createSession(pool, {
          jid: login.caller.jid,
          clientAddress: login.client,
          app: login.app,
          refreshTtlMs: sessions.refreshTtlMs,
          notAfter: ssoTokenEnd(login.caller.jid.domain, body.password),
        });
        res
          .status(201)
          .set(NO_STORE)
          .json(await tokens(session, refreshToken));
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/sessions/refresh",
      summary: "The next access token and refresh token of a session",
      description:
        "A refresh token works once: the answer carries the next one, and the session's end moves to " +
        "`services.httpUtility.sessions.refreshTtl` from now (never past the SSO token's expiry, for a session " +
        "opened with one on a `jwt` domain). A refresh token presented a second time is " +
        "taken for a stolen copy: the whole session is revoked (`refresh_token_reused`), its access tokens " +
        "stop working in every process, and the app must log in again.",
      caller: caller.public,
      request: { body: refreshBody },
      responses: {
        200: { description: "The session's next tokens", schema: tokensAnswer },
      },
      errors: [
        errors.invalidRefreshToken,
        errors.refreshTokenReused,
        errors.authUnavailable,
        errors.invalidAppVersion,
        errors.appVersionTooOld,
      ],
      async handler({ body, req, res }) {
        await deps.callers.checkApp(req);
        const r = await refreshSession(pool, body.refreshToken, sessions.refreshTtlMs);
        if (!r.ok) {
          if (r.reason === "reused") {
            sessions.forget([r.sessionId]);
            throw errors.refreshTokenReused();
          }
          throw errors.invalidRefreshToken(
            r.reason === "expired"
              ? "has expired"
              : r.reason === "revoked"
                ? "belongs to an ended session"
                : "is unknown",
          );
        }
        const jid = { domain: r.session.domain, node: r.session.node };
        // a user gone from the domain's backend (or a domain no longer served) gets no more tokens
        let exists: boolean;
        try {
          exists = Object.hasOwn(deps.config.domains, jid.domain) && (await deps.core.userExists(jid));
        } catch {
          throw errors.authUnavailable();
        }
        if (!exists) {
          await revokeSession(pool, jid, r.session.id, "user_gone");
          sessions.forget([r.session.id]);
          throw errors.invalidRefreshToken("belongs to an account that no longer exists");
        }
        res.set(NO_STORE).json(await tokens(r.session, r.refreshToken));
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/sessions",
      summary: "The caller's live sessions",
      description:
        "Every app install logged in to the caller's account, most recently used first; `current` marks the " +
        "session of the access token this request carries (none with HTTP Basic). No token is ever shown.",
      caller: caller.app,
      responses: { 200: { description: "The caller's sessions", schema: sessionsAnswer } },
      async handler({ caller: who, res }) {
        const list = await listSessions(pool, who.jid);
        const answer: SessionsAnswer = {
          sessions: list.map((s) => ({
            id: s.id,
            createdAt: s.createdAt.toISOString(),
            lastUsedAt: s.lastUsedAt.toISOString(),
            expiresAt: s.expiresAt.toISOString(),
            address: s.clientAddress,
            app: s.app,
            current: s.id === who.sessionId,
          })),
        };
        res.set("cache-control", "no-store").json(answer);
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/sessions/{id}",
      summary: "End one of the caller's sessions (log out)",
      description:
        "Its refresh token stops working, and its access tokens within a moment in every process. Another " +
        "user's session is answered as one that does not exist.",
      caller: caller.app,
      request: { params: sessionParams },
      responses: { 204: { description: "Ended" } },
      errors: [errors.noSession],
      async handler({ params, caller: who, res }) {
        if (!(await revokeSession(pool, who.jid, params.id, "logout"))) throw errors.noSession();
        sessions.forget([params.id]);
        res.status(204).end();
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/sessions",
      summary: "End every session of the caller (log out everywhere)",
      description:
        "Every app install logged in to the account must log in again; HTTP Basic, where the domain takes it, " +
        "is not affected (change the password for that).",
      caller: caller.app,
      responses: { 200: { description: "How many sessions ended", schema: revokedAnswer } },
      async handler({ caller: who, res }) {
        const ids = await revokeAllSessions(pool, who.jid, "logout_all");
        sessions.forget(ids);
        res.json({ revoked: ids.length });
      },
    }),
  ];
}
