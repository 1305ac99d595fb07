import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from '../store/sqlite/driver.js';
import { pino } from 'pino';
import { binaries } from '../../test/media.js';
import { waitFor } from '../../test/server.js';
import { tmpDir } from '../../test/tmp.js';
import { TaskService } from '../app/tasks.js';
import { kieTaskId } from '../dialects/kie/ids.js';
import type { Task } from '../core/task.js';
import { run } from '../media/ffmpeg.js';
import { GuardedFetcher } from '../net/fetch.js';
import { UrlGuard } from '../net/guard.js';
import { type PollOutcome, type Provider, PermanentError, RateLimitedError, SafetyRejectedError, type SubmitRequest, TransientError } from '../providers/port.js';
import { ResultFiles } from '../results/files.js';
import { type RoutingConfig, parseRouting } from '../routing/config.js';
import { Router } from '../routing/router.js';
import type { Store } from '../store/port.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { Engine, type EngineOptions } from './engine.js';

type Script = { submit?: (Error | null)[]; poll?: (PollOutcome | Error)[] };

/** A provider that follows a script per task: each submit and poll takes the script's next entry. */
class ScriptedProvider implements Provider {
  readonly scripts = new Map<string, Script>();
  readonly cancelled: string[] = [];
  readonly models: string[] = [];
  constructor(
    readonly name: string,
    private readonly sample: string,
  ) {}
  /** Jobs accepted and not yet ended, and the most there ever were at once. */
  readonly live = new Set<string>();
  maxLive = 0;
  async submit(req: SubmitRequest) {
    const err = this.scripts.get(req.task.id)?.submit?.shift();
    if (err) throw err;
    this.models.push(req.model);
    const upstreamId = `${this.name}-${req.submissionId}`;
    this.live.add(upstreamId);
    this.maxLive = Math.max(this.maxLive, this.live.size);
    return { upstreamId };
  }
  async poll(upstreamId: string): Promise<PollOutcome> {
    this.polls++;
    const taskId = upstreamId.slice(this.name.length + 1).split('#')[0]!;
    const next = this.scripts.get(taskId)?.poll?.shift();
    if (next instanceof Error) throw next;
    if (!next || next.status !== 'running') this.live.delete(upstreamId);
    return next ?? { status: 'succeeded' };
  }
  async cancel(upstreamId: string) {
    this.cancelled.push(upstreamId);
  }
  /** While set, downloads wait for it; `fetching` counts them, `maxFetching` the most at once. */
  fetchGate?: Promise<void>;
  fetching = 0;
  maxFetching = 0;
  polls = 0;
  async fetchResult(_id: string, dest: string) {
    this.fetching++;
    this.maxFetching = Math.max(this.maxFetching, this.fetching);
    try {
      await this.fetchGate;
      copyFileSync(this.sample, dest + '.tmp');
      renameSync(dest + '.tmp', dest);
    } finally {
      this.fetching--;
    }
  }
}

