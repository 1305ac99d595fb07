-- Cancel: a canceled task records what its cancel found where the work ran (`cancel_outcome`,
-- `pending` until the engine has stopped it), and whether it is to be deleted once that is done
-- (an OpenAI DELETE of a video being made).
ALTER TABLE tasks ADD COLUMN cancel_outcome TEXT;
ALTER TABLE tasks ADD COLUMN delete_requested INTEGER NOT NULL DEFAULT 0;
