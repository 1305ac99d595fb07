-- Routing and failover (issue 3): which of the model's routes the current submission went to,
-- and when the current upstream job was accepted (a job running past its provider's stall time
-- is abandoned and the task fails over).
ALTER TABLE tasks ADD COLUMN route_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN submitted_at INTEGER;
-- A fallback produced the video: kie `fallbackFlag`, kkiai `detail.fallback`.
ALTER TABLE tasks ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;
