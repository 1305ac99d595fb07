-- Reelay SQLite schema, version 1. Times are epoch milliseconds.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL,
  hash        TEXT NOT NULL UNIQUE,
  prefix      TEXT NOT NULL,
  name        TEXT NOT NULL DEFAULT '',
  source      TEXT NOT NULL DEFAULT 'cli',
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);

CREATE TABLE tasks (
  id               TEXT PRIMARY KEY,
  tenant_id        TEXT NOT NULL,
  dialect          TEXT NOT NULL,
  model            TEXT NOT NULL,
  spec             TEXT NOT NULL,
  request          TEXT NOT NULL,
  state            TEXT NOT NULL,
  enhanced_prompt  TEXT NOT NULL,
  images           TEXT NOT NULL,
  provider         TEXT NOT NULL,
  upstream_id      TEXT,
  attempt_count    INTEGER NOT NULL DEFAULT 0,
  retry_count      INTEGER NOT NULL DEFAULT 0,
  max_retries      INTEGER NOT NULL,
  error_sleep_ms   INTEGER NOT NULL,
  last_error       TEXT,
  last_error_kind  TEXT,
  failure_stage    TEXT,
  callback_url     TEXT,
  -- 128 random bits, unique by construction; never looked up (files are served by path), so no
  -- index: one index less per insert is a third more creates per second.
  file_token       TEXT NOT NULL,
  hd_state         TEXT NOT NULL DEFAULT 'none',
  progress         INTEGER NOT NULL DEFAULT 0,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  completed_at     INTEGER,
  deadline_at      INTEGER NOT NULL,
  next_run_at      INTEGER,
  lease_owner      TEXT,
  lease_until      INTEGER
);
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX tasks_upstream ON tasks (provider, upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX tasks_retention ON tasks (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE attempts (
  task_id      TEXT NOT NULL,
  n            INTEGER NOT NULL,
  step         TEXT NOT NULL,
  provider     TEXT NOT NULL,
  upstream_id  TEXT,
  started_at   INTEGER NOT NULL,
  ended_at     INTEGER,
  outcome      TEXT NOT NULL,
  error        TEXT,
  PRIMARY KEY (task_id, n)
);

CREATE TABLE artifacts (
  task_id       TEXT NOT NULL,
  kind          TEXT NOT NULL,
  path          TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  bytes         INTEGER NOT NULL,
  width         INTEGER,
  height        INTEGER,
  duration_ms   INTEGER,
  codec         TEXT,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (task_id, kind)
);

CREATE TABLE deliveries (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id          TEXT NOT NULL,
  url              TEXT NOT NULL,
  body             TEXT NOT NULL,
  status           TEXT NOT NULL DEFAULT 'pending',
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER,
  lease_until      INTEGER,
  last_error       TEXT,
  last_status      INTEGER,
  created_at       INTEGER NOT NULL,
  delivered_at     INTEGER
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_task ON deliveries (task_id);
