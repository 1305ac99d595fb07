-- Reelay PostgreSQL schema, version 4: the submission gate counts the jobs in flight at most
-- once a second while far from the limit.
--
-- reelay_admit (migration 002) counted a provider's running jobs on every call, under the
-- provider's lock: with 100,000 tasks in flight, 35 ms of a 58 ms call, and every engine's
-- submissions queued behind it (bench/inflight.ts). Now the count is kept in provider_counts with
-- the slots let through since. The sum is never below what runs: a job only starts through a slot
-- let through here, and one that ended since the count is still in it. It is used while under a
-- second old and when it leaves room for every task asking, so it can only refuse later than an
-- exact count would, never let one through too many. Near the limit every call counts again, as
-- before.
CREATE TABLE provider_counts (
  provider text PRIMARY KEY,
  -- jobs running and live slots when counted, slots let through since, when counted (ms)
  running  bigint NOT NULL,
  granted  bigint NOT NULL,
  at       bigint NOT NULL
);

CREATE OR REPLACE FUNCTION reelay_admit(p_provider text, p_tasks text[], p_owner text, p_max integer, p_rate double precision, p_now bigint)
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
  v_counted record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('reelay.gate:' || p_provider, 0));
  -- The last count, with the slots let through since: never fewer than run now (a job that ended
  -- since is still in it). Taken when under a second old and room enough for every ask; else
  -- counted again: jobs running, and slots of submissions in progress under a live lease (not
  -- those asking now).
  SELECT c.running + c.granted AS n, c.at INTO v_counted FROM provider_counts c WHERE c.provider = p_provider;
  IF v_counted.n IS NOT NULL AND p_now - v_counted.at BETWEEN 0 AND 999 AND v_counted.n + cardinality(p_tasks) <= p_max THEN
    v_running := v_counted.n;
  ELSE
    SELECT (SELECT count(*) FROM tasks WHERE provider = p_provider AND state = 'generating' AND upstream_id IS NOT NULL)
         + (SELECT count(*) FROM tasks WHERE slot_provider = p_provider AND lease_owner IS NOT NULL AND lease_until > p_now AND NOT (id = ANY (p_tasks)))
      INTO v_running;
    INSERT INTO provider_counts AS c (provider, running, granted, at) VALUES (p_provider, v_running, 0, p_now)
      ON CONFLICT (provider) DO UPDATE SET running = excluded.running, granted = 0, at = excluded.at;
  END IF;
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
  IF cardinality(v_granted) > 0 THEN
    UPDATE provider_counts SET granted = granted + cardinality(v_granted) WHERE provider = p_provider;
  END IF;

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
