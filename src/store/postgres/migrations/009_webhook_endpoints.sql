-- Reelay PostgreSQL schema, version 9: webhook endpoints per tenant (key), URLs subscribed to
-- task events (video.completed, video.failed, video.canceled). A delivery to one names it
-- (`endpoint_id`); a 410 answer disables it. Times in ms.
CREATE TABLE webhook_endpoints (
  id              text   PRIMARY KEY,
  tenant_id       text   NOT NULL,
  url             text   NOT NULL,
  events          json   NOT NULL,
  created_at      bigint NOT NULL,
  disabled_at     bigint,
  disabled_reason text
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id);
ALTER TABLE deliveries ADD COLUMN endpoint_id text;
