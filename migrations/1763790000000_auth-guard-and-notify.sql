-- Up Migration
-- Failed password checks per account, for the auth service's brute-force guard (shared by every process).
CREATE TABLE IF NOT EXISTS auth_failures (
  domain            text        NOT NULL,
  node              text        NOT NULL,
  failures          integer     NOT NULL DEFAULT 0,
  window_started_at timestamptz NOT NULL DEFAULT now(),
  locked_until      timestamptz,
  PRIMARY KEY (domain, node)
);
CREATE INDEX IF NOT EXISTS auth_failures_locked_until ON auth_failures (locked_until) WHERE locked_until IS NOT NULL;

-- Any change to an account (the services, `sidecars users`, or SQL typed by hand) tells the auth processes
-- to forget what they cached about it: LISTEN web_users_changed, payload ["domain","node"].
CREATE OR REPLACE FUNCTION web_users_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('web_users_changed', json_build_array(OLD.domain, OLD.node)::text);
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS web_users_notify_change ON web_users;
CREATE TRIGGER web_users_notify_change AFTER UPDATE OR DELETE ON web_users
  FOR EACH ROW EXECUTE FUNCTION web_users_notify_change();

-- Down Migration
DROP TRIGGER IF EXISTS web_users_notify_change ON web_users;
DROP FUNCTION IF EXISTS web_users_notify_change();
DROP TABLE IF EXISTS auth_failures;
