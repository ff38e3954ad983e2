-- Up Migration
-- Push notifications (docs/push.md). A device token belongs to one user of one app: registering it again
-- for another user moves it (`store_token`); `badge` is the count the next alert shows on that device.
CREATE TABLE IF NOT EXISTS push_tokens (
  service    text        NOT NULL CHECK (service IN ('fcm', 'apns', 'apns-voip')),
  token      text        NOT NULL CHECK (length(token) BETWEEN 1 AND 4096),
  app        text        NOT NULL,
  domain     text        NOT NULL,
  node       text        NOT NULL,
  badge      integer     NOT NULL DEFAULT 0 CHECK (badge >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, token)
);
-- a user's devices, most recently registered first (the cap per user and app evicts from the end)
CREATE INDEX IF NOT EXISTS push_tokens_owner ON push_tokens (domain, node, app, updated_at DESC);

-- Broadcast channels: who is subscribed to what.
CREATE TABLE IF NOT EXISTS push_channel_subscriptions (
  domain     text        NOT NULL,
  channel    text        NOT NULL,
  node       text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (domain, channel, node)
);

-- A sent notification's origin, for the replies and resolves typed into it (relayed to a buddy or a URL).
CREATE TABLE IF NOT EXISTS push_notifications (
  id         uuid        PRIMARY KEY,
  domain     text        NOT NULL,
  node       text        NOT NULL,
  origin     jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS push_notifications_created ON push_notifications (created_at);

-- Channel broadcasts: one row each, its progress, and one row per token pushed, so that a broadcast resumed
-- after a crash never pushes twice to the same device.
CREATE TABLE IF NOT EXISTS push_broadcasts (
  id          uuid        PRIMARY KEY,
  domain      text        NOT NULL,
  channel     text        NOT NULL,
  message     jsonb       NOT NULL,
  state       text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
  total       integer,
  sent        integer     NOT NULL DEFAULT 0,
  dead        integer     NOT NULL DEFAULT 0,
  failed      integer     NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS push_broadcast_deliveries (
  broadcast_id uuid        NOT NULL,
  service      text        NOT NULL,
  token        text        NOT NULL,
  outcome      text        NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (broadcast_id, service, token)
);

-- Down Migration
DROP TABLE IF EXISTS push_broadcast_deliveries;
DROP TABLE IF EXISTS push_broadcasts;
DROP TABLE IF EXISTS push_notifications;
DROP TABLE IF EXISTS push_channel_subscriptions;
DROP TABLE IF EXISTS push_tokens;
