-- Webhook signing secrets, per tenant (`whsec_…`, Standard Webhooks). A rotated-out secret keeps
-- signing beside the new one until `retire_at`, so receivers can move to the new one.
CREATE TABLE webhook_secrets (
  tenant_id  TEXT    NOT NULL,
  secret     TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  retire_at  INTEGER,
  PRIMARY KEY (tenant_id, secret)
);
