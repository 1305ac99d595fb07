-- Reelay PostgreSQL schema, version 11: credits. A balance per tenant (key) that has an account,
-- and the ledger of its changes; a tenant without an account is not metered. A metered task
-- reserves its price at create (`reserve`, in the create's transaction) and is closed once at its
-- end: `settle` gives back what it did not cost, `refund` all of it. Each reservation is of an
-- item: `video` or `extend`, and each rendition asked after success (`hd:1`, `uhd:1`, `uhd:2` …);
-- the partial unique indexes hold each item of a task to one reservation and one close.
-- `tasks.charge` is the task's reservation at create.
ALTER TABLE tasks ADD COLUMN charge json;
CREATE TABLE credit_accounts (
  tenant_id  text   PRIMARY KEY,
  balance    bigint NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE TABLE credit_ledger (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text   NOT NULL,
  task_id   text,
  item      text,
  kind      text   NOT NULL,
  amount    bigint NOT NULL,
  charged   bigint,
  at        bigint NOT NULL,
  note      text
);
CREATE UNIQUE INDEX credit_ledger_reserve ON credit_ledger (task_id, item) WHERE kind = 'reserve';
CREATE UNIQUE INDEX credit_ledger_close ON credit_ledger (task_id, item) WHERE kind IN ('settle', 'refund');
CREATE INDEX credit_ledger_tenant ON credit_ledger (tenant_id, id);
