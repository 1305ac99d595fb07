-- Reelay PostgreSQL schema, version 8: the audit trail. Every state transition of a task with
-- its reason, and every try of its callbacks, append-only, in `id` order (an identity: events
-- written at once by many processes need no per-task number); deleted only with the task.
CREATE TABLE task_events (
  id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id    text    NOT NULL,
  at         bigint  NOT NULL,
  kind       text    NOT NULL,
  actor      text    NOT NULL,
  from_state text,
  to_state   text,
  detail     json
);
CREATE INDEX task_events_task ON task_events (task_id, id);
