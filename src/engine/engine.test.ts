import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { binaries } from '../../test/media.js';
import { waitFor } from '../../test/server.js';
import { tmpDir } from '../../test/tmp.js';
import { TaskService } from '../app/tasks.js';
import { kieTaskId } from '../core/ids.js';
import type { Task } from '../core/task.js';
import { run } from '../media/ffmpeg.js';
import { GuardedFetcher } from '../net/fetch.js';
import { UrlGuard } from '../net/guard.js';
import { type PollOutcome, type Provider, PermanentError, RateLimitedError, SafetyRejectedError, type SubmitRequest, TransientError } from '../providers/port.js';
import { ResultFiles } from '../results/files.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { Engine } from './engine.js';

type Script = { submit?: (Error | null)[]; poll?: (PollOutcome | Error)[] };

/** A provider that follows a script per task: each submit and poll takes the script's next entry. */
class ScriptedProvider implements Provider {
  readonly name = 'scripted';
  readonly scripts = new Map<string, Script>();
  constructor(private readonly sample: string) {}
  async submit(req: SubmitRequest) {
    const err = this.scripts.get(req.task.id)?.submit?.shift();
    if (err) throw err;
    return { upstreamId: `up-${req.submissionId}` };
  }
  async poll(upstreamId: string): Promise<PollOutcome> {
    const taskId = upstreamId.slice('up-'.length).split('#')[0]!;
    const next = this.scripts.get(taskId)?.poll?.shift();
    if (next instanceof Error) throw next;
    return next ?? { status: 'succeeded' };
  }
  async fetchResult(_id: string, dest: string) {
    copyFileSync(this.sample, dest + '.tmp');
    renameSync(dest + '.tmp', dest);
  }
}

describe('engine with a scripted provider', () => {
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 'e.sqlite'));
  const sample = join(dir, 'sample.mp4');
  let provider: ScriptedProvider;
  let engine: Engine;
  let tasks: TaskService;

  before(async () => {
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=320x180:d=1', '-f', 'lavfi', '-i', 'sine=d=1', '-c:v', 'libx264', '-c:a', 'aac', '-shortest', sample]);
    provider = new ScriptedProvider(sample);
    const fetcher = new GuardedFetcher(new UrlGuard([]));
    const files = new ResultFiles(dir, 'http://reelay.test');
    engine = new Engine(
      {
        store,
        provider: () => provider,
        files,
        fetcher,
        binaries,
        imageMaxBytes: 1 << 20,
        notify: (t) => [{ taskId: t.id, url: 'http://cb.test/x', body: JSON.stringify({ state: t.state }), createdAt: Date.now() }],
        log: pino({ level: 'silent' }),
        defaultPollMs: 10,
      },
      { leaseMs: 2000, tickMs: 10 },
    );
    tasks = new TaskService(store, new UrlGuard([]), { taskDeadlineMs: 60_000, errorSleepMs: 20, maxRetries: 2 });
    tasks.wakeEngine = () => engine.wake();
    engine.start();
  });
  after(async () => {
    await engine.stop();
    await store.close();
  });

  async function create(prompt: string, script: Script, deadlineMs?: number): Promise<Task> {
    const svc = deadlineMs ? new TaskService(store, new UrlGuard([]), { taskDeadlineMs: deadlineMs, errorSleepMs: 20, maxRetries: 2 }) : tasks;
    svc.wakeEngine = () => engine.wake();
    const id = kieTaskId();
    provider.scripts.set(id, script);
    return svc.create({
      id,
      tenantId: 't',
      dialect: 'kie',
      model: 'veo3_fast',
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
    assert.deepEqual(submitted, [`up-${t.id}#1`, `up-${t.id}#2`]);
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
});
