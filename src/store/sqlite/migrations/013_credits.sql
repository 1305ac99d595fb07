-- Credits: a balance per tenant (key) that has an account, and the ledger of its changes.
-- A tenant without an account is not metered. A metered task reserves its price at create
-- (`reserve`, in the create's transaction) and is closed once at its end: `settle` gives back what
-- it did not cost, `refund` all of it. Each reservation is of an item: `video` or `extend`, and
-- each rendition asked after success (`hd:1`, `uhd:1`, `uhd:2` …); the partial unique indexes
-- hold each item of a task to one reservation and one close. `tasks.charge` is the task's
-- reservation at create (JSON, see core/credits.ts).
ALTER TABLE tasks ADD COLUMN charge TEXT;
CREATE TABLE credit_accounts (
  tenant_id  TEXT    PRIMARY KEY,
  balance    INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE credit_ledger (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT    NOT NULL,
  task_id   TEXT,
  item      TEXT,
  kind      TEXT    NOT NULL,
  amount    INTEGER NOT NULL,
  charged   INTEGER,
  at        INTEGER NOT NULL,
  note      TEXT
);
CREATE UNIQUE INDEX credit_ledger_reserve ON credit_ledger (task_id, item) WHERE kind = 'reserve';
CREATE UNIQUE INDEX credit_ledger_close ON credit_ledger (task_id, item) WHERE kind IN ('settle', 'refund');
CREATE INDEX credit_ledger_tenant ON credit_ledger (tenant_id, id);
