-- Per-key limit on tasks under way (REELAY_KEY_MAX_IN_FLIGHT): a queued task let through is
-- marked `admitted`; a tenant's tasks under way are those not ended that are past `queued` or
-- admitted, counted through the partial index of the tasks not ended.
ALTER TABLE tasks ADD COLUMN admitted INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_tenant_live ON tasks (tenant_id) WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'expired');
