-- Reelay PostgreSQL schema, version 6: webhook signing secrets, per tenant (`whsec_…`, Standard
-- Webhooks). A rotated-out secret keeps signing beside the new one until `retire_at`, so receivers
-- can move to the new one. Times in ms.
CREATE TABLE webhook_secrets (
  tenant_id  text   NOT NULL,
  secret     text   NOT NULL,
  created_at bigint NOT NULL,
  retire_at  bigint,
  PRIMARY KEY (tenant_id, secret)
);
