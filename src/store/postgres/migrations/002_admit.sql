-- Reelay PostgreSQL schema, version 2: the submission gate (`admitSubmission`) in one round trip.
--
-- Version 1 ran the gate as a transaction of five statements from the client, holding the
-- provider's advisory lock across every round trip and the client's own event-loop delays: under
-- load, admissions queued behind that lock and it capped submissions at a few hundred a second.
-- This function takes the lock, counts, takes tokens and marks the slots in one call, for a batch
-- of tasks, so the lock is held only while the server works.
--
-- The function is VOLATILE (the default): in READ COMMITTED each statement in it reads a snapshot
-- taken after the lock was granted, so it sees everything the previous holder committed.
--
-- Arguments: the provider, the tasks asking (in the order they should be served), the engine that
-- holds their leases, maxInFlight, ratePerSecond (NULL: no rate) and now (the database's clock, ms).
-- One row per task asking: whether it got a slot, and when not, how long to wait and why.
CREATE FUNCTION reelay_admit(p_provider text, p_tasks text[], p_owner text, p_max integer, p_rate double precision, p_now bigint)
RETURNS TABLE (task_id text, admitted boolean, wait_ms integer, why text)
LANGUAGE plpgsql AS $$
DECLARE
  v_running bigint;
  k integer;
  v_rate_limited boolean := false;
  v_tokens double precision;
  v_at bigint;
  v_granted text[];
  v_full_why text := format('%s has %s jobs running (maxInFlight)', p_provider, p_max);
  v_rate_why text := format('%s is at %s submissions per second (ratePerSecond)', p_provider, p_rate);
  v_rate_wait integer := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('reelay.gate:' || p_provider, 0));
  -- Jobs running, and slots of submissions in progress under a live lease (not those asking now).
  SELECT (SELECT count(*) FROM tasks WHERE provider = p_provider AND state = 'generating' AND upstream_id IS NOT NULL)
       + (SELECT count(*) FROM tasks WHERE slot_provider = p_provider AND lease_owner IS NOT NULL AND lease_until > p_now AND NOT (id = ANY (p_tasks)))
    INTO v_running;
  k := greatest(0, least(p_max - v_running, cardinality(p_tasks)));

  IF p_rate IS NOT NULL AND k > 0 THEN
    -- Refilled by the time since the last take, up to one second's worth (at least one token).
    SELECT r.tokens, r.at INTO v_tokens, v_at FROM provider_rates r WHERE r.provider = p_provider;
    IF NOT FOUND THEN
      v_tokens := greatest(p_rate, 1);
      v_at := p_now;
    ELSE
      v_tokens := least(greatest(p_rate, 1), v_tokens + greatest(p_now - v_at, 0) / 1000.0 * p_rate);
      v_at := greatest(v_at, p_now);
    END IF;
    IF floor(v_tokens) < k THEN
      k := floor(v_tokens)::integer;
      v_rate_limited := true;
    END IF;
  END IF;

  IF k > 0 THEN
    -- Rows locked in id order, as every statement that updates many tasks does: no deadlocks.
    WITH mine AS (SELECT id FROM tasks WHERE id = ANY (p_tasks[1:k]) AND lease_owner = p_owner ORDER BY id FOR UPDATE),
      g AS (UPDATE tasks t SET slot_provider = p_provider FROM mine WHERE t.id = mine.id AND t.lease_owner = p_owner RETURNING t.id)
    SELECT array_agg(g.id) INTO v_granted FROM g;
  END IF;
  v_granted := coalesce(v_granted, '{}');

  IF p_rate IS NOT NULL AND k > 0 THEN
    -- Only slots taken spend tokens. With none left to take, nothing is written: the refill is
    -- computed again from the same `at` next time.
    INSERT INTO provider_rates AS r (provider, tokens, at) VALUES (p_provider, v_tokens - cardinality(v_granted), v_at)
      ON CONFLICT (provider) DO UPDATE SET tokens = excluded.tokens, at = excluded.at;
    v_tokens := v_tokens - cardinality(v_granted);
  END IF;
  IF v_rate_limited THEN
    v_rate_wait := ceil((1 - (v_tokens - floor(v_tokens))) / p_rate * 1000)::integer;
  END IF;

  RETURN QUERY
    SELECT t.id, t.id = ANY (v_granted),
      CASE WHEN t.id = ANY (v_granted) OR t.n <= k THEN 0 WHEN v_rate_limited THEN v_rate_wait ELSE 500 END,
      CASE WHEN t.id = ANY (v_granted) THEN NULL
           WHEN t.n <= k THEN 'the task is no longer leased to this engine'
           WHEN v_rate_limited THEN v_rate_why ELSE v_full_why END
    FROM unnest(p_tasks) WITH ORDINALITY AS t(id, n);
END
$$;
