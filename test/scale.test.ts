import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { probeMp4 } from '../src/media/mp4.js';
import { ResultFiles, VIDEO_FILE } from '../src/results/files.js';
import type { Task } from '../src/core/task.js';
import { S3ObjectStore } from '../src/storage/s3.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { pgControl, pgSkipReason, startCluster, stopCluster } from './pg.js';
import { startTestS3 } from './s3.js';
import { type ServerProcess, freePort, sleep, startCallbackReceiver, startServer, waitFor } from './server.js';
import { SIM_KEY, startTestSim } from './sim.js';
import { seeded } from './fixtures.js';
import { tmpDir } from './tmp.js';

const TASKS = 500;
const KEY = 'sk-scale-multi-process';
const PREFIX = 'scale/';
/** How many result objects are read back (through the API, from the bucket) at once. */
const CHECKS_AT_ONCE = 4;

/** Runs `fn` on every item, `n` at a time; rejects with the first failure once all have settled. */
async function eachAtMost<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await fn(item).catch((e: unknown) => errors.push(e));
      }
    }),
  );
  if (errors.length) throw errors[0];
}

/**
 * Many processes on one PostgreSQL database and one S3 bucket: one API process and two engine
 * processes (`reelay serve --role …`), sharing the database and the results
 * (`REELAY_STORAGE=s3://…` on an s3rver in this process), against a simulated reseller that fails
 * in every way it can, with a healthy kie simulator as the fallback route. 500 tasks come in
 * through the kie door with a callback each, while one engine is killed (SIGKILL) and started again
 * every few seconds, and PostgreSQL is restarted once. Then every task has ended the way it should,
 * every callback has arrived, and every video is an object in the bucket, is H.264, and is what
 * the URL in its callback serves (through the API process, whichever engine stored it).
 */
