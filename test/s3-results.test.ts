import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buffer } from 'node:stream/consumers';
import { pino } from 'pino';
import { fileToken } from '../src/core/ids.js';
import { sweep } from '../src/engine/sweeper.js';
import { HD_FILE, ResultFiles, THUMBNAIL_WEBP, VIDEO_FILE, inputFileName } from '../src/results/files.js';
import { S3ObjectStore } from '../src/storage/s3.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { makeTask } from './fixtures.js';
import { downloadAndProbe, videoShape } from './media.js';
import { type TestS3, startTestS3 } from './s3.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-s3-results-one';
const PREFIX = 'some/prefix/';

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), base) : [join(dir, e.name).slice(base.length + 1)]));
}

/**
 * Results on S3 (`REELAY_STORAGE=s3://…`), end to end: a real `reelay serve` process with the local
 * renderer against an in-process s3rver. Videos, renditions and stills are objects in the bucket,
 * served by Reelay (proxy: Range, ETag, 304) or by S3 through a presigned redirect, and nothing
 * of them stays in the local data folder.
 */
describe('results on S3 (real process, s3rver)', () => {
  let s3: TestS3;
  let bucket: S3ObjectStore;
  let srv: ServerProcess | undefined;
  let work: string;

  const env = (extra: Record<string, string> = {}) => ({
    REELAY_DATA_DIR: work,
    REELAY_API_KEYS: KEY,
    REELAY_STORAGE: `s3://${s3.bucket}/${PREFIX}`,
    REELAY_S3_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_REGION: s3.region,
    REELAY_RENDER_CONCURRENCY: '2',
    REELAY_ERROR_SLEEP_MS: '200',
    ...extra,
  });

  before(async () => {
    s3 = await startTestS3('reelay-results');
    bucket = new S3ObjectStore({ bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, credentials: s3.credentials, region: s3.region });
    work = tmpDir();
    srv = await startServer(env());
  });
  after(async () => {
    // Whatever happened: the child first (it holds connections to s3rver), then s3rver.
    await srv?.stop();
    await bucket?.close();
    await s3?.stop();
  });

  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const call = async (path: string, body?: unknown) => {
    const res = await fetch(`${srv!.url}${path}`, body ? { method: 'POST', headers, body: JSON.stringify(body) } : { headers });
    return (await res.json()) as any;
  };
  /** An object of the bucket (under the prefix), whole. */
  const bytesOf = async (key: string) => {
    const obj = await bucket.read(key);
    assert.ok(obj, `${key} is an object in the bucket`);
    return buffer(obj.body);
  };
  /** The object behind a result URL, read from the bucket. */
  const objectOf = async (url: string) => {
    const [, , token, name] = new URL(url).pathname.split('/');
    return bytesOf(`${token!.slice(0, 2)}/${token}-${name}`);
  };

  let videoUrl = '';
  let videoBytes = Buffer.alloc(0);

  test('kie: the video and its 1080p and 4k renditions are objects in the bucket, served with Range, ETag and 304', async () => {
    const ready = await fetch(`${srv!.url}/readyz`);
    const readiness = (await ready.json()) as any;
    assert.equal(ready.status, 200, JSON.stringify(readiness));
    assert.equal(readiness.storage.ok, true);

    const created = await call('/api/v1/veo/generate', { prompt: 'A paper boat on a pond', duration: 4, seeds: 24680 });
    assert.equal(created.code, 200, JSON.stringify(created));
    const rec = await waitFor(async () => {
      const r = await call(`/api/v1/veo/record-info?taskId=${created.data.taskId}`);
      return r.data?.successFlag !== 0 ? r.data : undefined;
    }, 180_000, 100);
    assert.equal(rec.successFlag, 1, JSON.stringify(rec));
    videoUrl = rec.response.resultUrls[0];
    const mp4 = await downloadAndProbe(videoUrl, work, 'kie.mp4');
    assert.deepEqual(videoShape(mp4), { codec: 'h264', size: '1280x720', seconds: 4 });
    videoBytes = await objectOf(videoUrl);
    assert.ok(videoBytes.equals(mp4.bytes), 'Reelay serves exactly the object in the bucket');

    const range = await fetch(videoUrl, { headers: { range: 'bytes=100-199' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), `bytes 100-199/${videoBytes.length}`);
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), videoBytes.subarray(100, 200));
    const whole = await fetch(videoUrl, { method: 'HEAD' });
    const etag = whole.headers.get('etag');
    assert.ok(etag, 'an ETag');
    assert.equal(whole.headers.get('cache-control'), 'public, max-age=86400, immutable');
    const again = await fetch(videoUrl, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(videoUrl.replace(VIDEO_FILE, HD_FILE))).status, 404, 'a file not stored is a 404');

    // The rendition is made from the object (copied into the work folder) and stored as one.
    const hd = await waitFor(async () => {
      const r = await call(`/api/v1/veo/get-1080p-video?taskId=${created.data.taskId}&index=0`);
      return r.code === 200 ? r.data : undefined;
    }, 180_000, 250);
    const hdMp4 = await downloadAndProbe(hd.resultUrl, work, 'kie-1080.mp4');
    assert.deepEqual(videoShape(hdMp4), { codec: 'h264', size: '1920x1080', seconds: 4 });
    assert.ok((await objectOf(hd.resultUrl)).equals(hdMp4.bytes));

    // 4k and its thumbnail: the thumbnail is made from the 4k file kept on this machine, then both
    // are objects; the copies go once the rendition is committed.
    const asked = await call('/api/v1/veo/get-4k-video', { taskId: created.data.taskId });
    assert.equal(asked.code, 200, JSON.stringify(asked));
    const uhd = await waitFor(async () => {
      const r = await call('/api/v1/veo/get-4k-video', { taskId: created.data.taskId });
      return r.data?.resultUrls ? r.data : undefined;
    }, 180_000, 250);
    const uhdMp4 = await downloadAndProbe(uhd.resultUrls[0], work, 'kie-4k.mp4');
    assert.deepEqual(videoShape(uhdMp4), { codec: 'h264', size: '3840x2160', seconds: 4 });
    assert.ok((await objectOf(uhd.resultUrls[0])).equals(uhdMp4.bytes));
    const jpeg = await objectOf(uhd.imageUrls[0]);
    assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    // (They are dropped just after the commit that says ready.)
    await waitFor(async () => (filesUnder(join(work, 'work')).length === 0 ? true : undefined), 10_000, 50).catch(() => {
      assert.deepEqual(filesUnder(join(work, 'work')), [], 'no work files are left once the renditions are made');
    });
  });

  test('openai: the video and its thumbnail come from the bucket; nothing of them is left in the data folder', async () => {
    const created = await call('/v1/videos', { prompt: 'A lantern in the rain', seconds: '4', size: '1280x720' });
    assert.match(created.id, /^video_/, JSON.stringify(created));
    const done = await waitFor(async () => {
      const v = await call(`/v1/videos/${created.id}`);
      return v.status === 'completed' || v.status === 'failed' ? v : undefined;
    }, 180_000, 100);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const content = await fetch(`${srv!.url}/v1/videos/${created.id}/content`, { headers });
    assert.equal(content.status, 200);
    assert.equal(content.headers.get('cache-control'), 'private, max-age=3600');
    const bytes = Buffer.from(await content.arrayBuffer());
    const thumb = await fetch(`${srv!.url}/v1/videos/${created.id}/content?variant=thumbnail`, { headers });
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    const webp = Buffer.from(await thumb.arrayBuffer());
    assert.equal(webp.toString('latin1', 0, 4), 'RIFF');

    // Its objects in the bucket (s3rver's folder: `<bucket>/<key>._S3rver_object`): the task's
    // file token is the one of a video that is not the kie task's.
    const kieToken = new URL(videoUrl).pathname.split('/')[2]!;
    const tokens = filesUnder(join(s3.directory, s3.bucket, PREFIX))
      .filter((f) => f.endsWith(`-${VIDEO_FILE}._S3rver_object`))
      .map((f) => f.split('/').pop()!.slice(0, -`-${VIDEO_FILE}._S3rver_object`.length))
      .filter((t) => t !== kieToken);
    assert.equal(tokens.length, 1, `the OpenAI video is in the bucket: ${tokens.join(', ')}`);
    const token = tokens[0]!;
    const key = (name: string) => `${token.slice(0, 2)}/${token}-${name}`;
    assert.ok((await bytesOf(key(VIDEO_FILE))).equals(bytes), 'the content is the object');
    assert.ok((await bytesOf(key(THUMBNAIL_WEBP))).equals(webp), 'the thumbnail is stored in the bucket');

    // No results folder at all; the work folder holds no scratch files, only (for stills an API
    // request made) a copy of the video, kept a day at most.
    assert.deepEqual(filesUnder(join(work, 'results')), []);
    const left = filesUnder(join(work, 'work'));
    assert.deepEqual(left.filter((f) => !f.startsWith('copies/')), [], `work files: ${left.join(', ')}`);
    assert.ok(left.every((f) => f.endsWith(`-${VIDEO_FILE}`)), `work files: ${left.join(', ')}`);
  });

  test('REELAY_FILES=redirect: a result URL answers 302 to a presigned URL that serves the same bytes', async () => {
    assert.ok(videoUrl, 'the first test stored a video');
    await srv!.stop();
    srv = undefined;
    srv = await startServer(env({ REELAY_FILES: 'redirect' }));
    const url = videoUrl.replace(/^http:\/\/127\.0\.0\.1:\d+/, srv.url);
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${s3.endpoint}/${s3.bucket}/${PREFIX}`), location);
    assert.match(location, /X-Amz-Signature=/);
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(videoBytes));
    const range = await fetch(url, { headers: { range: 'bytes=0-99' } });
    assert.equal(range.status, 206, 'fetch follows the redirect; S3 answers the Range');
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), videoBytes.subarray(0, 100));
  });

  test('retention deletes the objects (the sweep, in process, against the bucket)', async () => {
    // REELAY_RETENTION_DAYS is at least 1: the sweep is run here, on a task made to look old.
    const dir = tmpDir();
    const store = openSqliteStore(join(dir, 's.sqlite'));
    const objects = new S3ObjectStore({ bucket: s3.bucket, prefix: 'swept/', endpoint: s3.endpoint, credentials: s3.credentials, region: s3.region });
    const files = new ResultFiles(dir, 'http://r', { objects });
    const day = 86_400_000;
    const now = 100 * day;
    const old = makeTask({ id: 'old', fileToken: fileToken(), state: 'succeeded', completedAt: now - 15 * day, nextRunAt: null }, { images: ['http://img.test/a.png'] });
    const fresh = makeTask({ id: 'fresh', fileToken: fileToken(), state: 'succeeded', completedAt: now - day, nextRunAt: null });
    try {
      for (const t of [old, fresh]) {
        await store.createTask(t);
        await files.storeBytes(t, VIDEO_FILE, Buffer.from('video'));
      }
      await files.storeBytes(old, HD_FILE, Buffer.from('hd'));
      await files.storeBytes(old, inputFileName(0, 'png'), Buffer.from('png'), { keep: true });
      assert.ok(await files.local(old, inputFileName(0, 'png')), 'a copy on this machine');
      assert.deepEqual(await sweep(store, files, join(dir, 'renders'), 14 * day, now, pino({ level: 'silent' })), { expired: 1, purged: 0 });
      for (const name of [VIDEO_FILE, HD_FILE, inputFileName(0, 'png')]) assert.equal(await objects.head(files.key(old, name)), undefined, `${name} is deleted`);
      assert.ok(await objects.head(files.key(fresh, VIDEO_FILE)), 'the fresh task keeps its video');
      assert.deepEqual(filesUnder(files.workDir), [], 'and its copies on this machine go too');
      assert.equal((await store.getTask('t_a', 'old'))?.state, 'expired');
    } finally {
      await store.close();
      await objects.close();
    }
  });
});
