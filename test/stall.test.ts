import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { TaskService } from '../src/app/tasks.js';
import { kieTaskId } from '../src/dialects/kie/ids.js';
import { Engine } from '../src/engine/engine.js';
import { GuardedFetcher } from '../src/net/fetch.js';
import { UrlGuard } from '../src/net/guard.js';
import { KieProvider } from '../src/providers/kie/index.js';
import { KkiaiProvider } from '../src/providers/kkiai/index.js';
import type { Provider } from '../src/providers/port.js';
import { ResultFiles } from '../src/results/files.js';
import { parseRouting } from '../src/routing/config.js';
import { Router } from '../src/routing/router.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { binaries } from './media.js';
import { SIM_KEY, startTestSim } from './sim.js';
import { waitFor } from './server.js';
import { tmpDir } from './tmp.js';

/**
 * Jobs that finish near their provider's stall time (`stallSeconds` 2 here), against simulated
 * upstreams. kie has no cancel, so a job given up there keeps running and may still finish.
 * - One that finishes within the time (1.8 s) is kept, though the poll before the deadline (at
 *   about 1.5 s) said "running": the engine polls it once more at the deadline.
 * - One that finishes after it (4 s) is given up at the deadline. With a fallback route, the
 *   task moves there; with kie alone, the next round polls the given-up job before submitting
 *   again, finds it finished, and takes it back: one job, one charge.
 */
describe('jobs that finish just before and just after the stall time', async () => {
  const kie = await startTestSim({ durationMs: 300 });
  const backup = await startTestSim({ durationMs: 300 });
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 'stall.sqlite'));
  // The backup route waits longer (10 s) for its jobs, which take as long as kie's.
  // Polled first at 0.5 s, then a second or more apart (a fifth of the age, at least 1 s), so the
  // poll before the 2 s deadline comes at about 1.5 s and the next one would come at 2.5 s.
  const common = { apiKeyEnv: 'SIM_KEY', typicalSeconds: 0.5, pollMaxSeconds: 5, stallSeconds: 2, timeoutSeconds: 2 };
  const routing = parseRouting({
    providers: { kie: { type: 'kie', baseUrl: kie.url, ...common }, backup: { type: 'kkiai', baseUrl: backup.url, ...common, stallSeconds: 10 } },
    models: [
      { match: 'veo3_fast', routes: [{ provider: 'kie' }, { provider: 'backup', model: 'veo3.1-fast' }] },
      { match: 'veo3', routes: [{ provider: 'kie' }] },
    ],
  }, { SIM_KEY });
  const guard = new UrlGuard([]);
  const providers = new Map<string, Provider>([
    ['kie', new KieProvider(routing.providers.get('kie')!, { guard, maxResultBytes: 1 << 30 })],
    ['backup', new KkiaiProvider(routing.providers.get('backup')!, { guard, maxResultBytes: 1 << 30 })],
  ]);
  const fetcher = new GuardedFetcher(guard);
  const engine = new Engine(
    { store, router: new Router(routing, providers), files: new ResultFiles(dir, 'http://reelay.test'), fetcher, binaries, imageMaxBytes: 1 << 20, notify: () => [], log: pino({ level: 'silent' }), minPollMs: 1000 },
    { leaseMs: 10_000, tickMs: 20 },
  );
  // A second round waits 3 s (error_sleep): the given-up 4 s job has finished by then.
  const tasks = new TaskService(store, guard, { taskDeadlineMs: 60_000, errorSleepMs: 3000, maxRetries: 3 });
  tasks.wakeEngine = () => engine.wake();
  await engine.start();
  after(async () => {
    await engine.stop();
    await Promise.all([...providers.values()].map((p) => p.close?.()));
    await fetcher.close();
    await store.close();
  });

  const run = async (model: string, prompt: string) => {
    const t = await tasks.create({
      id: kieTaskId(),
      tenantId: 't',
      dialect: 'kie',
      model,
      spec: { prompt, images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 1, durationSeconds: 8, enhancePrompt: false },
      request: { prompt },
    });
    const done = await waitFor(async () => {
      const now = await store.getTask('t', t.id);
      return now && (now.state === 'succeeded' || now.state === 'failed') ? now : undefined;
    }, 30_000, 50);
    const attempts = (await store.listAttempts(t.id)).map((a) => `${a.provider}:${a.outcome}`);
    const jobs = (sim: typeof kie) => [...sim.jobs.all()].filter((j) => j.prompt === prompt).length;
    return { done, attempts, kieJobs: jobs(kie), backupJobs: jobs(backup) };
  };

  test('a job that finishes within the stall time is kept (no fallback, one job)', { timeout: 60_000 }, async () => {
    const r = await run('veo3_fast', 'done at 1.8 s [sim:takes=1800]');
    assert.equal(r.done.state, 'succeeded', r.done.lastError ?? '');
    assert.deepEqual([r.done.provider, r.done.fallback], ['kie', false], r.attempts.join(' '));
    assert.deepEqual([r.kieJobs, r.backupJobs], [1, 0], 'one job, on kie');
    assert.deepEqual(r.attempts, ['kie:submitted', 'kie:succeeded']);
  });

  test('a job that finishes after it is given up, and the task moves to the next route', { timeout: 60_000 }, async () => {
    const r = await run('veo3_fast', 'done at 4 s, with a fallback [sim:takes=4000]');
    assert.equal(r.done.state, 'succeeded', r.done.lastError ?? '');
    assert.deepEqual([r.done.provider, r.done.fallback], ['backup', true], r.attempts.join(' ') + ' ' + r.done.lastError);
    assert.deepEqual(r.attempts, ['kie:submitted', 'kie:abandoned', 'backup:submitted', 'backup:succeeded']);
    assert.deepEqual([r.kieJobs, r.backupJobs], [1, 1]);
  });

  test('back on a route that cannot cancel, the given-up job is polled first and taken back: no second charge', { timeout: 60_000 }, async () => {
    const r = await run('veo3', 'done at 4 s, kie alone [sim:takes=4000]');
    assert.equal(r.done.state, 'succeeded', r.done.lastError ?? '');
    assert.deepEqual(r.attempts, ['kie:submitted', 'kie:abandoned', 'kie:resumed', 'kie:succeeded']);
    assert.equal(r.kieJobs, 1, 'kie was not asked to make the video a second time');
    assert.deepEqual([r.done.provider, r.done.fallback, r.done.attemptCount], ['kie', false, 1]);
  });
});
