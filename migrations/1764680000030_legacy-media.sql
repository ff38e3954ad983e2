-- Up Migration
-- Legacy media (docs/attachments.md "Importing legacy media"): `sidecars media import` registers the files the
-- legacy services left on their NFS directory without copying them. Such a row is an original named by its
-- legacy file name, and `legacy_path` says where its bytes are: a path relative to `media.legacyRoot`
-- (`pictures/<name>`, `videos/<name>`, `avatars/<name>`), read there by the downloads instead of the storage
-- backend. Thumbnails made from it later are ordinary variants in the storage backend (`legacy_path` null).
ALTER TABLE attachments ADD COLUMN IF NOT EXISTS legacy_path text;

-- only an original lives under the legacy root, and only under one of the three kind directories with a
-- plain file name (the import checks the name; this keeps a row written by hand from naming `../x`)
ALTER TABLE attachments DROP CONSTRAINT IF EXISTS attachments_legacy_path_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_legacy_path_check CHECK (
  legacy_path IS NULL
  OR (parent IS NULL AND legacy_path ~ '^(pictures|videos|avatars)/[A-Za-z0-9][A-Za-z0-9._-]{0,199}$'
      AND legacy_path NOT LIKE '%..%')
);

-- `sidecars media gc` and the retention purge never delete imported files (their bytes are not ours to
-- delete, and their dates are the legacy files' own, years old): the age index leaves them out, so millions
-- of imported rows do not weigh on every gc run.
CREATE INDEX IF NOT EXISTS attachments_created_uploaded ON attachments (created_at)
  WHERE parent IS NULL AND legacy_path IS NULL;
DROP INDEX IF EXISTS attachments_created;

-- Down Migration
CREATE INDEX IF NOT EXISTS attachments_created ON attachments (created_at) WHERE parent IS NULL;
DROP INDEX IF EXISTS attachments_created_uploaded;
-- imported rows name files the services can no longer find without the column: they go, with their variants
-- (whose thumbnail files become files without a row, which `sidecars media gc` removes) and avatar links
DELETE FROM attachments WHERE parent IN (SELECT name FROM attachments WHERE legacy_path IS NOT NULL);
DELETE FROM avatars WHERE name IN (SELECT name FROM attachments WHERE legacy_path IS NOT NULL);
DELETE FROM attachments WHERE legacy_path IS NOT NULL;
ALTER TABLE attachments DROP CONSTRAINT IF EXISTS attachments_legacy_path_check;
ALTER TABLE attachments DROP COLUMN IF EXISTS legacy_path;
