-- A delivery names its tenant, so it is still signed, and sent, after its task is deleted
-- (OpenAI DELETE): deleting a task keeps the deliveries it still owes, and each goes once done.
ALTER TABLE deliveries ADD COLUMN tenant_id TEXT;
UPDATE deliveries SET tenant_id = (SELECT tenant_id FROM tasks WHERE tasks.id = deliveries.task_id) WHERE tenant_id IS NULL;