describe('scale-out: 1 API and 2 engine processes on PostgreSQL and S3, one engine killed again and again, PostgreSQL restarted', { skip: pgSkipReason() }, async () => {
  // Its own server, as the test restarts it (the run's is shared with other test files); each
  // commit is synchronous, so a restart loses nothing that was committed.
  const cluster = startCluster();
  after(() => stopCluster(cluster));
  const flaky = await startTestSim({
    durationMs: 300,
    hangMs: 1500,
    faults: { '5xx': 0.05, '429': 0.03, timeout: 0.02, malformed: 0.03, recaptcha: 0.04, fail: 0.06, safety: 0.03, stall: 0.03, lost: 0.04, 'poll-5xx': 0.1 },
    retryAfterSeconds: 0.2,
    random: seeded(20261202),
  });
  const healthy = await startTestSim({ durationMs: 300 });

  // The clients' callback receiver: every POST, by task id.
  const receiver = await startCallbackReceiver();
  after(() => receiver.close());
  const callbacks = receiver.byTask;
  const callbackUrl = receiver.url;

  const dir = tmpDir();
  const common = { apiKeyEnv: 'SIM_KEY', typicalSeconds: 0.2, pollMaxSeconds: 0.5, stallSeconds: 3, timeoutSeconds: 1, rateLimitBudgetSeconds: 1 };
  writeFileSync(join(dir, 'reelay.json'), JSON.stringify({
    providers: { flaky: { type: 'kkiai', baseUrl: flaky.url, ...common, maxInFlight: 40 }, healthy: { type: 'kie', baseUrl: healthy.url, ...common } },
    models: [{ match: 'veo3_fast', routes: [{ provider: 'flaky', model: 'veo3.1-fast' }, { provider: 'healthy' }] }],
  }));
  const s3 = await startTestS3('reelay-scale');
  const bucket = new S3ObjectStore({ bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, credentials: s3.credentials, region: s3.region });
  // (s3rver's stop closes the connections the processes still hold, whichever ends first.)
  after(async () => {
    await bucket.close();
    await s3.stop();
  });
  // The URLs in responses and callbacks are the API process's (as behind a load balancer): an
  // engine that stored a video may be dead by the time its URL is fetched.
  const apiPort = await freePort();
  const url = cluster.url;
  const env = {
    REELAY_DATABASE_URL: url,
    REELAY_DATA_DIR: dir,
    REELAY_PUBLIC_URL: `http://127.0.0.1:${apiPort}`,
    REELAY_STORAGE: `s3://${s3.bucket}/${PREFIX}`,
    REELAY_S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_REGION: s3.region,
    REELAY_API_KEYS: KEY,
    REELAY_CONFIG: join(dir, 'reelay.json'),
    SIM_KEY,
    REELAY_URL_ALLOWLIST: '127.0.0.1',
    REELAY_LEASE_MS: '3000',
    REELAY_ERROR_SLEEP_MS: '200',
    REELAY_MAX_RETRIES: '8',
    REELAY_CALLBACK_BACKOFF_MS: '200',
    REELAY_CALLBACK_MAX_ATTEMPTS: '20',
    REELAY_CALLBACK_TIMEOUT_MS: '2000',
    REELAY_DATABASE_TIMEOUT_MS: '5000',
  };
  const api = await startServer({ ...env, REELAY_ROLE: 'api' }, apiPort);
  after(() => api.stop());
  const engines: ServerProcess[] = [await startServer({ ...env, REELAY_ROLE: 'engine' }), await startServer({ ...env, REELAY_ROLE: 'engine' })];
  after(() => Promise.all(engines.map((e) => e.kill9())));
  const store = openPostgresStore(url, { max: 4 });
  after(() => store.close());

  test(`${TASKS} tasks: every task ends right, every callback arrives, every video is in the bucket, H.264, and served`, { timeout: 300_000 }, async () => {
    // This process runs the simulators, the callback receiver and s3rver: how late its event loop
    // runs says whether it holds the others back.
    const loop = monitorEventLoopDelay({ resolution: 20 });
    loop.enable();
    const began = Date.now();
    const cpuAtStart = process.cpuUsage();
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const ids: string[] = [];
    let kills = 0;
    let restartedDb = false;
    let stopChaos = false;
    // One engine dies with SIGKILL every 3 s and comes back; PostgreSQL restarts once, at 5 s.
    const chaos = (async () => {
      const started = Date.now();
      while (!stopChaos) {
        await sleep(3000);
        if (stopChaos) break;
        await engines[0]!.kill9();
        kills++;
        if (!restartedDb && Date.now() - started > 5000) {
          await pgControl('restart', 'fast', cluster);
          restartedDb = true;
        }
        engines[0] = await startServer({ ...env, REELAY_ROLE: 'engine' });
      }
    })();
    try {
      for (let i = 0; i < TASKS; i++) {
        // A create may meet the database restarting: the client tries again (the same task: the
        // answer before the error was not sent, so nothing was stored twice from the client's view).
        const body = JSON.stringify({ prompt: `scale task ${i}`, model: 'veo3_fast', callBackUrl: callbackUrl });
        const id = await waitFor(async () => {
          try {
            const res = await fetch(`${api.url}/api/v1/veo/generate`, { method: 'POST', headers, body });
            const json = (await res.json()) as { code: number; data?: { taskId: string } };
            return json.code === 200 ? json.data!.taskId : undefined;
          } catch {
            return undefined;
          }
        }, 30_000, 200);
        ids.push(id);
        if (i % 50 === 49) await sleep(500);
      }
      // The tenant of the configured key (made by the processes at start). The database may be
      // restarting right now (when the creates went fast).
      const tenant = await waitFor(async () => {
        try {
          return (await store.listKeys())[0]!.tenantId;
        } catch {
          return undefined;
        }
      }, 30_000, 200);
      let last: (Task | undefined)[] = [];
      const ended = await waitFor(async () => {
        try {
          last = await Promise.all(ids.map((id) => store.getTask(tenant, id)));
          return last.every((t) => t && (t.state === 'succeeded' || t.state === 'failed')) ? (last as Task[]) : undefined;
        } catch {
          return undefined; // the database is restarting
        }
      }, 240_000, 500).catch(async (e: Error) => {
        // What did not end, and what the processes said.
        const open = last.filter((t) => !t || (t.state !== 'succeeded' && t.state !== 'failed'));
        const states: Record<string, number> = {};
        for (const t of last) states[t?.state ?? 'missing'] = (states[t?.state ?? 'missing'] ?? 0) + 1;
        const sample = await Promise.all(open.slice(0, 3).map(async (t) => t && { ...t, attempts: await store.listAttempts(t.id) }));
        const tail = (p: ServerProcess) => p.output().split('\n').slice(-15).join('\n');
        throw new Error(`${e.message}: ${JSON.stringify(states)}\n${JSON.stringify(sample, null, 1).slice(0, 4000)}\napi:\n${tail(api)}\nengine 1:\n${tail(engines[1]!)}`);
      });

      // Jobs the simulators accepted, by prompt.
      const jobs = new Map<string, { flaky: number; healthy: number }>();
      for (const [side, sim] of [['flaky', flaky], ['healthy', healthy]] as const) {
        for (const job of sim.jobs.all()) {
          const n = jobs.get(job.prompt) ?? { flaky: 0, healthy: 0 };
          n[side]++;
          jobs.set(job.prompt, n);
        }
      }
      const endedMs = Date.now() - began;
      const cpuWhileRunning = process.cpuUsage(cpuAtStart);
      const files = new ResultFiles(tmpDir(), api.url, { objects: bucket });
      const figures = { succeeded: 0, safety: 0, onFallback: 0, unrecorded: 0, interrupted: 0, duplicateCallbacks: 0 };
      const videos: { task: Task; url: string }[] = [];
      for (const t of ended) {
        const attempts = await store.listAttempts(t.id);
        const submitted = attempts.filter((a) => a.outcome === 'submitted');
        const accepted = jobs.get(t.spec.prompt) ?? { flaky: 0, healthy: 0 };
        // Every submission Reelay recorded is a job the upstream accepted, none twice. A job can be
        // accepted and its engine killed before the commit: its id was never known (the kkiai and
        // kie APIs take no idempotency key), and the task is submitted again. The claim that takes
        // the task over records that submit as `interrupted`: every job the upstream accepted has
        // a record, with its id or as one of those (which also stand for submits killed before the
        // upstream saw them).
        for (const side of ['flaky', 'healthy'] as const) {
          const recorded = submitted.filter((a) => a.provider === side).length;
          const interrupted = attempts.filter((a) => a.outcome === 'interrupted' && a.provider === side).length;
          const what = `${t.id}: ${recorded} recorded submissions and ${interrupted} interrupted to ${side}, ${accepted[side]} jobs: ${JSON.stringify(attempts.map((a) => [a.n, a.provider, a.outcome, a.upstreamId]))}`;
          assert.ok(recorded <= accepted[side], what);
          assert.ok(accepted[side] <= recorded + interrupted, `a job without a record: ${what}`);
          figures.unrecorded += accepted[side] - recorded;
          figures.interrupted += interrupted;
        }
        assert.equal(new Set(submitted.map((a) => a.upstreamId)).size, submitted.length, `${t.id}: an upstream id submitted twice`);
        if (t.state === 'failed') {
          assert.equal(t.lastErrorKind, 'content_policy', `${t.id} failed: ${t.lastError}`);
          figures.safety++;
        } else {
          figures.succeeded++;
          if (t.fallback) figures.onFallback++;
          const artifacts = await store.listArtifacts(t.id);
          assert.deepEqual(artifacts.map((a) => [a.kind, a.path]), [['video', files.key(t, VIDEO_FILE)]], `${t.id}: its video's artifact names the object key`);
        }
        // Its callback arrived (at least once: a delivery whose engine died before recording it is
        // sent again), and every copy is the same body.
        const got = callbacks.get(t.id) ?? [];
        assert.ok(got.length >= 1, `${t.id}: no callback`);
        assert.equal(new Set(got).size, 1, `${t.id}: callbacks differ`);
        figures.duplicateCallbacks += got.length - 1;
        if (t.state === 'succeeded') {
          const info = (JSON.parse(got[0]!) as { data?: { info?: { resultUrls?: string[] } } }).data?.info;
          const resultUrl = info?.resultUrls?.[0];
          assert.equal(resultUrl, files.url(t, VIDEO_FILE), `${t.id}: the callback names the video at the API process`);
          videos.push({ task: t, url: resultUrl! });
        }
      }

      // Every video is read back from the bucket through the URL its callback gave (the API
      // process reads it from the bucket: the data folder holds no results): it is the object the
      // bucket holds (an S3 ETag of a single-part upload is the MD5 of its bytes) and it is H.264.
      // One read of each (s3rver, in this process, spends about 5 ms of CPU on each read).
      assert.equal(existsSync(join(dir, 'results')), false, 'no results folder: the results are in the bucket');
      const checked = Date.now();
      const copies = tmpDir();
      await eachAtMost(videos, CHECKS_AT_ONCE, async ({ task, url: resultUrl }) => {
        const [res, object] = await Promise.all([fetch(resultUrl), bucket.head(files.key(task, VIDEO_FILE))]);
        assert.equal(res.status, 200, `${task.id}: ${resultUrl} answers`);
        const bytes = Buffer.from(await res.arrayBuffer());
        assert.ok(object, `${task.id}: its video is in the bucket`);
        assert.equal(`"${createHash('md5').update(bytes).digest('hex')}"`, object.etag, `${task.id}: ${resultUrl} serves the bucket's object`);
        const copy = join(copies, `${task.fileToken}.mp4`);
        writeFileSync(copy, bytes);
        try {
          assert.equal(probeMp4(copy)?.video?.codec, 'h264', `${task.id}: H.264`);
        } finally {
          rmSync(copy, { force: true });
        }
      });
      const checkMs = Date.now() - checked;
      const cpuWhileChecking = process.cpuUsage(cpuAtStart);
      assert.equal(figures.succeeded + figures.safety, TASKS);
      assert.ok(kills >= 3 && restartedDb, `the chaos ran: ${kills} kills, database restarted: ${restartedDb}`);
      // Without kills no job would be unrecorded; with them, at most the jobs being submitted at
      // each kill (bounded by the flaky route's maxInFlight).
      assert.ok(figures.unrecorded <= kills * 40, JSON.stringify(figures));
      console.log(`scale-out figures: ${JSON.stringify({ ...figures, kills, tasks: TASKS })}`);
      loop.disable();
      const ms = (ns: number) => Math.round(ns / 1e6);
      const cpuMs = (u: NodeJS.CpuUsage) => Math.round((u.user + u.system) / 1000);
      console.log(
        `scale-out timing: ${JSON.stringify({ allEndedMs: endedMs, objectsChecked: videos.length, checkMs, testProcessCpuMs: { running: cpuMs(cpuWhileRunning), checking: cpuMs(cpuWhileChecking) - cpuMs(cpuWhileRunning) }, testProcessLoopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) } })}`,
      );
    } finally {
      stopChaos = true;
      await chaos;
    }
  });
});
