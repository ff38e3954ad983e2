-- Up Migration
-- web_users: one row per XMPP account the services know. Compatible with the legacy table
-- (node, token, domain): an existing legacy table is upgraded in place, columns are only ever added.
CREATE TABLE IF NOT EXISTS web_users (
  node   text NOT NULL,
  domain text NOT NULL,
  token  text
);

-- token held cleartext passwords; new rows keep only salted SCRAM data, so token becomes optional.
ALTER TABLE web_users ALTER COLUMN token DROP NOT NULL;

ALTER TABLE web_users
  -- salted SCRAM credentials: {"iterations": n, "sha1": {"salt","storedKey","serverKey"}, "sha256": {...}, ...}
  ADD COLUMN IF NOT EXISTS scram       jsonb,
  ADD COLUMN IF NOT EXISTS disabled_at timestamptz,
  ADD COLUMN IF NOT EXISTS created_at  timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN IF NOT EXISTS updated_at  timestamptz NOT NULL DEFAULT now();

-- (domain, node) identifies a row: the primary key on a new table, a unique index on a legacy table that
-- already has a primary key of its own. Rows that break it are reported, never deleted.
DO $$
DECLARE
  bad bigint;
BEGIN
  SELECT count(*) INTO bad FROM web_users WHERE node IS NULL OR domain IS NULL OR node = '' OR domain = '';
  IF bad > 0 THEN
    RAISE EXCEPTION 'web_users has % row(s) with an empty node or domain', bad
      USING HINT = 'Fix or delete them (SELECT * FROM web_users WHERE node IS NULL OR domain IS NULL OR node = '''' OR domain = ''''), then migrate again.';
  END IF;
  SELECT count(*) INTO bad FROM (SELECT 1 FROM web_users GROUP BY domain, node HAVING count(*) > 1) d;
  IF bad > 0 THEN
    RAISE EXCEPTION 'web_users has % duplicated (domain, node) pair(s)', bad
      USING HINT = 'Keep one row per account (SELECT domain, node, count(*) FROM web_users GROUP BY 1, 2 HAVING count(*) > 1), then migrate again.';
  END IF;
  ALTER TABLE web_users ALTER COLUMN node SET NOT NULL, ALTER COLUMN domain SET NOT NULL;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'web_users'::regclass AND conname = 'web_users_node_domain_not_empty') THEN
    ALTER TABLE web_users ADD CONSTRAINT web_users_node_domain_not_empty CHECK (node <> '' AND domain <> '');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'web_users'::regclass AND contype = 'p') THEN
    ALTER TABLE web_users ADD CONSTRAINT web_users_pkey PRIMARY KEY (domain, node);
  ELSE
    CREATE UNIQUE INDEX IF NOT EXISTS web_users_domain_node_key ON web_users (domain, node);
  END IF;
END $$;
