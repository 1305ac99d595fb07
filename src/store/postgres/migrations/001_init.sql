-- Reelay PostgreSQL schema, version 1: the SQLite schema of its migrations 001–005 in one.
-- Times are epoch milliseconds (bigint); `next_run_at`, `lease_until` and `next_attempt_at` are on
-- the database's clock (the store moves callers' times onto it). JSON fields are `json`, which
-- keeps the text as written (a create body echoed back keeps its key order; `jsonb` would not).
-- Keys and ids collate "C": byte order, as in SQLite, whatever the database's locale, so pages and
-- orderings by id are the same on both backends.

CREATE TABLE api_keys (
  id          text COLLATE "C" PRIMARY KEY,
  tenant_id   text COLLATE "C" NOT NULL,
  hash        text COLLATE "C" NOT NULL UNIQUE,
  prefix      text NOT NULL,
  name        text NOT NULL DEFAULT '',
  source      text NOT NULL DEFAULT 'cli',
  created_at  bigint NOT NULL,
  revoked_at  bigint
);

CREATE TABLE tasks (
  id                text COLLATE "C" PRIMARY KEY,
  tenant_id         text COLLATE "C" NOT NULL,
  dialect           text NOT NULL,
  model             text NOT NULL,
  spec              json NOT NULL,
  request           json NOT NULL,
  state             text NOT NULL,
  enhanced_prompt   text NOT NULL,
  images            json NOT NULL,
  provider          text NOT NULL,
  upstream_id       text,
  attempt_count     integer NOT NULL DEFAULT 0,
  retry_count       integer NOT NULL DEFAULT 0,
  max_retries       integer NOT NULL,
  error_sleep_ms    integer NOT NULL,
  last_error        text,
  last_error_kind   text,
  failure_stage     text,
  callback_url      text,
  -- 128 random bits, unique by construction; never looked up (files are served by path): no index.
  file_token        text NOT NULL,
  hd_state          text NOT NULL DEFAULT 'none',
  progress          integer NOT NULL DEFAULT 0,
  created_at        bigint NOT NULL,
  updated_at        bigint NOT NULL,
  completed_at      bigint,
  deadline_at       bigint NOT NULL,
  next_run_at       bigint,
  lease_owner       text,
  lease_until       bigint,
  -- Routing and failover: the route of the current submission, when its job was accepted, and
  -- whether a fallback made the video.
  route_index       integer NOT NULL DEFAULT 0,
  submitted_at      bigint,
  fallback          boolean NOT NULL DEFAULT false,
  -- A finished upstream job whose video waits for the download lane: where to fetch it.
  result_url        text,
  -- The 4k rendition asked for after success, and where its callback goes.
  uhd_state         text NOT NULL DEFAULT 'none',
  uhd_callback_url  text,
  -- A submission slot of this provider, held while the task's engine submits to it (see
  -- provider_rates and `admitSubmission`); every commit clears it, and it counts only while the
  -- task's lease lasts.
  slot_provider     text
);
-- Each claim lane reads free due tasks through its own index, and tasks whose lease ran out through
-- tasks_leased, so no claim walks over tasks that are held or belong to the other lane.
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL AND lease_owner IS NULL AND result_url IS NULL;
CREATE INDEX tasks_fetch_due ON tasks (next_run_at) WHERE next_run_at IS NOT NULL AND lease_owner IS NULL AND result_url IS NOT NULL;
CREATE INDEX tasks_leased ON tasks (lease_until) WHERE lease_owner IS NOT NULL;
CREATE INDEX tasks_upstream ON tasks (provider, upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX tasks_retention ON tasks (completed_at) WHERE completed_at IS NOT NULL;
-- A tenant's tasks, newest or oldest first: a page is an index range.
CREATE INDEX tasks_tenant_created ON tasks (tenant_id, created_at, id);
-- What a provider runs now, for the admission of a new submission: its upstream jobs, and the
-- slots of submissions in progress.
CREATE INDEX tasks_inflight ON tasks (provider) WHERE state = 'generating' AND upstream_id IS NOT NULL;
CREATE INDEX tasks_slots ON tasks (slot_provider) WHERE slot_provider IS NOT NULL;

-- Each provider's submission rate (`ratePerSecond`), shared by every engine: a token bucket
-- holding up to one second's worth, refilled by the time since `at` (the database's clock).
CREATE TABLE provider_rates (
  provider  text COLLATE "C" PRIMARY KEY,
  tokens    double precision NOT NULL,
  at        bigint NOT NULL
);

CREATE TABLE attempts (
  task_id      text COLLATE "C" NOT NULL,
  n            integer NOT NULL,
  step         text NOT NULL,
  provider     text NOT NULL,
  upstream_id  text,
  started_at   bigint NOT NULL,
  ended_at     bigint,
  outcome      text NOT NULL,
  error        text,
  PRIMARY KEY (task_id, n)
);

CREATE TABLE artifacts (
  task_id       text COLLATE "C" NOT NULL,
  kind          text COLLATE "C" NOT NULL,
  path          text NOT NULL,
  content_type  text NOT NULL,
  bytes         bigint NOT NULL,
  width         integer,
  height        integer,
  duration_ms   integer,
  codec         text,
  created_at    bigint NOT NULL,
  PRIMARY KEY (task_id, kind)
);

CREATE TABLE deliveries (
  id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  task_id          text COLLATE "C" NOT NULL,
  url              text NOT NULL,
  body             text NOT NULL,
  status           text NOT NULL DEFAULT 'pending',
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint,
  lease_until      bigint,
  last_error       text,
  last_status      integer,
  created_at       bigint NOT NULL,
  delivered_at     bigint
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_task ON deliveries (task_id);
