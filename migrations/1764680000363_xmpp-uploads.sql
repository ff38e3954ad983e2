-- Up Migration
-- XEP-0363 uploads of standard XMPP clients (docs/xmpp-clients.md "File upload (XEP-0363)"): the files that
-- MongooseIM's, ejabberd's and Prosody's upload modules send to us are rows of `attachments` like the app
-- uploads, so the same quota sums, `sidecars media gc` (by age, and its sweep of files without a row) and the
-- retention purge cover them. They are a kind of their own, 'upload': never served by the attachment routes
-- (those check their kind), only by the slot's own GET URL. Their owner is the uploader when the protocol
-- names one (Prosody's token), else node '' of the domain (the signed URL carries no user). Their name is
-- derived from the slot (services/http-utility/src/xmpp-upload/store.ts), so the primary key is what makes
-- a second PUT to the same slot fail.
ALTER TABLE attachments DROP CONSTRAINT IF EXISTS attachments_kind_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_kind_check
  CHECK (kind IN ('picture', 'avatar', 'video', 'upload'));

-- Down Migration
-- their files become files without a row, which `sidecars media gc` removes
DELETE FROM attachments WHERE kind = 'upload';
ALTER TABLE attachments DROP CONSTRAINT IF EXISTS attachments_kind_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_kind_check CHECK (kind IN ('picture', 'avatar', 'video'));
