import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { TaskService } from '../src/app/tasks.js';
import type { Task, TaskSpec } from '../src/core/task.js';
import { kieTaskId } from '../src/dialects/kie/ids.js';
import { Engine } from '../src/engine/engine.js';
import { run } from '../src/media/ffmpeg.js';
import { GuardedFetcher } from '../src/net/fetch.js';
import { UrlGuard } from '../src/net/guard.js';
import type { PollOutcome, Provider, SubmitRequest } from '../src/providers/port.js';
import { HD_FILE, ResultFiles, VIDEO_FILE, inputFileName } from '../src/results/files.js';
import { parseRouting } from '../src/routing/config.js';
import { Router } from '../src/routing/router.js';
import { S3ObjectStore } from '../src/storage/s3.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { binaries, makePng } from './media.js';
import { type TestS3, startTestS3 } from './s3.js';
import { sleep, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

/** An upstream whose jobs finish at once with the sample video; it records the inputs it was given. */
class SampleProvider implements Provider {
  readonly name = 'a';
  readonly inputs = new Map<string, Buffer[]>();
  constructor(private readonly sample: string) {}
  async submit(req: SubmitRequest) {
    // The input images are local files when the provider is called: copies of the stored objects.
    this.inputs.set(req.task.id, req.inputs.map((i) => readFileSync(i.path)));
    return { upstreamId: `a-${req.submissionId}` };
  }
  async poll(): Promise<PollOutcome> {
    return { status: 'succeeded' };
  }
  async fetchResult(_id: string, dest: string) {
    copyFileSync(this.sample, `${dest}.tmp`);
    renameSync(`${dest}.tmp`, dest);
  }
}

/**
 * "S3 is unreachable for a while: downloads retry and nothing is lost." The bucket's server is
 * stopped before the tasks are created and started again, on the same port and folder, 3 s later
 * (about 15 tries of each step at the 200 ms error sleep). Every step that stores or reads a
 * result waits for the storage without spending a retry (the tasks allow one), so every task
 * succeeds with all its objects.
 */
test('the engine waits for an unreachable object store, and nothing is lost', async () => {
  const dir = tmpDir();
  let s3: TestS3 = await startTestS3('outage');
  const port = Number(new URL(s3.endpoint).port);
  const objects = new S3ObjectStore({ bucket: s3.bucket, endpoint: s3.endpoint, credentials: s3.credentials, region: s3.region, maxAttempts: 1, connectionTimeoutMs: 1000, requestTimeoutMs: 5000 });
  const store = openSqliteStore(join(dir, 'e.sqlite'));
  const sample = join(dir, 'sample.mp4');
  await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=320x180:d=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', sample]);
  const png = readFileSync(await makePng(dir, 'in.png', 64, 36));
  const provider = new SampleProvider(sample);
  const routing = parseRouting({ providers: { a: { type: 'kkiai', baseUrl: 'http://a.test', apiKeyEnv: 'A_KEY', typicalSeconds: 0 } }, models: [{ match: '*', routes: [{ provider: 'a' }] }] }, { A_KEY: 'x' });
  const files = new ResultFiles(dir, 'http://reelay.test', { objects });
  const engine = new Engine(
    { store, router: new Router(routing, new Map<string, Provider>([['a', provider]])), files, fetcher: new GuardedFetcher(new UrlGuard([])), binaries, imageMaxBytes: 1 << 20, notify: () => [], log: pino({ level: 'silent' }), minPollMs: 10 },
    { leaseMs: 2000, tickMs: 10 },
  );
  const tasks = new TaskService(store, new UrlGuard([]), { taskDeadlineMs: 60_000, errorSleepMs: 200, maxRetries: 1 }, files);
  tasks.wakeEngine = () => engine.wake();
  after(async () => {
    await engine.stop();
    await store.close();
    await objects.close();
    await s3.stop();
  });
  await engine.start();

  const create = (prompt: string, spec: Partial<TaskSpec> = {}) =>
    tasks.create({ id: kieTaskId(), tenantId: 't', dialect: 'kie', model: 'veo3_fast', spec: { prompt, images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 1, durationSeconds: 8, enhancePrompt: false, ...spec }, request: { prompt } });

  await s3.stop();
  const started = Date.now();
  const made = [
    await create('plain'),
    await create('upsampled', { upsample: true, resolution: '1080p' }),
    await create('from an image', { images: [`data:image/png;base64,${png.toString('base64')}`], mode: 'frames' }),
  ];
  // While the storage is down the tasks wait, each in the step that needs it, and none fails.
  const waiting = await waitFor(async () => {
    const now = await Promise.all(made.map((t) => store.getTask('t', t.id)));
    return now.every((t) => t?.lastError?.startsWith('result storage unavailable')) ? (now as Task[]) : undefined;
  }, 10_000, 50);
  assert.deepEqual(waiting.map((t) => t.state), ['generating', 'generating', 'fetching'], 'the downloads and the image wait');
  await sleep(Math.max(0, 3000 - (Date.now() - started)));
  const during = await Promise.all(made.map((t) => store.getTask('t', t.id)));
  assert.ok(during.every((t) => t && t.state !== 'failed' && t.state !== 'succeeded'), JSON.stringify(during.map((t) => [t?.state, t?.lastError])));

  s3 = await startTestS3('outage', { port, directory: s3.directory });
  const ended = await waitFor(async () => {
    const now = await Promise.all(made.map((t) => store.getTask('t', t.id)));
    return now.every((t) => t?.state === 'succeeded' || t?.state === 'failed') ? (now as Task[]) : undefined;
  }, 30_000, 50);
  for (const t of ended) {
    assert.equal(t.state, 'succeeded', `${t.spec.prompt}: ${t.lastError}`);
    assert.equal(t.retryCount, 0, 'waiting for the storage spends no retry');
    assert.match(t.lastError ?? '', /^result storage unavailable: /, 'it went through the outage');
    assert.ok(await objects.head(files.key(t, VIDEO_FILE)), `${t.spec.prompt}: its video is stored`);
  }
  const [, upsampled, fromImage] = ended as [Task, Task, Task];
  assert.equal((await objects.head(files.key(upsampled, HD_FILE)))?.contentType, 'video/mp4');
  assert.ok(await objects.head(files.key(fromImage, inputFileName(0, 'png'))));
  assert.deepEqual(provider.inputs.get(fromImage.id), [png], 'the provider got the stored image');
  const artifacts = await store.listArtifacts(upsampled.id);
  assert.deepEqual(artifacts.map((a) => [a.kind, a.path]).sort(), [['video', files.key(upsampled, VIDEO_FILE)], ['video_hd', files.key(upsampled, HD_FILE)]], 'artifact paths are object keys');
});
