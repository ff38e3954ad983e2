-- Up Migration
-- Location reports of app users (POST /api/v1/locations), read back by the user or a server key with the
-- scope locations:read. One row per report: (domain, node) is the reporting account, reported_at the
-- report's own `date`. A report sent again (an app retrying a batch whose answer it lost) has the same
-- key and is kept once.
CREATE TABLE IF NOT EXISTS locations (
  node        text             NOT NULL,
  domain      text             NOT NULL,
  reported_at timestamptz      NOT NULL,
  latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  app_type    text             NOT NULL,
  app_version text             NOT NULL,
  received_at timestamptz      NOT NULL DEFAULT now(),
  -- also the index of the time-range reads: one user's reports, newest first, by a backward scan
  PRIMARY KEY (domain, node, reported_at)
);

-- `sidecars locations purge --older-than …` deletes by date across all users
CREATE INDEX IF NOT EXISTS locations_reported_at ON locations (reported_at);

-- Down Migration
DROP TABLE IF EXISTS locations;
