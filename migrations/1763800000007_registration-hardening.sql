-- Up Migration
-- Registration hardening (services/http-utility/src/users/challenges.ts, docs/registration.md):
-- single-use codes, wrong answers counted per client address, and a daily SMS budget.
ALTER TABLE registration_challenges
  -- wrong answers to the current code by client address ({"198.51.100.7": 2}); `checks` stays their sum,
  -- capped by maxChecksPerNumber. Bounded in size: every key costs one of those checks.
  ADD COLUMN IF NOT EXISTS client_checks   jsonb       NOT NULL DEFAULT '{}'::jsonb,
  -- when the current code was consumed by a right answer: it never authorizes again
  ADD COLUMN IF NOT EXISTS used_at         timestamptz,
  -- the answer of that right answer, for a retry whose answer was lost: the token encrypted under a key
  -- derived (HKDF) from the client's nonce, which is never stored (only its SHA-256); cleared after retry_until
  ADD COLUMN IF NOT EXISTS retry_nonce_hash bytea,
  ADD COLUMN IF NOT EXISTS retry_salt      bytea,
  ADD COLUMN IF NOT EXISTS retry_box       bytea,
  ADD COLUMN IF NOT EXISTS retry_until     timestamptz;
-- finding the retry tokens to clear once their window has ended
CREATE INDEX IF NOT EXISTS registration_challenges_retry_until
  ON registration_challenges (retry_until) WHERE retry_until IS NOT NULL;

-- SMS sent per budget window (rateLimits.smsPerDay: scope 'global'; smsPerPrefixPerDay: scope '+<calling
-- code>'), shared by every process; a window starts at a multiple of its length since the epoch (a UTC day).
-- reached_at: when the budget was first reached in that window (one log line per window in the cluster).
CREATE TABLE IF NOT EXISTS sms_budgets (
  scope        text        NOT NULL,
  window_start timestamptz NOT NULL,
  sent         integer     NOT NULL DEFAULT 0,
  reached_at   timestamptz,
  PRIMARY KEY (scope, window_start),
  CONSTRAINT sms_budgets_sent CHECK (sent >= 0)
);

-- Down Migration
DROP TABLE IF EXISTS sms_budgets;
DROP INDEX IF EXISTS registration_challenges_retry_until;
ALTER TABLE registration_challenges
  DROP COLUMN IF EXISTS client_checks,
  DROP COLUMN IF EXISTS used_at,
  DROP COLUMN IF EXISTS retry_nonce_hash,
  DROP COLUMN IF EXISTS retry_salt,
  DROP COLUMN IF EXISTS retry_box,
  DROP COLUMN IF EXISTS retry_until;
