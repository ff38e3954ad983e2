-- Up Migration
-- App sessions (docs/api.md "Sessions", docs/security.md "App sessions and bearer tokens"): an app exchanges the
-- user's XMPP password (or, on a jwt domain, an SSO token) once, at POST /api/v1/sessions, for a short-lived
-- access token (a JWT signed with a key of app_session_keys, verified by every process without asking the
-- database) and a rotating refresh token. A session is one login of one app install.
CREATE TABLE IF NOT EXISTS app_sessions (
  id             uuid        PRIMARY KEY,
  domain         text        NOT NULL,
  node           text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- the login, or the last refresh: an access token's use is never written (it verifies without the database)
  last_used_at   timestamptz NOT NULL DEFAULT now(),
  -- the end of the current refresh token: each refresh moves it (services.httpUtility.sessions.refreshTtl)
  expires_at     timestamptz NOT NULL,
  -- a session opened with an SSO token (a jwt domain) ends with that token: no refresh moves it past this
  not_after      timestamptz,
  revoked_at     timestamptz,
  -- 'logout', 'logout_all', 'refresh_token_reused', 'password_changed', 'account_disabled', 'operator', 'user_gone'
  revoked_reason text,
  -- where the login came from (the socket's address, or a trusted proxy's X-Forwarded-For)
  client_address text,
  -- what the app declared of itself at the login (X-App-Name, X-App-Version, X-App-Platform)
  app_name       text,
  app_version    text,
  app_platform   text
);
CREATE INDEX IF NOT EXISTS app_sessions_user ON app_sessions (domain, node);
-- the sweep of ended sessions
CREATE INDEX IF NOT EXISTS app_sessions_expires ON app_sessions (expires_at);
-- the revocations a process reloads when its LISTEN connection comes back
CREATE INDEX IF NOT EXISTS app_sessions_revoked ON app_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens, only as the SHA-256 of the token: one unused token per live session, and the used ones kept
-- so that a second use of one (a stolen copy) is recognised and revokes the whole session.
CREATE TABLE IF NOT EXISTS app_refresh_tokens (
  sha256     bytea       PRIMARY KEY,
  session_id uuid        NOT NULL REFERENCES app_sessions (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz
);
CREATE INDEX IF NOT EXISTS app_refresh_tokens_session ON app_refresh_tokens (session_id);

-- The HMAC keys (HS256) that sign access tokens, shared by every process of every machine: the newest signs,
-- every one present verifies. The first is made by the first process that needs one; `sidecars sessions
-- rotate-key` adds one, and keys superseded longer ago than the access tokens' life are deleted.
CREATE TABLE IF NOT EXISTS app_session_keys (
  id         text        PRIMARY KEY,
  secret     bytea       NOT NULL CHECK (length(secret) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE IF EXISTS app_refresh_tokens;
DROP TABLE IF EXISTS app_sessions;
DROP TABLE IF EXISTS app_session_keys;
