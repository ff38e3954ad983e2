-- Up Migration
-- Buddies (docs/buddies.md). `buddies`: definitions added at runtime (`sidecars buddies add`, the admin
-- API); a row wins over a config definition of the same JID. It holds where the password is (`{file}` or
-- `{env}`), never the password: the credentials themselves are in web_users.
CREATE TABLE IF NOT EXISTS buddies (
  domain     text        NOT NULL,
  username   text        NOT NULL,
  kind       text        NOT NULL,
  password   jsonb       NOT NULL,
  options    jsonb       NOT NULL DEFAULT '{}',
  rooms      jsonb       NOT NULL DEFAULT '[]',
  nick       text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, username)
);

-- The runners of the cluster (one row per buddies process), renewed every tick: a runner whose heartbeat is
-- older than the lease is gone, and the share of buddies each live runner claims counts only live ones.
CREATE TABLE IF NOT EXISTS buddy_runners (
  id           text        PRIMARY KEY,
  host         text        NOT NULL,
  pid          integer     NOT NULL,
  admin_url    text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- One row per buddy ever run: who runs it (a lease, renewed every tick; an expired lease is free for any
-- runner to take), what the operator asked for (stopped, restart_seq) and what its owner last reported,
-- so any runner's admin API shows the whole cluster.
CREATE TABLE IF NOT EXISTS buddy_leases (
  domain          text        NOT NULL,
  username        text        NOT NULL,
  owner           text,
  expires_at      timestamptz,
  stopped         boolean     NOT NULL DEFAULT false,
  restart_seq     integer     NOT NULL DEFAULT 0,
  state           text        NOT NULL DEFAULT 'stopped',
  state_since     timestamptz NOT NULL DEFAULT now(),
  connected_since timestamptz,
  last_error      text,
  messages_in     bigint      NOT NULL DEFAULT 0,
  messages_out    bigint      NOT NULL DEFAULT 0,
  reconnects      integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (domain, username)
);
CREATE INDEX IF NOT EXISTS buddy_leases_owner ON buddy_leases (owner);

-- Admin actions reach the owning runner at once (it also sees them at its next tick).
CREATE OR REPLACE FUNCTION buddies_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('buddies_changed', '');
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS buddies_notify_change ON buddies;
CREATE TRIGGER buddies_notify_change AFTER INSERT OR UPDATE OR DELETE ON buddies
  FOR EACH STATEMENT EXECUTE FUNCTION buddies_notify_change();

-- Down Migration
DROP TRIGGER IF EXISTS buddies_notify_change ON buddies;
DROP FUNCTION IF EXISTS buddies_notify_change();
DROP TABLE IF EXISTS buddy_leases;
DROP TABLE IF EXISTS buddy_runners;
DROP TABLE IF EXISTS buddies;
