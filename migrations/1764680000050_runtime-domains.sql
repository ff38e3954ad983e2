-- Up Migration
-- Domains added at runtime (`sidecars domains add|set|remove`, the buddies admin API's /api/domains;
-- docs/operations.md "Adding a domain"), beside those of the config files, which win over a row of the same
-- name. `config` is a domain entry as under `domains` in config/<env>.json, as it was given (without the
-- schema's defaults, so that new defaults apply to it as to the files), checked by the same schema before it
-- is written. A handful of rows read whole by every process: on Citus it stays a plain table on the
-- coordinator (it has no node to distribute by).
CREATE TABLE IF NOT EXISTS runtime_domains (
  name       text        PRIMARY KEY,
  config     jsonb       NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text
);

-- Any change (the CLI, the admin API, or SQL typed by hand) reaches every process of every machine at once:
-- each LISTENs on domains_changed (services/common/src/config/runtime-domains.ts) and loads its domains
-- again, without a restart. Payload: the domain's name.
CREATE OR REPLACE FUNCTION runtime_domains_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('domains_changed', OLD.name);
  ELSE
    PERFORM pg_notify('domains_changed', NEW.name);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS runtime_domains_notify_change ON runtime_domains;
CREATE TRIGGER runtime_domains_notify_change AFTER INSERT OR UPDATE OR DELETE ON runtime_domains
  FOR EACH ROW EXECUTE FUNCTION runtime_domains_notify_change();

-- Down Migration
DROP TRIGGER IF EXISTS runtime_domains_notify_change ON runtime_domains;
DROP FUNCTION IF EXISTS runtime_domains_notify_change();
DROP TABLE IF EXISTS runtime_domains;
