-- Reelay PostgreSQL schema, version 3: the claims as functions, each planned for its values.
--
-- Version 2 sent each lane's claim as a named statement. The plan cache then chose, call by call,
-- between a plan made for the call's values and its generic plan, whichever it judged cheaper,
-- and its judgement flipped as the table grew: with a million stored tasks a claim cost up to 1.6
-- times what it cost with ten thousand (bench/growth.ts), on the generic plan, which joined the
-- claimed ids to the table by hashing a scan of it.
--
-- A generic plan cannot know how many tasks are due or leased out: it guesses a third of the
-- table. Forced for every call, it read about 100,000 leased tasks to claim 16 of them when that
-- many ran at once (bench/inflight.ts: 47 ms a claim). So here each lane's claim is a function
-- declared with plan_cache_mode = force_custom_plan: every call is planned for its own values
-- (about 0.1 ms), which the planner weighs against the table's statistics, whatever their size.
-- The claimed ids are looked up by primary key (`id = ANY (ARRAY(...))`), never by a hash join.
--
-- What a claim does is unchanged: tasks whose lease ran out first (through tasks_leased), then
-- free due tasks (through the lane's partial index), up to the limit. FOR UPDATE SKIP LOCKED: a
-- task another claim is taking is skipped, not waited for, and one another claim took since this
-- statement began is re-read and dropped, so a task goes to exactly one owner. The steps lane
-- takes tasks without a result URL, the fetch lane those with one.
--
-- A steps claim also records what a submission left behind: a task still marked as submitting
-- (`slot_provider`, set by reelay_admit when its submission was let through, cleared by the
-- commit of its outcome) was left by an engine that stopped, or lost its lease, between the two.
-- The upstream may have accepted a job whose id was never recorded (kie and kkiai take no
-- idempotency key): the claim adds an `interrupted` attempt naming the provider, so every job an
-- upstream accepted has a record, with its id or as this one. Its times are the database's clock.
--
-- Arguments: the owner, now and the lease end (the database's clock, ms), and the limit.
CREATE FUNCTION reelay_claim_steps(p_owner text, p_now bigint, p_until bigint, p_limit bigint)
RETURNS SETOF tasks
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
BEGIN
  RETURN QUERY
  WITH expired AS (
      SELECT id FROM tasks
      WHERE lease_owner IS NOT NULL AND lease_until < p_now AND next_run_at <= p_now AND result_url IS NULL
      ORDER BY lease_until LIMIT p_limit
      FOR UPDATE SKIP LOCKED),
    free AS (
      SELECT id FROM tasks
      WHERE next_run_at <= p_now AND lease_owner IS NULL AND result_url IS NULL
      ORDER BY next_run_at LIMIT p_limit - (SELECT count(*) FROM expired)
      FOR UPDATE SKIP LOCKED),
    due AS MATERIALIZED (SELECT id FROM expired UNION ALL SELECT id FROM free),
    interrupted AS (
      INSERT INTO attempts (task_id, n, step, provider, upstream_id, started_at, ended_at, outcome, error)
      SELECT t.id, COALESCE((SELECT max(a.n) FROM attempts a WHERE a.task_id = t.id), 0) + 1, 'submit',
        t.slot_provider, NULL, p_now, p_now, 'interrupted',
        'the engine stopped, or lost its lease, while submitting to ' || t.slot_provider
          || ': the upstream may hold a job that was never recorded'
      FROM tasks t WHERE t.id = ANY (ARRAY(SELECT id FROM due)) AND t.slot_provider IS NOT NULL)
  UPDATE tasks t SET lease_owner = p_owner, lease_until = p_until, slot_provider = NULL
  WHERE t.id = ANY (ARRAY(SELECT id FROM due))
  RETURNING t.*;
END $$;

CREATE FUNCTION reelay_claim_fetch(p_owner text, p_now bigint, p_until bigint, p_limit bigint)
RETURNS SETOF tasks
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
BEGIN
  RETURN QUERY
  WITH expired AS (
      SELECT id FROM tasks
      WHERE lease_owner IS NOT NULL AND lease_until < p_now AND next_run_at <= p_now AND result_url IS NOT NULL
      ORDER BY lease_until LIMIT p_limit
      FOR UPDATE SKIP LOCKED),
    free AS (
      SELECT id FROM tasks
      WHERE next_run_at <= p_now AND lease_owner IS NULL AND result_url IS NOT NULL
      ORDER BY next_run_at LIMIT p_limit - (SELECT count(*) FROM expired)
      FOR UPDATE SKIP LOCKED)
  UPDATE tasks t SET lease_owner = p_owner, lease_until = p_until
  WHERE t.id = ANY (ARRAY(SELECT id FROM expired UNION ALL SELECT id FROM free))
  RETURNING t.*;
END $$;

-- The fetch lane's expired leases, apart: through tasks_leased (every leased task) its claim read
-- every lease that had run out, of either lane, to find the few of its own (with 100,000 tasks
-- in flight, 24 ms a claim: bench/inflight.ts).
CREATE INDEX tasks_fetch_leased ON tasks (lease_until) WHERE lease_owner IS NOT NULL AND result_url IS NOT NULL;
