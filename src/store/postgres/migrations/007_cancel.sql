-- Reelay PostgreSQL schema, version 7: cancel. A canceled task records what its cancel found
-- where the work ran (`cancel_outcome`, `pending` until an engine has stopped it), and whether it
-- is to be deleted once that is done (an OpenAI DELETE of a video being made).
ALTER TABLE tasks ADD COLUMN cancel_outcome text;
ALTER TABLE tasks ADD COLUMN delete_requested boolean NOT NULL DEFAULT false;
