-- Up Migration
-- Indexes that statements reading by something other than a table's key need once the tables are large
-- (docs/database.md "Query plans at 1,000,000 rows": each of these statements read its whole table).
-- Removing a user (services/common/src/users/lifecycle-removal.ts) deletes their notifications and others'
-- mutes of them; exporting one lists their notifications by date.
CREATE INDEX IF NOT EXISTS push_notifications_owner ON push_notifications (domain, node, created_at);
CREATE INDEX IF NOT EXISTS chat_mutes_peer ON chat_mutes (peer);
-- `sidecars media gc` keeps current avatars (http-utility attachments/store.ts `deleteOlderThan`): with this
-- index each batch walks the age index and stops at its limit, instead of joining every old original with
-- every avatar first.
CREATE INDEX IF NOT EXISTS avatars_name ON avatars (name);

-- Down Migration
DROP INDEX IF EXISTS avatars_name;
DROP INDEX IF EXISTS chat_mutes_peer;
DROP INDEX IF EXISTS push_notifications_owner;
