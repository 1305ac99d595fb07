-- Idempotency keys: one row per (tenant, endpoint, key). A request takes its key while it runs
-- (`token`, until `held_until`); the answer it gave is written in the transaction that stores its
-- task, and replayed to a repeat of the same request until `expires_at`.
CREATE TABLE idempotency_keys (
  tenant_id   TEXT    NOT NULL,
  scope       TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  fingerprint TEXT    NOT NULL,
  token       TEXT    NOT NULL,
  task_id     TEXT,
  status      INTEGER,
  body        TEXT,
  created_at  INTEGER NOT NULL,
  held_until  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
