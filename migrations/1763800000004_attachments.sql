-- Up Migration
-- Attachments (docs/attachments.md): one row per stored object, named by its storage key (144
-- random bits + extension, a capability: downloads are public by name). Thumbnails and video posters are
-- rows of their own with `parent` naming the original and `variant` saying which they are ('128', 'poster'),
-- so every stored byte has a row, an owner and a size (quota); the statements that delete an original delete
-- its variants with it (no foreign keys: docs/database.md, a distributed PostgreSQL cannot enforce them across
-- shards). Bytes live in the storage backend; a row is written only once its object is complete, and an
-- object without a row (a crash between the two) is swept by `sidecars media gc`.
CREATE TABLE IF NOT EXISTS attachments (
  name          text        PRIMARY KEY,
  parent        text,
  variant       text,
  domain        text        NOT NULL,
  node          text        NOT NULL,
  kind          text        NOT NULL CHECK (kind IN ('picture', 'avatar', 'video')),
  original_name text,
  content_type  text        NOT NULL,
  size          bigint      NOT NULL CHECK (size >= 0),
  sha256        bytea       NOT NULL CHECK (length(sha256) = 32),
  width         integer,
  height        integer,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((parent IS NULL) = (variant IS NULL)),
  UNIQUE (parent, variant)
);

-- one user's attachments of a kind, newest first (the video list), and their byte total (the quota)
CREATE INDEX IF NOT EXISTS attachments_owner ON attachments (domain, node, kind, created_at DESC, name);
-- `sidecars media gc --older-than …`
CREATE INDEX IF NOT EXISTS attachments_created ON attachments (created_at) WHERE parent IS NULL;

-- A user's current avatar. A new one replaces the row; the old attachment (and its thumbnails) is deleted
-- in the same transaction and its files right after. `sidecars media gc` never deletes a current avatar.
CREATE TABLE IF NOT EXISTS avatars (
  domain     text        NOT NULL,
  node       text        NOT NULL,
  name       text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, node)
);

-- Down Migration
DROP TABLE IF EXISTS avatars;
DROP TABLE IF EXISTS attachments;