describe('engine with a scripted provider', () => {
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 'e.sqlite'));
  const sample = join(dir, 'sample.mp4');
  let provider: ScriptedProvider;
  let backup: ScriptedProvider;
  let limited: ScriptedProvider;
  let routing: RoutingConfig;
  let engine: Engine;
  let tasks: TaskService;

  before(async () => {
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=320x180:d=1', '-f', 'lavfi', '-i', 'sine=d=1', '-c:v', 'libx264', '-c:a', 'aac', '-shortest', sample]);
    provider = new ScriptedProvider('a', sample);
    backup = new ScriptedProvider('b', sample);
    limited = new ScriptedProvider('c', sample);
    // Model `veo3_fast` has one route (a); model `failover` tries a, then b (as `b-model`).
    routing = parseRouting({
      providers: { a: { type: 'kkiai', baseUrl: 'http://a.test', apiKeyEnv: 'A_KEY', typicalSeconds: 0, stallSeconds: 1, rateLimitBudgetSeconds: 1 }, b: { type: 'kkiai', baseUrl: 'http://b.test', apiKeyEnv: 'B_KEY', typicalSeconds: 0 }, c: { type: 'kkiai', baseUrl: 'http://c.test', apiKeyEnv: 'B_KEY', typicalSeconds: 0, maxInFlight: 2, ratePerSecond: 20 } },
      models: [
        { match: 'veo3_fast', routes: [{ provider: 'a' }] },
        { match: 'limited', routes: [{ provider: 'c' }] },
        { match: ['failover', 'fail*'], routes: [{ provider: 'a' }, { provider: 'b', model: 'b-model' }] },
      ],
    }, { A_KEY: 'x', B_KEY: 'y' });
    const fetcher = new GuardedFetcher(new UrlGuard([]));
    const files = new ResultFiles(dir, 'http://reelay.test');
    engine = new Engine(
      {
        store,
        router: new Router(routing, new Map<string, Provider>([['a', provider], ['b', backup], ['c', limited]])),
        files,
        fetcher,
        binaries,
        imageMaxBytes: 1 << 20,
        notify: (t) => [{ taskId: t.id, url: 'http://cb.test/x', body: JSON.stringify({ state: t.state }), createdAt: Date.now() }],
        log: pino({ level: 'silent' }),
        minPollMs: 10,
      },
      { leaseMs: 2000, tickMs: 10 },
    );
    tasks = new TaskService(store, new UrlGuard([]), { taskDeadlineMs: 60_000, errorSleepMs: 20, maxRetries: 2 });
    tasks.wakeEngine = () => engine.wake();
    await engine.start();
  });
  after(async () => {
    await engine.stop();
    await store.close();
  });

  async function create(prompt: string, script: Script, deadlineMs?: number, model = 'veo3_fast', backupScript: Script = {}): Promise<Task> {
    const svc = deadlineMs ? new TaskService(store, new UrlGuard([]), { taskDeadlineMs: deadlineMs, errorSleepMs: 20, maxRetries: 2 }) : tasks;
    svc.wakeEngine = () => engine.wake();
    const id = kieTaskId();
    provider.scripts.set(id, script);
    backup.scripts.set(id, backupScript);
    limited.scripts.set(id, script);
    return svc.create({
      id,
      tenantId: 't',
      dialect: 'kie',
      model,
      spec: { prompt, images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 10000, durationSeconds: 8, enhancePrompt: false },
      request: { prompt },
    });
  }
  const settled = (id: string) => waitFor(async () => {
    const t = await store.getTask('t', id);
    return t && (t.state === 'succeeded' || t.state === 'failed') ? t : undefined;
  }, 15_000, 10);

  test('a transient submit error is retried; the last error stays after success', async () => {
    const t = await create('flaky submit', { submit: [new TransientError('[403] reCAPTCHA evaluation failed')], poll: [{ status: 'running' }] });
    const done = await settled(t.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.retryCount, 1);
    assert.equal(done.lastError, '[403] reCAPTCHA evaluation failed');
    const attempts = await store.listAttempts(t.id);
    assert.deepEqual(attempts.map((a) => [a.step, a.outcome]), [['submit', 'retry'], ['submit', 'submitted'], ['poll', 'succeeded']]);
    assert.equal(attempts[0]?.error, '[403] reCAPTCHA evaluation failed');
    const artifacts = await store.listArtifacts(t.id);
    assert.equal(artifacts.find((a) => a.kind === 'video')?.codec, 'h264');
    assert.equal((await store.listDeliveries(t.id)).length, 1, 'one callback queued with the terminal state');
  });

  test('retries run out: the task fails with the last error, retry_count = max_retries', async () => {
    const t = await create('always busy', { submit: [new TransientError('busy 1'), new TransientError('busy 2'), new TransientError('busy 3')] });
    const done = await settled(t.id);
    assert.equal(done.state, 'failed');
    assert.equal(done.failureStage, 'generation');
    assert.equal(done.lastErrorKind, 'upstream');
    assert.equal(done.lastError, 'busy 3');
    assert.equal(done.retryCount, 2);
    assert.equal((await store.listAttempts(t.id)).length, 3);
  });

  test('a safety rejection fails at once, with no retry', async () => {
    const t = await create('unsafe', { submit: [new SafetyRejectedError('rejected by safety')] });
    const done = await settled(t.id);
    assert.equal(done.state, 'failed');
    assert.equal(done.lastErrorKind, 'content_policy');
    assert.equal(done.retryCount, 0);
  });

  test('a permanent error fails at once', async () => {
    const done = await settled((await create('perm', { submit: [new PermanentError('model retired')] })).id);
    assert.equal(done.state, 'failed');
    assert.equal(done.lastError, 'model retired');
    assert.equal(done.lastErrorKind, 'upstream');
  });

  test('an upstream job that fails retryably is submitted again as a new attempt', async () => {
    const t = await create('job fails once', { poll: [{ status: 'failed', error: new TransientError('generation crashed') }] });
    const done = await settled(t.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.attemptCount, 2);
    const submitted = (await store.listAttempts(t.id)).filter((a) => a.outcome === 'submitted').map((a) => a.upstreamId);
    assert.deepEqual(submitted, [`a-${t.id}#1`, `a-${t.id}#2`]);
  });

  test('a rate limit waits at least its retry time', async () => {
    const t = await create('rate limited', { submit: [new RateLimitedError('slow down', 300)] });
    const start = Date.now();
    const done = await settled(t.id);
    assert.equal(done.state, 'succeeded');
    assert.ok(Date.now() - start >= 300, `waited ${Date.now() - start} ms`);
  });

  test('a task stuck past its deadline fails with a clear timeout message', async () => {
    const running = Array.from({ length: 1000 }, () => ({ status: 'running' as const, pollAfterMs: 50 }));
    const t = await create('stuck', { poll: running }, 400);
    const done = await settled(t.id);
    assert.equal(done.state, 'failed');
    assert.equal(done.lastErrorKind, 'timeout');
    assert.match(done.lastError ?? '', /did not finish within .* \(it was generating\)/);
  });

  describe('failover across routes', () => {
    const submitted = async (id: string) => (await store.listAttempts(id)).filter((a) => a.outcome === 'submitted').map((a) => `${a.provider}:${a.upstreamId}`);

    test('a job that fails after acceptance completes on the next route under the same task id', async () => {
      const t = await create('a fails after accepting', { poll: [{ status: 'running' }, { status: 'failed', error: new TransientError('upstream generation error') }] }, undefined, 'failover');
      const done = await settled(t.id);
      assert.equal(done.state, 'succeeded');
      assert.equal(done.id, t.id);
      assert.equal(done.provider, 'b');
      assert.equal(done.routeIndex, 1);
      assert.equal(done.fallback, true);
      assert.equal(done.retryCount, 1);
      assert.equal(done.lastError, 'upstream generation error');
      assert.deepEqual(await submitted(t.id), [`a:a-${t.id}#1`, `b:b-${t.id}#2`]);
      assert.equal(backup.models.at(-1), 'b-model', "the route's upstream model id is sent");
    });

    test('a refused submission (5xx, connection) moves on at once; a success on the first route is no fallback', async () => {
      const t = await create('a is down', { submit: [new TransientError('a: POST /v1/video/create failed: ECONNREFUSED')] }, undefined, 'failover');
      const done = await settled(t.id);
      assert.equal(done.provider, 'b');
      assert.equal(done.fallback, true);
      const first = await settled((await create('a is fine', {}, undefined, 'failover')).id);
      assert.equal(first.provider, 'a');
      assert.equal(first.fallback, false);
    });

    test('a 429 within the budget waits on the same route; past it, the task fails over', async () => {
      const within = await settled((await create('short 429', { submit: [new RateLimitedError('slow down', 100)] }, undefined, 'failover')).id);
      assert.equal(within.provider, 'a');
      const past = await settled((await create('long 429', { submit: [new RateLimitedError('come back in an hour', 3_600_000)] }, undefined, 'failover')).id);
      assert.equal(past.provider, 'b');
    });

    test('a safety rejection is not resubmitted elsewhere', async () => {
      const t = await create('unsafe at a', { poll: [{ status: 'failed', error: new SafetyRejectedError('rejected by safety') }] }, undefined, 'failover');
      const done = await settled(t.id);
      assert.equal(done.state, 'failed');
      assert.equal(done.lastErrorKind, 'content_policy');
      assert.deepEqual(await submitted(t.id), [`a:a-${t.id}#1`]);
    });

    test('a stalled job is cancelled upstream and the task fails over', async () => {
      const running = Array.from({ length: 1000 }, () => ({ status: 'running' as const, pollAfterMs: 50 }));
      const t = await create('a stalls', { poll: running }, undefined, 'failover');
      const done = await settled(t.id);
      assert.equal(done.provider, 'b');
      assert.ok(provider.cancelled.includes(`a-${t.id}#1`), 'the stalled job was cancelled');
      const attempts = await store.listAttempts(t.id);
      assert.match(attempts.find((a) => a.outcome === 'abandoned')?.error ?? '', /gave no result within 1 s/);
    });

    test('a provider disabled while it holds a job: the task moves to the next route', async () => {
      const running = Array.from({ length: 1000 }, () => ({ status: 'running' as const, pollAfterMs: 20 }));
      const t = await create('a gets disabled', { poll: running }, undefined, 'failover');
      await waitFor(async () => (await store.getTask('t', t.id))?.upstreamId ?? undefined, 5000, 10);
      routing.providers.get('a')!.enabled = false;
      try {
        const done = await settled(t.id);
        assert.equal(done.provider, 'b');
        assert.ok(provider.cancelled.includes(`a-${t.id}#1`), JSON.stringify([provider.cancelled, await store.listAttempts(t.id)]));
        // New tasks skip the disabled route from the start.
        const fresh = await settled((await create('after disable', {}, undefined, 'failover')).id);
        assert.equal(fresh.provider, 'b');
        assert.deepEqual(await submitted(fresh.id), [`b:b-${fresh.id}#1`]);
      } finally {
        routing.providers.get('a')!.enabled = true;
      }
    });
  });

  test('per-provider limits: at most maxInFlight jobs at once, submissions paced by ratePerSecond', async () => {
    const running = () => ({ poll: Array.from({ length: 4 }, () => ({ status: 'running' as const, pollAfterMs: 30 })) });
    const started = Date.now();
    const all = await Promise.all(Array.from({ length: 6 }, (_, i) => create(`limited ${i}`, running(), undefined, 'limited')));
    const done = await Promise.all(all.map((t) => settled(t.id)));
    assert.ok(done.every((t) => t.state === 'succeeded'));
    assert.equal(limited.maxLive, 2, 'never more than maxInFlight upstream jobs');
    assert.equal(engine.gate.count('c'), 0, 'the count returns to zero');
    assert.ok(done.every((t) => t.retryCount === 0), 'waiting for a slot is not a retry');
    assert.ok(Date.now() - started >= 200, 'six submissions at 20 per second with a burst of 20 still wait for slots');
  });
});

