-- Reelay PostgreSQL schema, version 12: the per-key limit on tasks under way
-- (REELAY_KEY_MAX_IN_FLIGHT). A queued task let through is marked `admitted`; a tenant's tasks
-- under way are those not ended that are past `queued` or admitted, counted through the partial
-- index of the tasks not ended, under the tenant's advisory lock.
ALTER TABLE tasks ADD COLUMN admitted boolean NOT NULL DEFAULT false;
CREATE INDEX tasks_tenant_live ON tasks (tenant_id) WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'expired');
