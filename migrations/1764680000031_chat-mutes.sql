-- Up Migration
-- Chats a user muted (docs/push.md "Muted chats"): MongooseIM's chat-message hook pushes nothing to `node@domain`
-- for messages from `peer` (a bare JID) while a row says so; `until` NULL is until unmuted. One row per user and
-- peer; an expired row counts as absent and is replaced by the next mute.
CREATE TABLE IF NOT EXISTS chat_mutes (
  domain     text        NOT NULL,
  node       text        NOT NULL,
  peer       text        NOT NULL,
  until      timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, node, peer)
);

-- Down Migration
DROP TABLE IF EXISTS chat_mutes;
