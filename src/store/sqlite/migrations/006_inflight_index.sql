-- The jobs in flight per provider (the submission gate's count at start, /metrics): an index of
-- the generating tasks alone, so counting them does not scan every stored task (about 0.5 s at a
-- million, most of them ended). PostgreSQL has had it since its first migration.
CREATE INDEX tasks_inflight ON tasks (provider) WHERE state = 'generating' AND upstream_id IS NOT NULL;
