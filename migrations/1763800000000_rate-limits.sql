-- Up Migration
-- Counters of rate-limiter-flexible's RateLimiterPostgres (services/common/src/http/rate-limit.ts), shared by
-- every process of every machine: a pm2 cluster cannot multiply a limit. key = "<limit>:<ip or number>".
CREATE TABLE IF NOT EXISTS rate_limits (
  key    varchar(255) PRIMARY KEY,
  points integer      NOT NULL DEFAULT 0,
  expire bigint
);
CREATE INDEX IF NOT EXISTS rate_limits_expire ON rate_limits (expire);

-- Down Migration
DROP TABLE IF EXISTS rate_limits;
