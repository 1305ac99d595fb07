-- Webhook endpoints per tenant (key): URLs subscribed to task events (video.completed,
-- video.failed, video.canceled). A delivery to one names it (`endpoint_id`); a 410 answer
-- disables it. `events` is a JSON array.
CREATE TABLE webhook_endpoints (
  id              TEXT    PRIMARY KEY,
  tenant_id       TEXT    NOT NULL,
  url             TEXT    NOT NULL,
  events          TEXT    NOT NULL,
  created_at      INTEGER NOT NULL,
  disabled_at     INTEGER,
  disabled_reason TEXT
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);
ALTER TABLE deliveries ADD COLUMN endpoint_id TEXT;
