-- The due index holds only tasks no engine holds. A claim used to walk the index from its oldest
-- entry and step over every task a running step held (hundreds while the engine is busy, each a
-- table lookup); now it reads only the rows it takes. Held tasks whose lease ran out (their engine
-- died) are found through their own index, ordered by when the lease ended.
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL AND lease_owner IS NULL;
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE lease_owner IS NOT NULL;
