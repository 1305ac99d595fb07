-- A key's event stream reads its tasks by the time they last changed.
CREATE INDEX tasks_tenant_updated ON tasks (tenant_id, updated_at);
