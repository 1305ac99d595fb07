-- The audit trail: every state transition of a task with its reason, and every try of its
-- callbacks, append-only, in `id` order; deleted only with the task. `detail` is JSON.
CREATE TABLE task_events (
  id         INTEGER PRIMARY KEY,
  task_id    TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  kind       TEXT    NOT NULL,
  actor      TEXT    NOT NULL,
  from_state TEXT,
  to_state   TEXT,
  detail     TEXT
);
CREATE INDEX task_events_task ON task_events (task_id, id);