/**
 * A store, a scripted provider `a` as the only route for every model, a factory for engines with
 * `opts`, and a task service whose `create` scripts the new task's upstream job.
 */
async function oneRoute(name: string, opts: EngineOptions, taskDeadlineMs = 60_000) {
  const dir = tmpDir();
  const file = join(dir, `${name}.sqlite`);
  const store = openSqliteStore(file);
  const sample = join(dir, 'sample.mp4');
  await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=64x36:d=1', '-c:v', 'libx264', sample]);
  const provider = new ScriptedProvider('a', sample);
  const routing = parseRouting({
    providers: { a: { type: 'kkiai', baseUrl: 'http://a.test', apiKeyEnv: 'A_KEY', typicalSeconds: 0 } },
    models: [{ match: '*', routes: [{ provider: 'a' }] }],
  }, { A_KEY: 'x' });
  const makeEngine = () => new Engine(
    { store, router: new Router(routing, new Map<string, Provider>([['a', provider]])), files: new ResultFiles(dir, 'http://reelay.test'), fetcher: new GuardedFetcher(new UrlGuard([])), binaries, imageMaxBytes: 1 << 20, notify: () => [], log: pino({ level: 'silent' }), minPollMs: 10 },
    opts,
  );
  const tasks = new TaskService(store, new UrlGuard([]), { taskDeadlineMs, errorSleepMs: 20, maxRetries: 2 });
  const create = (prompt: string, script: Script) => {
    const id = kieTaskId();
    provider.scripts.set(id, script);
    return tasks.create({ id, tenantId: 't', dialect: 'kie', model: 'veo3_fast', spec: { prompt, images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 1, durationSeconds: 8, enhancePrompt: false }, request: { prompt } });
  };
  return { file, store, provider, makeEngine, tasks, create };
}

