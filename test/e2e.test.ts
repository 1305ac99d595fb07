import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { downloadAndProbe, frameAt, frameDistance, makePng, videoShape } from './media.js';
import { peer } from './peer.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-e2e-key-one';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const OTHER = 'sk-e2e-key-two';

/**
 * End to end on a real server process with the real local renderer: create in each dialect, poll to
 * completion, download the MP4 and check it with ffprobe.
 */
describe('end to end (real process, local renderer)', () => {
  let srv: ServerProcess;
  let work: string;
  let images: Awaited<ReturnType<typeof peer>>;
  let flaky = 0;

  before(async () => {
    work = tmpDir();
    const landscape = readFileSync(await makePng(work, 'land.png', 640, 360));
    const portrait = readFileSync(await makePng(work, 'port.png', 360, 640, 'smptebars'));
    images = await peer({
      '/land.png': (_q, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(landscape),
      '/port.png': (_q, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(portrait),
      '/flaky.png': (_q, res) => (flaky++ === 0 ? res.writeHead(503).end('busy') : res.writeHead(200).end(landscape)),
      '/redirect.png': (_q, res) => res.writeHead(302, { location: 'http://127.0.0.2:9/secret.png' }).end(),
      '/text.txt': (_q, res) => res.writeHead(200, { 'content-type': 'image/png' }).end('not an image'),
      '/cb': (_q, res) => res.writeHead(200).end('ok'),
      '/cb4k': (_q, res) => res.writeHead(200).end('ok'),
    });
    srv = await startServer({
      REELAY_DATA_DIR: work,
      REELAY_API_KEYS: `${KEY},${OTHER}`,
      REELAY_URL_ALLOWLIST: '127.0.0.1',
      REELAY_RENDER_CONCURRENCY: '2',
      REELAY_ERROR_SLEEP_MS: '200',
      REELAY_CALLBACK_BACKOFF_MS: '100',
    });
  });
  after(async () => {
    await srv?.stop();
    await images?.close();
  });

  const headers = (key = KEY) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
  async function kie(path: string, body?: unknown, key = KEY) {
    const res = await fetch(`${srv.url}/api/v1/veo/${path}`, body ? { method: 'POST', headers: headers(key), body: JSON.stringify(body) } : { headers: headers(key) });
    return (await res.json()) as { code: number; msg: string; data: any };
  }
  async function kkiai(path: string, body?: unknown, key = KEY) {
    const res = await fetch(`${srv.url}/v1/video/${path}`, body ? { method: 'POST', headers: headers(key), body: JSON.stringify(body) } : { headers: headers(key) });
    return { status: res.status, body: (await res.json()) as any };
  }
  const kieDone = (id: string) =>
    waitFor(async () => {
      const r = await kie(`record-info?taskId=${id}`);
      return r.data?.successFlag !== 0 ? r.data : undefined;
      // Renders share the 2 cores with the rest of the suite: under load one takes minutes.
    }, 180_000);
  async function kkiaiDone(id: string, seen: Set<string> = new Set()) {
    return waitFor(async () => {
      const r = await kkiai(`query?id=${encodeURIComponent(id)}`);
      seen.add(r.body.status);
      return r.body.detail.running ? undefined : r.body;
    }, 120_000, 50);
  }

  test('kie: text to video, 8 s 1280×720 H.264 + AAC, Range 206, get-1080p 1920×1080, callback', async () => {
    const created = await kie('generate', { prompt: 'A lighthouse on a cliff at dusk', seeds: 23456, callBackUrl: `${images.url}/cb` });
    assert.equal(created.code, 200);
    const rec = await kieDone(created.data.taskId);
    assert.equal(rec.successFlag, 1, JSON.stringify(rec));
    assert.equal(rec.errorCode, null);
    assert.match(rec.completeTime, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const url: string = rec.response.resultUrls[0];
    assert.ok(url.startsWith(`${srv.url}/files/`), url);
    const mp4 = await downloadAndProbe(url, work, 'kie.mp4');
    assert.equal(mp4.contentType, 'video/mp4');
    assert.match(mp4.container, /mp4/);
    assert.deepEqual(videoShape(mp4), { codec: 'h264', size: '1280x720', seconds: 8 });
    assert.equal(mp4.audio?.codec, 'aac');
    assert.ok(Math.abs(mp4.durationMs - 8000) < 150, `duration ${mp4.durationMs}`);
    assert.equal(mp4.bytes.subarray(4, 8).toString('latin1'), 'ftyp');

    const range = await fetch(url, { headers: { range: 'bytes=100-199' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), `bytes 100-199/${mp4.bytes.length}`);
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), mp4.bytes.subarray(100, 200));

    // A data folder from before the shard layout kept each task's files in results/<token>/:
    // moved there, the video is still served, and the 1080p rendition is made from it.
    const token = new URL(url).pathname.split('/')[2]!;
    mkdirSync(join(work, 'results', token));
    renameSync(join(work, 'results', token.slice(0, 2), `${token}-video.mp4`), join(work, 'results', token, 'video.mp4'));
    assert.deepEqual(Buffer.from(await (await fetch(url)).arrayBuffer()), mp4.bytes);

    const first = await kie(`get-1080p-video?taskId=${created.data.taskId}&index=0`);
    assert.equal(first.code, 400);
    assert.match(first.msg, /1080P is processing/);
    const hd = await waitFor(async () => {
      const r = await kie(`get-1080p-video?taskId=${created.data.taskId}&index=0`);
      return r.code === 200 ? r.data : undefined;
    }, 90_000, 250);
    const hdMp4 = await downloadAndProbe(hd.resultUrl, work, 'kie-1080.mp4');
    assert.deepEqual(videoShape(hdMp4), { codec: 'h264', size: '1920x1080', seconds: 8 });
    assert.equal(hdMp4.audio?.codec, 'aac');

    const cb = await waitFor(async () => images.received.find((r) => r.path === '/cb' && r.body.includes(created.data.taskId)), 10_000);
    assert.equal(cb.method, 'POST');
    assert.match(String(cb.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(cb.body), {
      code: 200,
      msg: 'Veo3.1 video generated successfully.',
      data: { taskId: created.data.taskId, info: { resultUrls: [url], originUrls: null, resolution: '720p' }, fallbackFlag: false },
    });
    assert.equal(cb.headers.authorization, undefined, 'the key never leaves Reelay');
    // Signed: the key's secret, as `reelay keys webhook-secret` prints it, verifies the callback
    // with the standardwebhooks package and kie's own scheme.
    const printed = spawnSync(process.execPath, [CLI, 'keys', 'webhook-secret', KEY.slice(0, 10)], { env: { ...process.env, REELAY_DATA_DIR: work }, encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    const secret = printed.stdout.trim();
    const headers = cb.headers as Record<string, string>;
    assert.deepEqual(new Webhook(secret).verify(cb.body, headers), JSON.parse(cb.body));
    assert.equal(headers['x-webhook-signature'], createHmac('sha256', secret).update(`${created.data.taskId}.${headers['x-webhook-timestamp']}`).digest('base64'));
  });

  test('kie: extend continues the video from its last frame (fullResultUrls); get-4k-video makes 3840×2160 and a thumbnail, and calls back', async () => {
    const created = await kie('generate', { prompt: 'A red kite over green hills', duration: 4, seeds: 34567 });
    const src = await kieDone(created.data.taskId);
    assert.equal(src.successFlag, 1, JSON.stringify(src));
    const source = await downloadAndProbe(src.response.resultUrls[0], work, 'kie-src.mp4');
    assert.deepEqual(videoShape(source), { codec: 'h264', size: '1280x720', seconds: 4 });

    const ext = await kie('extend', { taskId: created.data.taskId, prompt: 'the kite climbs into the clouds', callBackUrl: `${images.url}/cb` });
    assert.equal(ext.code, 200, JSON.stringify(ext));
    const up = await kie('get-4k-video', { taskId: created.data.taskId, callBackUrl: `${images.url}/cb4k` });
    assert.deepEqual(up, { code: 200, msg: 'success', data: { taskId: created.data.taskId, resultUrls: null, imageUrls: null } });

    const rec = await kieDone(ext.data.taskId);
    assert.equal(rec.successFlag, 1, JSON.stringify(rec));
    assert.deepEqual(rec.response.fullResultUrls, rec.response.resultUrls);
    const file = join(work, 'kie-ext.mp4');
    const whole = await downloadAndProbe(rec.response.fullResultUrls[0], work, 'kie-ext.mp4');
    assert.deepEqual(videoShape(whole), { codec: 'h264', size: '1280x720', seconds: 12 }, 'the 4 s source and an 8 s new part');
    assert.equal(whole.audio?.codec, 'aac');
    // The source plays first, unchanged; the new part starts from the source's last frame and moves on.
    const srcFile = join(work, 'kie-src.mp4');
    assert.ok(frameDistance(await frameAt(file, 1), await frameAt(srcFile, 1)) < 6, 'the source plays first');
    const last = await frameAt(srcFile, 3.95, 160);
    const joinDistance = frameDistance(await frameAt(file, 4.1, 160), last);
    const endDistance = frameDistance(await frameAt(file, 11.8, 160), last);
    assert.ok(joinDistance < 6, `the new part starts from the last frame (distance ${joinDistance})`);
    assert.ok(endDistance > 3 * joinDistance + 2, `and moves on from it (${endDistance} at the end against ${joinDistance} at the join)`);
    const cb = await waitFor(async () => images.received.find((r) => r.path === '/cb' && r.body.includes(ext.data.taskId)), 10_000);
    assert.equal(JSON.parse(cb.body).msg, 'Veo3.1 video extension successful.');

    const uhd = await waitFor(async () => {
      const r = await kie('get-4k-video', { taskId: created.data.taskId });
      assert.equal(r.code, 422, JSON.stringify(r));
      return r.data.resultUrls ? r : undefined;
    }, 120_000, 500);
    assert.equal(uhd.msg, 'The video has been generated successfully');
    const uhdMp4 = await downloadAndProbe(uhd.data.resultUrls[0], work, 'kie-4k.mp4');
    assert.deepEqual(videoShape(uhdMp4), { codec: 'h264', size: '3840x2160', seconds: 4 });
    const thumb = await fetch(uhd.data.imageUrls[0]);
    assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
    assert.deepEqual([...Buffer.from(await thumb.arrayBuffer()).subarray(0, 3)], [0xff, 0xd8, 0xff]);
    const cb4k = await waitFor(async () => images.received.find((r) => r.path === '/cb4k'), 10_000);
    assert.deepEqual(JSON.parse(cb4k.body), {
      code: 200,
      msg: '4K Video generated successfully.',
      data: { taskId: created.data.taskId, info: { resultUrls: uhd.data.resultUrls, imageUrls: uhd.data.imageUrls } },
    });
  });

  test('kkiai: image to video with upsample walks the statuses; video_url is 1920×1080', async () => {
    const req = { model: 'veo3.1-fast', prompt: 'make animate', images: [`${images.url}/land.png`], enable_upsample: true, enhance_prompt: true, aspect_ratio: '16:9' };
    const created = await kkiai('create', req);
    assert.equal(created.status, 200);
    const seen = new Set<string>();
    const q = await kkiaiDone(created.body.id, seen);
    assert.equal(q.status, 'completed', JSON.stringify(q));
    for (const s of ['video_generating', 'completed']) assert.ok(seen.has(s), `saw ${[...seen]}`);
    assert.ok([...seen].every((s) => ['pending', 'image_downloading', 'video_generating', 'video_generation_completed', 'video_upsampling', 'completed'].includes(s)), [...seen].join());
    assert.equal(q.video_url, q.detail.upsample_video_url);
    assert.deepEqual(q.detail.images.map((i: any) => i.status), ['completed']);
    assert.equal(q.detail.upsample_status, 'MEDIA_GENERATION_STATUS_SUCCESSFUL');
    assert.equal(typeof q.detail.completed_at, 'number');
    const top = await downloadAndProbe(q.video_url, work, 'kk-top.mp4');
    assert.deepEqual(videoShape(top), { codec: 'h264', size: '1920x1080', seconds: 8 });
    // The local renderer draws its scene at the final size, so the base video is that same video:
    // nothing was upscaled.
    const base = await downloadAndProbe(q.detail.video_url, work, 'kk-base.mp4');
    assert.deepEqual(videoShape(base), { codec: 'h264', size: '1920x1080', seconds: 8 });
    assert.deepEqual(base.bytes, top.bytes);
    assert.equal(base.audio?.codec, 'aac');
  });

  test('kie: first and last frame, 9:16 → 720×1280; a flaky image host is retried and the error kept', async () => {
    const created = await kie('generate', { prompt: 'portrait morph', imageUrls: [`${images.url}/flaky.png`, `${images.url}/port.png`], aspect_ratio: '9:16', duration: 4 });
    const rec = await kieDone(created.data.taskId);
    assert.equal(rec.successFlag, 1, JSON.stringify(rec));
    const mp4 = await downloadAndProbe(rec.response.resultUrls[0], work, 'frames.mp4');
    assert.deepEqual(videoShape(mp4), { codec: 'h264', size: '720x1280', seconds: 4 }, 'the video lasts as long as asked, through the dissolve');
    const q = (await kkiai(`query?id=${created.data.taskId}`)).body;
    assert.equal(q.status, 'completed');
    assert.equal(q.detail.retry_count, 1);
    assert.match(q.detail.error_message, /HTTP 503/, 'the last error stays visible after the success');
  });

  test('blocked words take the safety path in both dialects, and the failure is called back', async () => {
    const created = await kie('generate', { prompt: 'something nsfw please', callBackUrl: `${images.url}/cb` });
    const rec = await kieDone(created.data.taskId);
    assert.equal(rec.successFlag, 3);
    assert.equal(rec.errorCode, 400);
    assert.match(rec.errorMessage, /content policies/);
    assert.equal(rec.response, null);
    const q = (await kkiai(`query?id=${created.data.taskId}`)).body;
    assert.equal(q.status, 'video_generation_failed');
    assert.match(q.detail.video_generation_error, /unsafe prompt/);
    assert.equal(q.video_url, null);
    const cb = await waitFor(async () => images.received.find((r) => r.path === '/cb' && r.body.includes(created.data.taskId)), 10_000);
    assert.deepEqual(JSON.parse(cb.body), { code: 400, msg: 'Your prompt was flagged by Website as violating content policies.', data: { taskId: created.data.taskId, fallbackFlag: false } });
  });

  test('SSRF: a redirect to a loopback address outside the allow-list fails the task, not the server', async () => {
    const created = await kie('generate', { prompt: 'redirected', imageUrls: [`${images.url}/redirect.png`] });
    const rec = await kieDone(created.data.taskId);
    assert.equal(rec.successFlag, 2);
    assert.equal(rec.errorCode, 400);
    assert.match(rec.errorMessage, /Failed to fetch the image.*127\.0\.0\.2.*loopback/);
    assert.equal(images.received.filter((r) => r.path === '/secret.png').length, 0);
    const notImage = await kie('generate', { prompt: 'text', imageUrls: [`${images.url}/text.txt`] });
    const rec2 = await kieDone(notImage.data.taskId);
    assert.equal(rec2.successFlag, 2);
    assert.match(rec2.errorMessage, /PNG, JPEG, WebP or GIF/);
  });

  test('an unreachable callback never fails the task', async () => {
    const created = await kie('generate', { prompt: 'nobody listens', duration: 4, callBackUrl: `http://127.0.0.1:1/cb` });
    const rec = await kieDone(created.data.taskId);
    assert.equal(rec.successFlag, 1);
  });

  test('tenant isolation: another key cannot see the task or guess its id', async () => {
    const created = await kkiai('create', { model: 'veo3-fast', prompt: 'private' });
    const other = await kkiai(`query?id=${encodeURIComponent(created.body.id)}`, undefined, OTHER);
    assert.equal(other.status, 404);
    const otherKie = await kie(`record-info?taskId=${encodeURIComponent(created.body.id)}`, undefined, OTHER);
    assert.equal(otherKie.code, 404);
    const mine = await kkiai(`query?id=${encodeURIComponent(created.body.id)}`);
    assert.equal(mine.status, 200);
  });

  test('keys never appear in the logs', () => {
    assert.ok(!srv.output().includes(KEY));
    assert.ok(!srv.output().includes(OTHER));
  });
});
