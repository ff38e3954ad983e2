-- Up Migration
-- Phone-number registration (POST /api/v1/users, /api/v1/users/authorize): one session per number and domain.
-- A session is the chain of codes sent to a number; it ends when its current code expires. The code itself is
-- never stored: only scrypt(code, salt). Every counter changes in one conditional UPDATE, so concurrent
-- requests on several processes cannot exceed a limit (services/http-utility/src/users/challenges.ts).
CREATE TABLE IF NOT EXISTS registration_challenges (
  domain          text        NOT NULL,
  -- the msisdn: E.164 digits without '+', the user part of the JID the session registers
  node            text        NOT NULL,
  -- null until the first code of the session went out
  code_salt       bytea,
  code_hash       bytea,
  code_expires_at timestamptz,
  -- codes sent in this session, and when the last one went out
  sends           integer     NOT NULL DEFAULT 0,
  last_sent_at    timestamptz,
  -- wrong answers to the current code (checks in progress included)
  checks          integer     NOT NULL DEFAULT 0,
  -- a request is sending a code until then (set before the SMS goes out, cleared after): no other may
  sending_id      text,
  sending_until   timestamptz,
  app_name        text        NOT NULL,
  app_version     text        NOT NULL,
  platform        text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- last right answer
  verified_at     timestamptz,
  PRIMARY KEY (domain, node),
  CONSTRAINT registration_challenges_counts CHECK (sends >= 0 AND checks >= 0)
);
-- finding sessions over long ago (a purge)
CREATE INDEX IF NOT EXISTS registration_challenges_code_expires_at ON registration_challenges (code_expires_at);

-- Down Migration
DROP TABLE IF EXISTS registration_challenges;