/**
 * Every finished job's task succeeds with one submission and one poll, its video probed, never
 * more than the lane's two downloads at once; the job still running is still generating.
 */
async function downloadedOnce(store: Store, provider: ScriptedProvider, finished: Task[], running: Task): Promise<void> {
  const done = await Promise.all(finished.map((t) => waitFor(async () => {
    const got = await store.getTask('t', t.id);
    return got?.state === 'succeeded' ? got : undefined;
  }, 10_000, 10)));
  assert.equal(provider.maxFetching, 2, 'never more downloads at once than the lane has slots');
  assert.ok(done.every((t) => t.resultUrl === null && t.retryCount === 0));
  for (const t of done) {
    assert.deepEqual((await store.listAttempts(t.id)).map((a) => [a.step, a.outcome]), [['submit', 'submitted'], ['poll', 'succeeded']]);
    assert.equal((await store.listArtifacts(t.id)).find((a) => a.kind === 'video')?.codec, 'h264');
  }
  assert.equal((await store.getTask('t', running.id))?.state, 'generating');
}

describe('the download lane', () => {
  test('finished jobs wait for the download lane (in its queue, then in memory), leased and with nothing committed, while polls of running jobs go on', async () => {
    const { file, store, provider, makeEngine, tasks, create } = await oneRoute('lane-memory', { leaseMs: 2000, tickMs: 10, concurrency: 4, downloads: 2, downloadQueue: 1 });
    const raw = new BetterSqlite3(file, { readonly: true });
    const rows = () => raw.prepare("SELECT lease_owner AS owner, result_url AS resultUrl FROM tasks WHERE state = 'generating'").all() as { owner: string | null; resultUrl: string | null }[];
    let open!: () => void;
    provider.fetchGate = new Promise<void>((r) => (open = r));
    let engine = makeEngine();
    tasks.wakeEngine = () => engine.wake();
    await engine.start();
    try {
      // Six jobs that finish at once, with more than the four step slots: their downloads hang.
      const finished = await Promise.all(Array.from({ length: 6 }, (_, i) => create(`done ${i}`, {})));
      await waitFor(async () => (provider.polls === 6 && provider.fetching === 2 ? true : undefined), 5000, 10);
      // Two download, one waits in the queue, three wait in memory: none of it is written.
      const waiting = rows();
      assert.equal(waiting.length, 6);
      assert.ok(waiting.every((r) => r.owner === engine.owner && r.resultUrl === null), JSON.stringify(waiting));
      // A running job is still polled: the waiting downloads hold no step slot.
      const running = await create('still running', { poll: Array.from({ length: 200 }, () => ({ status: 'running' as const, pollAfterMs: 10 })) });
      await waitFor(async () => (provider.polls >= 16 ? true : undefined), 5000, 10);
      assert.equal(provider.maxFetching, 2);

      // The engine stops: the downloads under way end, the jobs that waited in memory go back to
      // the store as they were, and another engine polls them again and finds them done.
      const stopping = engine.stop();
      open();
      await stopping;
      engine = makeEngine();
      tasks.wakeEngine = () => engine.wake();
      await engine.start();
      await downloadedOnce(store, provider, finished, running);
    } finally {
      open();
      raw.close();
      await engine.stop();
      await store.close();
    }
  });

  test('with memory full (maxHeld), finished jobs wait for the download lane committed with their URL, and are claimed as slots free', async () => {
    const { store, provider, makeEngine, tasks, create } = await oneRoute('lane-store', { leaseMs: 2000, tickMs: 10, concurrency: 4, downloads: 2, downloadQueue: 1, maxHeld: 0 });
    let open!: () => void;
    provider.fetchGate = new Promise<void>((r) => (open = r));
    const engine = makeEngine();
    tasks.wakeEngine = () => engine.wake();
    await engine.start();
    try {
      // Six jobs that finish at once, with more than the four step slots: their downloads hang.
      const finished = await Promise.all(Array.from({ length: 6 }, (_, i) => create(`done ${i}`, {})));
      const queued = await waitFor(async () => {
        const now = await Promise.all(finished.map((t) => store.getTask('t', t.id)));
        const waiting = now.filter((t) => t?.resultUrl !== null && t?.state === 'generating');
        return waiting.length === 3 ? waiting : undefined;
      }, 5000, 10);
      assert.equal(queued.length, 3, 'two download, one waits in the queue, three wait in the lane with their URL committed');
      assert.equal(provider.fetching, 2);
      // A running job is still polled: the hanging downloads hold no step slot.
      const running = await create('still running', { poll: Array.from({ length: 200 }, () => ({ status: 'running' as const, pollAfterMs: 10 })) });
      const before = provider.polls;
      await waitFor(async () => (provider.polls >= before + 10 ? true : undefined), 5000, 10);
      open();
      await downloadedOnce(store, provider, finished, running);
    } finally {
      open();
      await engine.stop();
      await store.close();
    }
  });
});

