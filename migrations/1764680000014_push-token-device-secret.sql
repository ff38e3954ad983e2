-- Up Migration
-- A device token moves to another user only with a proof from the same device (docs/push.md "Tokens"): the
-- SHA-256 of the random secret the app sent with its registration (`deviceSecret`), never the secret itself.
ALTER TABLE push_tokens ADD COLUMN IF NOT EXISTS device_secret_sha256 text;

-- Down Migration
ALTER TABLE push_tokens DROP COLUMN IF EXISTS device_secret_sha256;
