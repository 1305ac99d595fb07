import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI, { AuthenticationError, BadRequestError, ConflictError, NotFoundError, toFile } from 'openai';
import type { Video } from 'openai/resources/videos';
import { run } from '../src/media/ffmpeg.js';
import { ffprobeFile, probe } from '../src/media/probe.js';
import { binaries, videoShape } from './media.js';
import { type ServerProcess, sleep, startServer } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-openai-sdk-one';
const OTHER = 'sk-openai-sdk-two';

/**
 * The official `openai` SDK (6.49, which always sends creates as multipart) against a real Reelay
 * process with the local renderer: every videos call it has, the bytes it downloads checked with
 * ffprobe, and its error classes.
 */
describe('openai SDK against a real server (local renderer)', () => {
  let srv: ServerProcess;
  let work: string;
  let client: OpenAI;
  let other: OpenAI;
  /** Requests the main client sent, to see which answers the SDK retried. */
  let requests = 0;
  const videos: Record<'text' | 'file' | 'url', Video> = {} as never;

  before(async () => {
    work = tmpDir();
    srv = await startServer({
      REELAY_DATA_DIR: work,
      REELAY_API_KEYS: `${KEY},${OTHER}`,
      REELAY_RENDER_CONCURRENCY: '2',
      REELAY_ERROR_SLEEP_MS: '200',
    });
    const baseURL = `${srv.url}/v1`;
    client = new OpenAI({
      apiKey: KEY,
      baseURL,
      fetch: (url, init) => {
        requests++;
        return fetch(url, init);
      },
    });
    other = new OpenAI({ apiKey: OTHER, baseURL });
  });
  after(async () => {
    await srv?.stop();
  });

  /** A solid-colour PNG made with ffmpeg. */
  async function png(colour: string, w: number, h: number): Promise<Buffer> {
    const file = join(work, `${colour}-${w}x${h}.png`);
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `color=c=${colour}:s=${w}x${h}`, '-frames:v', '1', file]);
    return readFileSync(file);
  }

  /** Polls with `retrieve` until the video ends; its progress must never go down. */
  async function finished(id: string, timeoutMs = 120_000): Promise<Video> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      const v = await client.videos.retrieve(id);
      assert.ok(['queued', 'in_progress', 'completed', 'failed'].includes(v.status), v.status);
      assert.ok(Number.isInteger(v.progress) && v.progress >= last, `progress went from ${last} to ${v.progress}`);
      last = v.progress;
      if (v.status === 'completed' || v.status === 'failed') return v;
      if (Date.now() > deadline) throw new Error(`video ${id} still ${v.status} after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Downloads a variant of a video's content: its bytes and content type. */
  async function content(id: string, variant: 'video' | 'thumbnail' | 'spritesheet' = 'video') {
    const res = await client.videos.downloadContent(id, { variant });
    return { type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
  }

  async function probeVideo(id: string) {
    const { type, bytes } = await content(id);
    assert.equal(type, 'video/mp4');
    const file = join(work, `${id}.mp4`);
    writeFileSync(file, bytes);
    return { file, shape: videoShape(await probe(binaries.ffprobe, file)) };
  }

  /** The mean colour of a video's first frame (scaled down by area, then averaged). */
  async function firstFrameColour(file: string): Promise<[number, number, number]> {
    const raw = `${file}.rgb`;
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-i', file, '-frames:v', '1', '-vf', 'scale=32:32:flags=area', '-f', 'rawvideo', '-pix_fmt', 'rgb24', raw]);
    const px = readFileSync(raw);
    const sum = [0, 0, 0];
    for (let i = 0; i < px.length; i++) sum[i % 3]! += px[i]!;
    return sum.map((s) => Math.round(s / (px.length / 3))) as [number, number, number];
  }

  test('create: text, an input_reference file (toFile) and an image_url data: URL; each polled to completed', async () => {
    const red = await png('red', 720, 1280);
    const blue = await png('blue', 1280, 720);
    const [text, file, url] = await Promise.all([
      client.videos.create({ prompt: 'A lighthouse on a cliff at dusk', model: 'sora-2', seconds: '4', size: '1280x720' }),
      client.videos.create({ prompt: 'The red wall comes alive', model: 'sora-2-pro', seconds: '4', size: '720x1280', input_reference: await toFile(red, 'red.png', { type: 'image/png' }) }),
      client.videos.create({ prompt: 'A blue sky', seconds: '4', size: '1280x720', input_reference: { image_url: `data:image/png;base64,${blue.toString('base64')}` } }),
    ]);
    for (const v of [text, file, url]) {
      assert.match(v.id, /^video_[0-9a-f]{32}$/);
      assert.equal(v.object, 'video');
      assert.equal(v.status, 'queued');
      assert.equal(v.progress, 0);
      assert.equal(v.seconds, '4');
      assert.equal(v.completed_at, null);
    }
    assert.equal(file.model, 'sora-2-pro');
    assert.equal(file.size, '720x1280');
    const done = await Promise.all([text, file, url].map((v) => finished(v.id)));
    for (const v of done) {
      assert.equal(v.status, 'completed', JSON.stringify(v));
      assert.equal(v.progress, 100);
      assert.equal(v.error, null);
      assert.equal(typeof v.completed_at, 'number');
      assert.ok(v.expires_at! > v.completed_at!);
    }
    [videos.text, videos.file, videos.url] = done as [Video, Video, Video];
  });

  test('downloadContent: the MP4 is H.264 at the size and length asked; the input image is its first frame', async () => {
    const text = await probeVideo(videos.text.id);
    assert.deepEqual(text.shape, { codec: 'h264', size: '1280x720', seconds: 4 });
    const file = await probeVideo(videos.file.id);
    assert.deepEqual(file.shape, { codec: 'h264', size: '720x1280', seconds: 4 });
    const [r, g, b] = await firstFrameColour(file.file);
    assert.ok(r > 180 && g < 80 && b < 80, `first frame of the red image is ${r},${g},${b}`);
    const url = await probeVideo(videos.url.id);
    assert.deepEqual(url.shape, { codec: 'h264', size: '1280x720', seconds: 4 });
    const [r2, g2, b2] = await firstFrameColour(url.file);
    assert.ok(b2 > 180 && r2 < 80 && g2 < 80, `first frame of the blue image is ${r2},${g2},${b2}`);
  });

  test('downloadContent: the spritesheet is a JPEG grid of 5×5 frames, 256 pixels wide each', async () => {
    const sprite = await content(videos.text.id, 'spritesheet');
    assert.equal(sprite.type, 'image/jpeg');
    assert.deepEqual([...sprite.bytes.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    const file = join(work, 'sprite.jpg');
    writeFileSync(file, sprite.bytes);
    const p = await ffprobeFile(binaries.ffprobe, file);
    // A 1280×720 video: tiles of 256×144, five across and five down.
    assert.deepEqual([p.video?.width, p.video?.height], [5 * 256, 5 * 144]);
    // The tiles are frames from across the video, not one frame repeated.
    const tile = async (i: number) => (await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-i', file, '-vf', `crop=256:144:${(i % 5) * 256}:${Math.floor(i / 5) * 144},scale=16:9,format=gray`, '-f', 'rawvideo', '-']));
    assert.notEqual(await tile(0), await tile(24));
  });

  test('a prompt the provider rejects for safety: failed with error.code moderation_blocked', async () => {
    const v = await client.videos.create({ prompt: 'something nsfw please', seconds: '4', size: '1280x720' });
    const done = await finished(v.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error?.code, 'moderation_blocked');
    assert.match(done.error?.message ?? '', /unsafe/);
    await assert.rejects(client.videos.downloadContent(v.id), (e: unknown) => e instanceof ConflictError);
  });

  test('downloadContent: the thumbnail is a WebP', async () => {
    const thumb = await content(videos.text.id, 'thumbnail');
    assert.equal(thumb.type, 'image/webp');
    assert.equal(thumb.bytes.toString('latin1', 0, 4), 'RIFF');
    assert.equal(thumb.bytes.toString('latin1', 8, 12), 'WEBP');
  });

  test('remix: a new video with the source size and length and remixed_from_video_id', async () => {
    const remix = await client.videos.remix(videos.text.id, { prompt: 'The same lighthouse at night' });
    assert.equal(remix.remixed_from_video_id, videos.text.id);
    assert.equal(remix.size, '1280x720');
    assert.equal(remix.seconds, '4');
    const done = await finished(remix.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(done.prompt, 'The same lighthouse at night');
    assert.deepEqual((await probeVideo(remix.id)).shape, { codec: 'h264', size: '1280x720', seconds: 4 });
  });

  test('extend: seconds is the stitched total and the MP4 is the source followed by the new part', async () => {
    const ext = await client.videos.extend({ video: { id: videos.text.id }, prompt: 'The lighthouse beam sweeps on', seconds: '4' });
    assert.equal(ext.seconds, '8');
    assert.equal(ext.size, '1280x720');
    const done = await finished(ext.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual((await probeVideo(ext.id)).shape, { codec: 'h264', size: '1280x720', seconds: 8 });
  });

  test('list: has_more on a short page; auto-pagination walks every video, in both orders', async () => {
    const first = await client.videos.list({ limit: 1 });
    assert.equal(first.data.length, 1);
    assert.equal(first.has_more, true);
    assert.ok(first.hasNextPage());
    const ids: string[] = [];
    for await (const v of client.videos.list({ limit: 2 })) ids.push(v.id);
    for (const v of Object.values(videos)) assert.ok(ids.includes(v.id), `${v.id} listed`);
    assert.equal(new Set(ids).size, ids.length, 'no video twice');
    const asc: string[] = [];
    for await (const v of client.videos.list({ limit: 3, order: 'asc' })) asc.push(v.id);
    assert.deepEqual(asc, [...ids].reverse());
  });

  test('errors are the SDK classes; 409 answers are not retried', async () => {
    await assert.rejects(client.videos.create({ prompt: 'p', seconds: '5' as never }), (e: unknown) => e instanceof BadRequestError && e.param === 'seconds' && /Supported values/.test(e.message));
    await assert.rejects(client.videos.create({ prompt: 'p', input_reference: { file_id: 'file_123' } }), (e: unknown) => e instanceof BadRequestError && e.param === 'input_reference.file_id');
    await assert.rejects(client.videos.retrieve('video_0123456789abcdef0123456789abcdef'), (e: unknown) => e instanceof NotFoundError && e.code === 'video_not_found');
    const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${srv.url}/v1` });
    await assert.rejects(wrong.videos.list(), (e: unknown) => e instanceof AuthenticationError && e.code === 'invalid_api_key');
    await assert.rejects(client.videos.edit({ prompt: 'p', video: { id: videos.text.id } }), (e: unknown) => e instanceof BadRequestError && e.code === 'unsupported');

    const running = await client.videos.create({ prompt: 'still rendering', seconds: '4', size: '1280x720' });
    requests = 0;
    await assert.rejects(client.videos.downloadContent(running.id), (e: unknown) => e instanceof ConflictError && e.code === 'video_not_ready');
    assert.equal(requests, 1, 'x-should-retry: false: the 409 was asked once');
    // A video being made is canceled by its delete, and gone at once.
    assert.deepEqual({ ...(await client.videos.delete(running.id)) }, { id: running.id, object: 'video.deleted', deleted: true });
    await assert.rejects(client.videos.retrieve(running.id), NotFoundError);
  });

  test('isolation: another key neither sees nor deletes these videos', async () => {
    await assert.rejects(other.videos.retrieve(videos.text.id), NotFoundError);
    await assert.rejects(other.videos.delete(videos.text.id), NotFoundError);
    await assert.rejects(other.videos.downloadContent(videos.text.id), NotFoundError);
    await assert.rejects(other.videos.remix(videos.text.id, { prompt: 'mine now' }), NotFoundError);
    const theirs: string[] = [];
    for await (const v of other.videos.list()) theirs.push(v.id);
    assert.deepEqual(theirs, []);
  });

  test('delete: the video is gone, retrieve is a NotFoundError', async () => {
    const deleted = await client.videos.delete(videos.url.id);
    assert.deepEqual({ ...deleted }, { id: videos.url.id, object: 'video.deleted', deleted: true });
    await assert.rejects(client.videos.retrieve(videos.url.id), NotFoundError);
    await assert.rejects(client.videos.downloadContent(videos.url.id), NotFoundError);
  });
});