describe('held tasks', () => {
  test('many short lifecycles through few slots: every task is held and started again, none waits for its lease to run out', async () => {
    const { store, makeEngine, tasks, create } = await oneRoute('many', { leaseMs: 30_000, tickMs: 10, concurrency: 3, downloads: 2 }, 120_000);
    const engine = makeEngine();
    tasks.wakeEngine = () => engine.wake();
    await engine.start();
    try {
      const ids = (await Promise.all(Array.from({ length: 60 }, (_, i) => create(`many ${i}`, { poll: [{ status: 'running', pollAfterMs: 5 }] })))).map((t) => t.id);
      // Far less than the 30 s lease: a task dropped from memory while leased would wait that long.
      await waitFor(async () => {
        const states = await Promise.all(ids.map(async (id) => (await store.getTask('t', id))?.state));
        return states.every((s) => s === 'succeeded') ? true : undefined;
      }, 10_000, 20);
    } finally {
      await engine.stop();
      await store.close();
    }
  });

  test('a task waits for its next poll in its engine, leased; a wake polls it at once; stopping gives it back to another engine', async () => {
    const { file, store, provider, makeEngine, tasks, create } = await oneRoute('held', { leaseMs: 2000, tickMs: 10 });
    const raw = new BetterSqlite3(file, { readonly: true });
    const leaseOf = (id: string) => raw.prepare('SELECT lease_owner AS owner, lease_until AS until, next_run_at AS due FROM tasks WHERE id = ?').get(id) as { owner: string | null; until: number | null; due: number };
    let engine = makeEngine();
    tasks.wakeEngine = () => engine.wake();
    tasks.engine = engine;
    await engine.start();
    try {
      // Polled once at once (running: the next poll at least 20 s later), then it waits.
      const { id } = await create('held', { poll: [{ status: 'running', pollAfterMs: 60_000 }, { status: 'running', pollAfterMs: 60_000 }] });
      assert.equal(leaseOf(id).owner, engine.owner, 'handed to the engine at its insert, before any claim could run');
      const waiting = await waitFor(async () => {
        const l = leaseOf(id);
        return provider.polls === 1 && l.due > Date.now() + 20_000 ? l : undefined;
      }, 5000, 10);
      assert.equal(waiting.owner, engine.owner, 'leased to its engine while it waits');
      assert.ok(waiting.until! >= waiting.due, 'the lease lasts past its time, so no other engine claims it meanwhile');

      // The upstream says the job changed: polled now, not in a minute.
      const upstreamId = (await store.getTask('t', id))!.upstreamId!;
      await engine.wakeUpstream('a', upstreamId);
      await waitFor(async () => (provider.polls === 2 ? true : undefined), 2000, 10);

      // Stopping gives the lease back; another engine polls the task at its time and finishes it.
      await engine.stop();
      assert.equal(leaseOf(id).owner, null);
      raw.close();
      engine = makeEngine();
      tasks.wakeEngine = () => engine.wake();
      tasks.engine = engine;
      provider.scripts.set(id, { poll: [] }); // the next poll finds it done
      await store.wakeByUpstream('a', upstreamId, Date.now());
      await engine.start();
      const done = await waitFor(async () => {
        const t = await store.getTask('t', id);
        return t?.state === 'succeeded' ? t : undefined;
      }, 5000, 10);
      assert.equal(done.retryCount, 0);
    } finally {
      await engine.stop();
      await store.close();
    }
  });
});
