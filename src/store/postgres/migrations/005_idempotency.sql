-- Reelay PostgreSQL schema, version 5: idempotency keys, one row per (tenant, endpoint, key). A
-- request takes its key while it runs (`token`, until `held_until`); the answer it gave is written
-- in the transaction that stores its task, and replayed to a repeat of the same request until
-- `expires_at`. Times are on the database's clock, in ms.
CREATE TABLE idempotency_keys (
  tenant_id   text    NOT NULL,
  scope       text    NOT NULL,
  key         text    NOT NULL,
  fingerprint text    NOT NULL,
  token       text    NOT NULL,
  task_id     text,
  status      integer,
  body        text,
  created_at  bigint  NOT NULL,
  held_until  bigint  NOT NULL,
  expires_at  bigint  NOT NULL,
  PRIMARY KEY (tenant_id, scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
