-- The 4k rendition asked for after success (kie get-4k-video), and where its callback goes.
ALTER TABLE tasks ADD COLUMN uhd_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE tasks ADD COLUMN uhd_callback_url TEXT;
-- A tenant's tasks, newest or oldest first (OpenAI `GET /v1/videos`): a page is an index range.
CREATE INDEX tasks_tenant_created ON tasks (tenant_id, created_at, id);
