-- A finished upstream job whose video waits to be downloaded: the URL the poll found. Such tasks
-- are claimed by the engine's download lane through their own index, so a burst of finished jobs
-- queues here instead of taking the step slots that polls need.
ALTER TABLE tasks ADD COLUMN result_url TEXT;
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL AND lease_owner IS NULL AND result_url IS NULL;
CREATE INDEX tasks_fetch_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL AND lease_owner IS NULL AND result_url IS NOT NULL;
