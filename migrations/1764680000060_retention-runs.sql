-- Up Migration
-- What the retention purge did (docs/operations.md "Retention"): one row per run, on the schedule or by hand
-- (`sidecars purge`), with the rows deleted per table or the error that stopped it. The operator console shows
-- the last ones; the purge itself keeps only the newest 500.
CREATE TABLE IF NOT EXISTS retention_runs (
  id          bigserial   PRIMARY KEY,
  trigger     text        NOT NULL CHECK (trigger IN ('schedule', 'command')),
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  deleted     jsonb       NOT NULL DEFAULT '{}',
  error       text
);

-- Down Migration
DROP TABLE IF EXISTS retention_runs;
