import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { binaries } from '../../test/media.js';
import { waitFor } from '../../test/server.js';
import { tmpDir } from '../../test/tmp.js';
import { TaskService } from '../app/tasks.js';
import type { Task } from '../core/task.js';
import { kieTaskId } from '../dialects/kie/ids.js';
import { GuardedFetcher } from '../net/fetch.js';
import { UrlGuard } from '../net/guard.js';
import { type PollOutcome, type Provider, type SubmitRequest, TransientError } from '../providers/port.js';
import { ResultFiles } from '../results/files.js';
import { parseRouting } from '../routing/config.js';
import { Router } from '../routing/router.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { Engine } from './engine.js';

/**
 * A provider whose jobs run until they are canceled. `submitGate`, while set, holds every submit;
 * `cancelFailures` makes that many cancels fail first. Without `cancels`, it has no cancel (kie).
 */
class LongJobs implements Provider {
  readonly canceled: string[] = [];
  readonly submitted: string[] = [];
  polls = 0;
  submitGate?: Promise<void>;
  cancelFailures = 0;
  cancel?: (upstreamId: string) => Promise<void>;
  constructor(
    readonly name: string,
    cancels: boolean,
  ) {
    if (cancels) {
      this.cancel = async (upstreamId) => {
        if (this.cancelFailures > 0) {
          this.cancelFailures--;
          throw new TransientError(`${name}: 503 while canceling`);
        }
        this.canceled.push(upstreamId);
      };
    }
  }
  async submit(req: SubmitRequest) {
    await this.submitGate;
    const upstreamId = `${this.name}-${req.submissionId}`;
    this.submitted.push(upstreamId);
    return { upstreamId };
  }
  async poll(): Promise<PollOutcome> {
    this.polls++;
    return { status: 'running', progress: 40, pollAfterMs: 20 };
  }
  async fetchResult(): Promise<void> {
    throw new Error('a job that never ends has no result');
  }
}

