-- Up Migration
-- Failed logins are counted per client address (app logins) and per user (MongooseIM and ejabberd, where they
-- only slow wrong answers down) in rate_limits, by services/common/src/auth/brute-force-guard.ts; an account
-- is never locked. The per-account lockout table goes with the lockouts it held.
DROP TABLE IF EXISTS auth_failures;

-- Down Migration
CREATE TABLE IF NOT EXISTS auth_failures (
  domain            text        NOT NULL,
  node              text        NOT NULL,
  failures          integer     NOT NULL DEFAULT 0,
  window_started_at timestamptz NOT NULL DEFAULT now(),
  locked_until      timestamptz,
  PRIMARY KEY (domain, node)
);
