-- Up Migration
-- Removals of users (`sidecars users remove`, `DELETE /api/users/<jid>` of the buddies admin API; docs/operations.md
-- "Removing, exporting, disabling a user"). A removal is one resumable operation in two steps. One transaction
-- deletes (or anonymises) every row of the user in every table and writes the row here, in state 'files', with
-- the storage keys of the files those rows named (`pending_keys`): killed before its COMMIT, nothing happened
-- and running it again starts over. The files are deleted after, and a key leaves the list only once its file
-- is gone: a removal killed or failing there (storage down) keeps its list, and running it again finishes it.
-- The row stays once 'done', as the record that the user was removed, when and how much: the JID and counts,
-- nothing else of the user.
CREATE TABLE IF NOT EXISTS user_removals (
  domain       text        NOT NULL,
  node         text        NOT NULL,
  -- 'files': the rows are gone, the files of pending_keys are still to delete; 'done'
  state        text        NOT NULL CHECK (state IN ('files', 'done')),
  -- what happened to the pictures and videos they sent (config users.removal.attachments): 'delete' them, or
  -- 'anonymise' them (kept for the chats that link to them, owned by no one)
  attachments  text        NOT NULL CHECK (attachments IN ('delete', 'anonymise')),
  pending_keys text[]      NOT NULL DEFAULT '{}',
  -- rows removed per table, files to delete, imported legacy files left in place:
  -- {"rows": {"locations": 10000, …}, "files": 1500, "legacyFilesLeft": ["avatars/306900000001.jpg"]}
  summary      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  PRIMARY KEY (domain, node)
);

-- Down Migration
DROP TABLE IF EXISTS user_removals;