describe('cancel through the engine', () => {
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 'cancel.sqlite'));
  const stoppable = new LongJobs('stoppable', true);
  const uncancelable = new LongJobs('uncancelable', false);
  const single = new LongJobs('single', true);
  const routing = parseRouting({
    providers: {
      stoppable: { type: 'fal', baseUrl: 'http://s.test', apiKeyEnv: 'K', typicalSeconds: 0 },
      uncancelable: { type: 'kie', baseUrl: 'http://u.test', apiKeyEnv: 'K', typicalSeconds: 0 },
      single: { type: 'fal', baseUrl: 'http://one.test', apiKeyEnv: 'K', typicalSeconds: 0, maxInFlight: 1 },
    },
    models: [{ match: 'kie-model', routes: [{ provider: 'uncancelable' }] }, { match: 'one-at-a-time', routes: [{ provider: 'single' }] }, { match: '*', routes: [{ provider: 'stoppable' }] }],
  }, { K: 'x' });
  const files = new ResultFiles(dir, 'http://reelay.test');
  const delivered: { taskId: string; state: string; outcome: string | null }[] = [];
  const engine = new Engine(
    {
      store,
      router: new Router(routing, new Map<string, Provider>([['stoppable', stoppable], ['uncancelable', uncancelable], ['single', single]])),
      files,
      fetcher: new GuardedFetcher(new UrlGuard([])),
      binaries,
      imageMaxBytes: 1 << 20,
      notify: (t) => {
        delivered.push({ taskId: t.id, state: t.state, outcome: t.cancelOutcome });
        return [{ taskId: t.id, url: 'http://cb.test/x', body: JSON.stringify({ state: t.state, cancel: t.cancelOutcome }), createdAt: Date.now() }];
      },
      log: pino({ level: 'silent' }),
      minPollMs: 10,
    },
    { leaseMs: 2000, tickMs: 10 },
  );
  const tasks = new TaskService(store, new UrlGuard([]), { taskDeadlineMs: 60_000, errorSleepMs: 20, maxRetries: 3 }, files);
  tasks.wakeEngine = () => engine.wake();
  tasks.engine = engine;
  tasks.canceled = (id, before) => engine.canceled(id, before);
  after(async () => {
    await engine.stop();
    await store.close();
  });

  const create = (model = 'veo3.1-fast') =>
    tasks.create({ id: kieTaskId(), tenantId: 't', dialect: 'kie', model, spec: { prompt: 'a long one', images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 1, durationSeconds: 8, enhancePrompt: false }, request: {} });
  const get = (id: string) => store.getTask('t', id);
  const generating = (id: string) => waitFor(async () => {
    const t = await get(id);
    return t?.state === 'generating' && t.upstreamId ? t : undefined;
  }, 10_000, 10);
  const stopped = (id: string) => waitFor(async () => {
    const t = await get(id);
    return t?.state === 'canceled' && t.cancelOutcome !== 'pending' ? t : undefined;
  }, 10_000, 10);

  test('the engine is started', async () => {
    await engine.start();
  });

  test('a running job: canceled at once, then its upstream job is canceled, the attempt logged, the callback owed, no poll after', async () => {
    const task = await create();
    const running = await generating(task.id);
    const r = await tasks.cancel('t', task.id);
    assert.deepEqual([r?.canceled, r?.task.state, r?.task.cancelOutcome], [true, 'canceled', 'pending']);
    const done = await stopped(task.id);
    assert.equal(done.cancelOutcome, 'upstream_canceled');
    assert.deepEqual(stoppable.canceled.filter((u) => u === running.upstreamId), [running.upstreamId], 'the upstream job was canceled once');
    const attempts = await store.listAttempts(task.id);
    assert.deepEqual(attempts.at(-1) && [attempts.at(-1)!.step, attempts.at(-1)!.outcome, attempts.at(-1)!.upstreamId], ['cancel', 'canceled', running.upstreamId]);
    const deliveries = await store.listDeliveries(task.id);
    assert.equal(deliveries.length, 1);
    assert.deepEqual(JSON.parse(deliveries[0]!.body), { state: 'canceled', cancel: 'upstream_canceled' });
    const polls = stoppable.polls;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(stoppable.polls, polls, 'the canceled job is not polled again (the held copy was let go)');
    assert.equal((await get(task.id))?.nextRunAt, null, 'nothing is due');
  });

  test('a provider with no cancel (kie): upstream_uncancelable, said so', async () => {
    const task = await create('kie-model');
    await generating(task.id);
    await tasks.cancel('t', task.id);
    assert.equal((await stopped(task.id)).cancelOutcome, 'upstream_uncancelable');
  });

  test('a canceled job gives its provider\'s maxInFlight slot back: the next task is submitted', async () => {
    const first = await create('one-at-a-time');
    await generating(first.id);
    const second = await create('one-at-a-time');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal((await get(second.id))?.state, 'queued', 'it waits: the provider runs one job at a time');
    await tasks.cancel('t', first.id);
    await generating(second.id);
    await tasks.cancel('t', second.id);
    await stopped(second.id);
  });

  test('a provider with no cancel whose submit lands after the cancel: its job is named, and said to run on', async () => {
    let open!: () => void;
    uncancelable.submitGate = new Promise<void>((r) => (open = r));
    const task = await create('kie-model');
    try {
      await new Promise((r) => setTimeout(r, 100));
      await tasks.cancel('t', task.id);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      uncancelable.submitGate = undefined;
      open();
    }
    const done = await stopped(task.id);
    assert.equal(done.cancelOutcome, 'upstream_uncancelable');
    assert.equal(done.upstreamId, `uncancelable-${task.id}#1`);
  });

  test('a cancel that fails (503) is tried again, then succeeds', async () => {
    const task = await create();
    const running = await generating(task.id);
    stoppable.cancelFailures = 2;
    await tasks.cancel('t', task.id);
    assert.equal((await stopped(task.id)).cancelOutcome, 'upstream_canceled');
    assert.ok(stoppable.canceled.includes(running.upstreamId!));
    const cancels = (await store.listAttempts(task.id)).filter((a) => a.step === 'cancel').map((a) => a.outcome);
    assert.deepEqual(cancels, ['retry', 'retry', 'canceled']);
  });

  test('canceled while its submit is out: that commit is refused, the job it made is canceled upstream, then the stop step runs', async () => {
    let open!: () => void;
    stoppable.submitGate = new Promise<void>((r) => (open = r));
    const before = stoppable.submitted.length;
    const task = await create();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const r = await tasks.cancel('t', task.id);
      assert.equal(r?.task.state, 'canceled');
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      stoppable.submitGate = undefined;
      open();
    }
    const made = await waitFor(async () => stoppable.submitted.slice(before).find((u) => u.includes(task.id)), 5000, 10);
    await waitFor(async () => (stoppable.canceled.includes(made) ? true : undefined), 5000, 10);
    const done = await stopped(task.id);
    assert.equal(done.state, 'canceled', 'the submit did not commit over the cancel');
    // The cancel step that followed the refused submit names its job: stopped upstream.
    assert.equal(done.cancelOutcome, 'upstream_canceled');
    assert.equal(done.upstreamId, made);
    assert.deepEqual((await store.listAttempts(task.id)).map((a) => [a.step, a.outcome, a.upstreamId]), [['cancel', 'canceled', made]]);
  });

  test('a task that ended first stays as it ended', async () => {
    const task = await create();
    await generating(task.id);
    await tasks.cancel('t', task.id);
    await stopped(task.id);
    const again = await tasks.cancel('t', task.id);
    assert.deepEqual([again?.canceled, again?.task.state], [false, 'canceled']);
    assert.equal(await tasks.cancel('t', 'kie-no-such-task'), undefined);
  });

  test('deleted while it is being made (OpenAI DELETE): canceled, its job stopped, then the task and its files are gone', async () => {
    const task = await create();
    const running = await generating(task.id);
    assert.equal(await tasks.remove((await get(task.id)) as Task, { cancel: true }), true);
    await waitFor(async () => ((await get(task.id)) === undefined ? true : undefined), 10_000, 10);
    assert.ok(stoppable.canceled.includes(running.upstreamId!));
    assert.deepEqual(await store.listAttempts(task.id), [], 'its records went with it');
  });
});
