import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { Previews } from '../src/app/previews.js';
import { TaskService } from '../src/app/tasks.js';
import { KeyCache } from '../src/auth/cache.js';
import { hashKey } from '../src/auth/keys.js';
import { loadConfig } from '../src/config.js';
import type { Task, TaskSpec } from '../src/core/task.js';
import { DIALECTS } from '../src/dialects/index.js';
import { WebhookService } from '../src/app/webhooks.js';
import { kieTaskId } from '../src/dialects/kie/ids.js';
import { Engine } from '../src/engine/engine.js';
import { buildServer } from '../src/http/server.js';
import { run } from '../src/media/ffmpeg.js';
import { probe } from '../src/media/probe.js';
import { GuardedFetcher } from '../src/net/fetch.js';
import { UrlGuard } from '../src/net/guard.js';
import type { PollOutcome, Provider, SubmitRequest } from '../src/providers/port.js';
import { HD_FILE, ResultFiles, VIDEO_FILE, inputFileName } from '../src/results/files.js';
import { parseRouting } from '../src/routing/config.js';
import { Router } from '../src/routing/router.js';
import { S3ObjectStore } from '../src/storage/s3.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { binaries, makePng, videoShape } from './media.js';
import { type TestS3, startTestS3 } from './s3.js';
import { sleep, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-s3-outage';
/** How long the bucket's server is down. */
const OUTAGE_MS = 10_000;

/**
 * An upstream whose jobs finish at once with the sample video; it records the inputs it was given,
 * when each job was first seen finished, and how often each video was downloaded.
 */
class SampleProvider implements Provider {
  readonly name = 'a';
  readonly inputs = new Map<string, Buffer[]>();
  /** By task id: when its job was first polled (it is finished from the start). */
  readonly finishedAt = new Map<string, number>();
  /** By task id: how many times its video was downloaded. */
  readonly downloads = new Map<string, number>();
  private readonly taskOf = new Map<string, string>();
  constructor(private readonly sample: string) {}
  async submit(req: SubmitRequest) {
    // The input images are local files when the provider is called: copies of the stored objects.
    this.inputs.set(req.task.id, req.inputs.map((i) => readFileSync(i.path)));
    const upstreamId = `a-${req.submissionId}`;
    this.taskOf.set(upstreamId, req.task.id);
    return { upstreamId };
  }
  async poll(upstreamId: string): Promise<PollOutcome> {
    const task = this.taskOf.get(upstreamId) ?? upstreamId;
    if (!this.finishedAt.has(task)) this.finishedAt.set(task, Date.now());
    return { status: 'succeeded' };
  }
  async fetchResult(upstreamId: string, dest: string) {
    const task = this.taskOf.get(upstreamId) ?? upstreamId;
    this.downloads.set(task, (this.downloads.get(task) ?? 0) + 1);
    copyFileSync(this.sample, `${dest}.tmp`);
    renameSync(`${dest}.tmp`, dest);
  }
}

/**
 * "S3 is unreachable for 10 s: downloads retry and nothing is lost." The bucket's server is
 * stopped before the tasks are created and started again, on the same port and folder, 10 s later
 * (about 50 tries of each step, at the 200 ms error sleep). The upstream's jobs finish at once, so
 * every job that was submitted finished during the outage, and its video could not be stored.
 * Every step that stores or reads a result waits for the storage without spending a retry (the
 * tasks allow one), so every task succeeds afterwards, with all its objects, and the result URLs
 * the API gives serve them.
 */
test('the engine waits 10 s for an unreachable object store: every finished job is stored and served after it, no retry spent', async () => {
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
  // The HTTP side on the same store and bucket, as a client reads the results (in process).
  await store.insertKey({ id: 'k', tenantId: 't', hash: hashKey(KEY), prefix: KEY.slice(0, 10), name: '', source: 'cli', createdAt: 0, revokedAt: null });
  const config = loadConfig({ REELAY_DATA_DIR: dir, REELAY_PUBLIC_URL: 'http://reelay.test' });
  const app = await buildServer({ config, store, keys: new KeyCache(store), files, tasks, previews: new Previews(files, binaries), webhooks: new WebhookService(store, new UrlGuard([])), log: pino({ level: 'silent' }) }, DIALECTS);
  after(async () => {
    await app.close();
    await engine.stop();
    await store.close();
    await objects.close();
    await s3.stop();
  });
  await engine.start();

  const create = (prompt: string, spec: Partial<TaskSpec> = {}) =>
    tasks.create({ id: kieTaskId(), tenantId: 't', dialect: 'kie', model: 'veo3_fast', spec: { prompt, images: [], mode: 'text', aspectRatio: '16:9', resolution: '720p', upsample: false, seed: 1, durationSeconds: 8, enhancePrompt: false, ...spec }, request: { prompt } });
  await s3.stop();
  const down = Date.now();
  const made = [
    await create('plain'),
    await create('upsampled', { upsample: true, resolution: '1080p' }),
    await create('from an image', { images: [`data:image/png;base64,${png.toString('base64')}`], mode: 'frames' }),
    ...(await Promise.all([1, 2, 3].map((i) => create(`plain ${i}`)))),
  ];
  const states = async () => Promise.all(made.map((t) => store.getTask('t', t.id)));
  // While the storage is down the tasks wait, each in the step that needs it, and none fails.
  const waiting = await waitFor(async () => {
    const now = await states();
    return now.every((t) => t?.lastError?.startsWith('result storage unavailable')) ? (now as Task[]) : undefined;
  }, OUTAGE_MS, 50);
  assert.deepEqual(waiting.map((t) => t.state), ['generating', 'generating', 'fetching', 'generating', 'generating', 'generating'], 'the downloads and the image wait');
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
  const during = await states();
  assert.ok(during.every((t) => t && t.state !== 'failed' && t.state !== 'succeeded' && t.retryCount === 0), JSON.stringify(during.map((t) => [t?.state, t?.retryCount, t?.lastError])));

  s3 = await startTestS3('outage', { port, directory: s3.directory });
  const up = Date.now();
  // The jobs whose videos could not be stored: every one that was submitted (the image task's was
  // not: its input could not be stored). Each finished during the outage, and its video was
  // downloaded again at each try while it lasted.
  const finishedDuring = made.filter((t) => t.spec.mode !== 'frames');
  for (const t of finishedDuring) {
    const at = provider.finishedAt.get(t.id);
    assert.ok(at !== undefined && at >= down && at < up, `${t.spec.prompt}: its job finished during the outage (${at === undefined ? 'never' : `${at - down} ms in`})`);
    assert.ok((provider.downloads.get(t.id) ?? 0) >= 5, `${t.spec.prompt}: its video was downloaded again while the storage was down (${provider.downloads.get(t.id)} times)`);
  }
  assert.equal(provider.finishedAt.has(made[2]!.id), false, 'the image task was not submitted during the outage');

  const ended = await waitFor(async () => {
    const now = await states();
    return now.every((t) => t?.state === 'succeeded' || t?.state === 'failed') ? (now as Task[]) : undefined;
  }, 60_000, 50);
  console.log(`s3 outage: ${JSON.stringify({ outageMs: up - down, allEndedAfterMs: Date.now() - up, downloads: made.map((t) => provider.downloads.get(t.id) ?? 0) })}`);
  for (const t of ended) {
    assert.equal(t.state, 'succeeded', `${t.spec.prompt}: ${t.lastError}`);
    assert.equal(t.retryCount, 0, 'waiting for the storage spends no retry');
    assert.match(t.lastError ?? '', /^result storage unavailable: /, 'it went through the outage');
    const attempts = await store.listAttempts(t.id);
    assert.deepEqual(attempts.map((a) => a.outcome), ['submitted', 'succeeded'], `${t.spec.prompt}: one job, no retry logged`);
    assert.ok(await objects.head(files.key(t, VIDEO_FILE)), `${t.spec.prompt}: its video is stored`);
  }
  const [, upsampled, fromImage] = ended as [Task, Task, Task];
  assert.equal((await objects.head(files.key(upsampled, HD_FILE)))?.contentType, 'video/mp4');
  assert.ok(await objects.head(files.key(fromImage, inputFileName(0, 'png'))));
  assert.deepEqual(provider.inputs.get(fromImage.id), [png], 'the provider got the stored image');
  const artifacts = await store.listArtifacts(upsampled.id);
  assert.deepEqual(artifacts.map((a) => [a.kind, a.path]).sort(), [['video', files.key(upsampled, VIDEO_FILE)], ['video_hd', files.key(upsampled, HD_FILE)]], 'artifact paths are object keys');

  // What a client sees: record-info says success, and the result URL serves the bucket's object,
  // an H.264 video of the size asked for.
  for (const t of ended) {
    const info = await app.inject({ url: `/api/v1/veo/record-info?taskId=${t.id}`, headers: { authorization: `Bearer ${KEY}` } });
    const rec = info.json() as { code: number; data: { successFlag: number; response: { resultUrls: string[] } } };
    assert.equal(rec.data?.successFlag, 1, `${t.spec.prompt}: ${info.body}`);
    const resultUrl = rec.data.response.resultUrls[0]!;
    const name = t.spec.upsample ? HD_FILE : VIDEO_FILE;
    assert.equal(resultUrl, files.url(t, name));
    const served = await app.inject({ url: new URL(resultUrl).pathname });
    assert.equal(served.statusCode, 200, `${t.spec.prompt}: ${resultUrl}`);
    const obj = await objects.read(files.key(t, name));
    assert.ok(obj, `${t.spec.prompt}: ${name} is in the bucket`);
    assert.ok(served.rawPayload.equals(await buffer(obj.body)), `${t.spec.prompt}: ${resultUrl} serves the bucket's object`);
    const file = join(dir, `served-${t.id.replace(/\W/g, '_')}.mp4`);
    writeFileSync(file, served.rawPayload);
    assert.deepEqual(videoShape(await probe(binaries.ffprobe, file)), { codec: 'h264', size: t.spec.upsample ? '1920x1080' : '320x180', seconds: 1 }, `${t.spec.prompt}: ${resultUrl}`);
  }
});
