-- Up Migration
-- Minimum app versions set at runtime (`sidecars apps set-minimum`): a row overrides the config's
-- apps.<app_name>.minimumVersion.<platform>; deleting it (`sidecars apps clear-minimum`) restores the config.
CREATE TABLE IF NOT EXISTS app_minimum_versions (
  app_name        text        NOT NULL,
  platform        text        NOT NULL,
  minimum_version text        NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_name, platform)
);

-- Down Migration
DROP TABLE IF EXISTS app_minimum_versions;
