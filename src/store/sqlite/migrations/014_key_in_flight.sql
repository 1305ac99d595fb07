-- Per-key limit on tasks under way (REELAY_KEY_MAX_IN_FLIGHT): a queued task let through is
-- marked `admitted`. A tenant's places are taken by its tasks under way (not ended, and past
-- `queued` or admitted) and by its older tasks still waiting; each is counted through its own
-- partial index, up to the limit, so an ask costs the limit, not the backlog.
ALTER TABLE tasks ADD COLUMN admitted INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_tenant_under_way ON tasks (tenant_id)
  WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'expired') AND (state <> 'queued' OR admitted = 1);
CREATE INDEX tasks_tenant_waiting ON tasks (tenant_id, created_at, id) WHERE state = 'queued' AND admitted = 0;
