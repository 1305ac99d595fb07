import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { KEY_A, KEY_B, auth, testApp } from '../../../test/app.js';
import { binaries } from '../../../test/media.js';
import { tmpDir } from '../../../test/tmp.js';
import type { AppContext } from '../../app/context.js';
import type { Task } from '../../core/task.js';
import { run } from '../../media/ffmpeg.js';
import { SOURCE_FILE } from '../../results/files.js';
import { VIDEO_ID } from './ids.js';

type Res = { statusCode: number; headers: Record<string, unknown>; body: string; rawPayload: Buffer };
type Part = string | { bytes: Buffer; filename: string; type: string };

const KEYS = ['completed_at', 'created_at', 'error', 'expires_at', 'id', 'model', 'object', 'progress', 'prompt', 'remixed_from_video_id', 'seconds', 'size', 'status'];

/** A multipart/form-data body as the SDK sends it (every value a string part, files as file parts). */
async function form(fields: [string, Part][]): Promise<{ payload: Buffer; type: string }> {
  const fd = new FormData();
  for (const [name, v] of fields) {
    if (typeof v === 'string') fd.append(name, v);
    else fd.append(name, new Blob([v.bytes], { type: v.type }), v.filename);
  }
  const req = new Request('http://x/', { method: 'POST', body: fd });
  return { payload: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
}

/** Every error: the OpenAI envelope, JSON, a real status; 4xx say x-should-retry: false. */
function error(res: Res, status: number, want: { code?: string | null; param?: string | null; message?: RegExp; type?: string } = {}) {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = JSON.parse(res.body);
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof body.error.message, 'string');
  assert.equal(res.headers['x-should-retry'], status < 500 ? 'false' : undefined);
  if (want.code !== undefined) assert.equal(body.error.code, want.code, res.body);
  if (want.param !== undefined) assert.equal(body.error.param, want.param, res.body);
  if (want.type !== undefined) assert.equal(body.error.type, want.type, res.body);
  if (want.message) assert.match(body.error.message, want.message);
  return body.error;
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

/** Moves a task along the state machine as an engine would (claim, then a fenced commit per step). */
async function advance(ctx: AppContext, id: string, ...patches: Partial<Task>[]): Promise<void> {
  for (const patch of patches) {
    const claimed = await ctx.store.claimDue('test', Date.now() + 1, 60_000, 100_000);
    assert.ok(claimed.some((t) => t.id === id), `claimed ${id}`);
    assert.ok(await ctx.store.commitStep('test', { taskId: id, patch: { nextRunAt: Date.now(), ...patch } }));
  }
}
const succeed = (ctx: AppContext, id: string) =>
  advance(ctx, id, { state: 'generating', upstreamId: 'u', attemptCount: 1 }, { state: 'succeeded', progress: 100, completedAt: Date.now(), nextRunAt: null });
const fail = (ctx: AppContext, id: string) =>
  advance(ctx, id, { state: 'generating', upstreamId: 'u', attemptCount: 1 }, { state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: 'unsafe prompt', completedAt: Date.now(), nextRunAt: null });

describe('openai dialect over HTTP (in-process)', async () => {
  const { app, ctx } = await testApp({ REELAY_IMAGE_MAX_BYTES: '4096' });
  const inject = (method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: unknown, headers: Record<string, string> = auth()) =>
    app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload) }) }) as Promise<Res>;
  const post = (body: unknown, key = KEY_A, url = '/v1/videos') => inject('POST', url, body, auth(key));
  const postForm = async (fields: [string, Part][], key = KEY_A, url = '/v1/videos') => {
    const f = await form(fields);
    return inject('POST', url, f.payload, { authorization: `Bearer ${key}`, 'content-type': f.type });
  };
  const get = (url: string, key = KEY_A) => inject('GET', url, undefined, { authorization: `Bearer ${key}` });
  const created = async (res: Res | Promise<Res>) => {
    const r = await res;
    assert.equal(r.statusCode, 200, r.body);
    return JSON.parse(r.body);
  };
  const taskOf = async (id: string, tenant = 'tenant0') => (await ctx.store.getTask(tenant, id))!;

  test('create (JSON): defaults, the video object with every key, the task behind it', async () => {
    const res = await post({ prompt: '  A calico cat playing a piano on stage ' });
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const v = await created(res);
    assert.deepEqual(Object.keys(v).sort(), KEYS);
    assert.match(v.id, VIDEO_ID);
    assert.equal(v.object, 'video');
    assert.equal(v.model, 'sora-2');
    assert.equal(v.status, 'queued');
    assert.equal(v.progress, 0);
    assert.ok(Math.abs(v.created_at - Date.now() / 1000) < 5);
    assert.equal(v.completed_at, null);
    assert.equal(v.expires_at, null);
    assert.equal(v.error, null);
    assert.equal(v.prompt, 'A calico cat playing a piano on stage');
    assert.equal(v.remixed_from_video_id, null);
    assert.equal(v.seconds, '4');
    assert.equal(v.size, '720x1280');
    const task = await taskOf(v.id);
    assert.equal(task.dialect, 'openai');
    assert.equal(task.model, 'sora-2');
    assert.deepEqual(task.request, { prompt: '  A calico cat playing a piano on stage ' });
    // The door's notes in the request cannot come from the client.
    const spoof = await created(post({ prompt: 'p', remixed_from_video_id: 'video_x', stitched_seconds: '99', quality: 'standard' }));
    assert.equal(spoof.remixed_from_video_id, null);
    assert.equal(spoof.seconds, '4');
    assert.deepEqual((await taskOf(spoof.id)).request, { prompt: 'p', quality: 'standard' });
    assert.deepEqual(
      { ...task.spec, seed: 0 },
      { prompt: 'A calico cat playing a piano on stage', images: [], mode: 'text', aspectRatio: '9:16', resolution: '720p', upsample: false, seed: 0, durationSeconds: 4, enhancePrompt: false },
    );
  });

  test('sizes and seconds map to the spec; any model name is taken', async () => {
    const cases = [
      ['1280x720', '8', { aspectRatio: '16:9', resolution: '720p', upsample: false }],
      ['720x1280', '12', { aspectRatio: '9:16', resolution: '720p', upsample: false }],
      ['1024x1792', '4', { aspectRatio: '9:16', resolution: '1080p', upsample: true, frame: { width: 1024, height: 1792 } }],
      ['1792x1024', '8', { aspectRatio: '16:9', resolution: '1080p', upsample: true, frame: { width: 1792, height: 1024 } }],
    ] as const;
    for (const [size, seconds, want] of cases) {
      for (const model of ['sora-2', 'sora-2-pro']) {
        const v = await created(post({ prompt: 'p', model, size, seconds }));
        assert.equal(v.size, size);
        assert.equal(v.seconds, seconds);
        assert.equal(v.model, model);
        const { spec } = await taskOf(v.id);
        assert.deepEqual({ aspectRatio: spec.aspectRatio, resolution: spec.resolution, upsample: spec.upsample, ...(spec.frame ? { frame: spec.frame } : {}) }, want);
        assert.equal(spec.durationSeconds, Number(seconds));
      }
    }
    assert.equal((await created(post({ prompt: 'p', model: 'veo3.1-fast' }))).model, 'veo3.1-fast');
  });

  test('create (multipart, as the SDK sends it): string parts, a file input_reference, bracket keys', async () => {
    const text = await created(postForm([['prompt', 'a lighthouse'], ['model', 'sora-2-pro'], ['seconds', '8'], ['size', '1280x720']]));
    assert.equal(text.seconds, '8');
    assert.equal(text.size, '1280x720');
    assert.deepEqual((await taskOf(text.id)).request, { prompt: 'a lighthouse', model: 'sora-2-pro', seconds: '8', size: '1280x720' });

    const file = await created(postForm([['prompt', 'animate it'], ['input_reference', { bytes: PNG, filename: 'red.png', type: 'image/png' }]]));
    const task = await taskOf(file.id);
    assert.deepEqual(task.spec.images, [`data:image/png;base64,${PNG.toString('base64')}`]);
    assert.equal(task.spec.mode, 'frames');
    assert.deepEqual(task.request, { prompt: 'animate it', input_reference: { filename: 'red.png', content_type: 'image/png', bytes: PNG.length } });
    // The type is read from the bytes, not the part's word for it.
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]);
    const j = await created(postForm([['prompt', 'p'], ['input_reference', { bytes: jpeg, filename: 'x.bin', type: 'application/octet-stream' }]]));
    assert.match((await taskOf(j.id)).spec.images[0]!, /^data:image\/jpeg;base64,/);

    const url = await created(postForm([['prompt', 'p'], ['input_reference[image_url]', 'https://93.184.215.14/a.png']]));
    assert.deepEqual((await taskOf(url.id)).spec.images, ['https://93.184.215.14/a.png']);
    assert.deepEqual((await taskOf(url.id)).request, { prompt: 'p', input_reference: { image_url: 'https://93.184.215.14/a.png' } });
    const data = `data:image/png;base64,${PNG.toString('base64')}`;
    const d = await created(post({ prompt: 'p', input_reference: { image_url: data } }));
    assert.deepEqual((await taskOf(d.id)).spec.images, [data]);
  });

  test('create errors: 400 invalid_request_error naming the field', async () => {
    const bad = async (body: unknown, param: string | null, message?: RegExp) => error(await post(body), 400, { type: 'invalid_request_error', param, ...(message ? { message } : {}) });
    await bad({}, 'prompt', /prompt is required/);
    await bad({ prompt: '   ' }, 'prompt', /prompt is required/);
    await bad({ prompt: 42 }, 'prompt', /prompt must be a string/);
    // seconds is a string in OpenAI's API, which rejects integers: so does Reelay.
    await bad({ prompt: 'p', seconds: 8 }, 'seconds', /seconds must be a string, got the number 8/);
    await bad({ prompt: 'p', seconds: '5' }, 'seconds', /Supported values are: '4', '8', '12'/);
    await bad({ prompt: 'p', size: '1920x1080' }, 'size', /Invalid value for size/);
    await bad({ prompt: 'p', model: ' ' }, 'model', /model must not be empty/);
    await bad({ prompt: 'p', model: 2 }, 'model');
    await bad({ prompt: 'p', input_reference: 'https://93.184.215.14/a.png' }, 'input_reference', /image file or an object/);
    await bad({ prompt: 'p', input_reference: {} }, 'input_reference.image_url');
    await bad({ prompt: 'p', input_reference: { file_id: 'file_123' } }, 'input_reference.file_id', /no Files API/);
    await bad({ prompt: 'p', input_reference: { url: 'x' } }, 'input_reference.url');
    await bad({ prompt: 'p', input_reference: { image_url: 'data:image/png;base64,@@' } }, 'input_reference', /data: image/);
    await bad([1, 2], null, /JSON object or multipart/);
    await bad({ prompt: 'x'.repeat(32_001) }, 'prompt', /at most 32000 characters/);
    error(await post({ prompt: 'x'.repeat(70_000) }), 413, { code: 'request_too_large' }); // past the test app's 64 kB body limit
    error(await post('{"prompt": '), 400, { message: /not valid JSON/ });
    error(await inject('POST', '/v1/videos', 'prompt=x', { authorization: `Bearer ${KEY_A}`, 'content-type': 'text/plain' }), 400, { message: /JSON object or multipart/ });
    error(await inject('POST', '/v1/videos', 'prompt=x', { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/x-www-form-urlencoded' }), 400, { message: /Content-Type must be application\/json or multipart\/form-data/ });
    error(await inject('POST', '/v1/videos', undefined, { authorization: `Bearer ${KEY_A}` }), 400, { message: /JSON object or multipart/ });
    // A private image URL is refused at create.
    for (const url of ['http://127.0.0.2/a.png', 'http://[::1]/a.png', 'http://localhost/a.png', 'file:///etc/passwd']) {
      error(await post({ prompt: 'p', input_reference: { image_url: url } }), 400, { code: 'image_fetch_failed', param: 'input_reference', message: /Failed to fetch the image/ });
    }
  });

  test('create errors (multipart): file_id, size limits, a non-image, two files, repeated and odd fields', async () => {
    const bad = async (fields: [string, Part][], status: number, want: Parameters<typeof error>[2]) => error(await postForm(fields), status, want);
    await bad([['prompt', 'p'], ['input_reference[file_id]', 'file_123']], 400, { param: 'input_reference.file_id', message: /no Files API/ });
    await bad([['prompt', 'p'], ['seconds', '7']], 400, { param: 'seconds' });
    await bad([['prompt', 'p'], ['input_reference', { bytes: Buffer.alloc(5000, 1), filename: 'big.png', type: 'image/png' }]], 413, { code: 'request_too_large', message: /4096 bytes/ });
    await bad([['prompt', 'p'], ['input_reference', { bytes: Buffer.from('GIF89a......'), filename: 'a.gif', type: 'image/gif' }]], 400, { param: 'input_reference', message: /PNG, JPEG or WebP/ });
    await bad([['prompt', 'p'], ['input_reference', 'https://93.184.215.14/a.png']], 400, { param: 'input_reference' });
    await bad(
      [['prompt', 'p'], ['input_reference', { bytes: PNG, filename: 'a.png', type: 'image/png' }], ['other', { bytes: PNG, filename: 'b.png', type: 'image/png' }]],
      400,
      { message: /at most 1 file/ },
    );
    await bad([['prompt', 'p'], ['prompt', 'q']], 400, { param: 'prompt', message: /given once/ });
    await bad([['prompt', 'p'], ['input_reference', { bytes: PNG, filename: 'a.png', type: 'image/png' }], ['input_reference[image_url]', 'https://93.184.215.14/a.png']], 400, { message: /conflicts/ });
    await bad([['prompt', 'p'], ['a[__proto__]', 'x']], 400, { message: /not allowed/ });
    await bad([['prompt', 'p'], ['a[]', 'x']], 400, { message: /not understood/ });
    await bad([['prompt', 'p'], ['a[b][c][d]', 'x']], 400, { message: /nests too deeply/ });
    await bad([['prompt', 'x'.repeat(32_001)]], 400, { param: 'prompt', message: /at most 32000/ });
    await bad(Array.from({ length: 20 }, (_, i) => [`f${i}`, 'x'] as [string, Part]), 413, { message: /more than 16 fields/ });
    await bad(Array.from({ length: 3 }, (_, i) => [`f${i}`, 'x'.repeat(100_000)] as [string, Part]), 413, { message: /text parts are larger/ });
    error(await inject('POST', '/v1/videos', '--nope\r\n', { authorization: `Bearer ${KEY_A}`, 'content-type': 'multipart/form-data; boundary=xyz' }), 400, { message: /malformed multipart/ });
    // A part typed application/json arrives parsed: nested 5,000 levels deep it is refused, as a
    // JSON body is, instead of overflowing the stack when the request is stored.
    const deep = (levels: number) => `${'{"x":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const jsonPart = (value: string) =>
      `--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\np\r\n` +
      `--b\r\nContent-Disposition: form-data; name="extra"\r\nContent-Type: application/json\r\n\r\n${value}\r\n--b--\r\n`;
    const multipart = { authorization: `Bearer ${KEY_A}`, 'content-type': 'multipart/form-data; boundary=b' };
    error(await inject('POST', '/v1/videos', jsonPart(deep(5000)), multipart), 400, { param: 'extra', message: /more than 64 levels deep/ });
    assert.equal((await inject('POST', '/v1/videos', jsonPart(deep(10)), multipart)).statusCode, 200);
    error(await inject('POST', '/v1/videos', `{"prompt":"p","extra":${deep(5000)}}`, { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }), 400, { message: /more than 64 levels deep/ });
  });

  test('401 invalid_api_key on every route, before anything else', async () => {
    for (const headers of [{}, { authorization: 'Bearer sk-nope' }, { authorization: 'Basic abc' }]) {
      for (const [method, url] of [['POST', '/v1/videos'], ['GET', '/v1/videos/video_x'], ['GET', '/v1/videos'], ['DELETE', '/v1/videos/video_x'], ['GET', '/v1/videos/video_x/content'], ['POST', '/v1/videos/video_x/remix'], ['POST', '/v1/videos/extensions'], ['POST', '/v1/videos/edits'], ['GET', '/v1/videos/characters/c']] as const) {
        const res = await app.inject({ method, url, headers, ...(method === 'POST' ? { payload: { prompt: 'p' } } : {}) });
        error(res as Res, 401, { code: 'invalid_api_key', type: 'invalid_request_error' });
      }
    }
  });

  test('retrieve: the same object; 404 video_not_found for an unknown id and for another tenant', async () => {
    const v = await created(post({ prompt: 'p', size: '1280x720' }));
    const res = await get(`/v1/videos/${v.id}`);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), v);
    assert.deepEqual(JSON.parse((await get(`/v1/videos/${v.id}`)).body), v, 'answered from memory the second time');
    error(await get('/v1/videos/video_0123456789abcdef0123456789abcdef'), 404, { code: 'video_not_found', type: 'invalid_request_error' });
    error(await get(`/v1/videos/${v.id}`, KEY_B), 404, { code: 'video_not_found' });
  });

  test('a polled video shows each change at once; progress never goes down', async () => {
    const v = await created(post({ prompt: 'p' }));
    const poll = async () => JSON.parse((await get(`/v1/videos/${v.id}`)).body);
    const seen: { status: string; progress: number }[] = [await poll()];
    const steps: Partial<Task>[] = [
      { state: 'generating', upstreamId: 'a', attemptCount: 1, progress: 0 },
      { progress: 50 },
      { upstreamId: 'b', attemptCount: 2, progress: 0 },
      { state: 'succeeded', progress: 100, completedAt: Date.now(), nextRunAt: null },
    ];
    for (const s of steps) {
      await advance(ctx, v.id, s);
      seen.push(await poll());
    }
    assert.deepEqual(seen.map((s) => s.status), ['queued', 'in_progress', 'in_progress', 'in_progress', 'completed']);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress >= seen[i - 1]!.progress, JSON.stringify(seen));
    const done = await poll();
    assert.equal(done.progress, 100);
    assert.equal(typeof done.completed_at, 'number');
    assert.equal(done.expires_at, done.completed_at + 14 * 86_400);
  });

  test('a failed video: status failed with its error; an expired one keeps its status', async () => {
    const v = await created(post({ prompt: 'p' }));
    await fail(ctx, v.id);
    const failed = JSON.parse((await get(`/v1/videos/${v.id}`)).body);
    assert.equal(failed.status, 'failed');
    assert.deepEqual(failed.error, { code: 'moderation_blocked', message: 'unsafe prompt' });
    await ctx.store.markExpired([v.id], Date.now());
    const gone = JSON.parse((await get(`/v1/videos/${v.id}`)).body);
    assert.equal(gone.status, 'failed');
    const ok = await created(post({ prompt: 'p' }));
    await succeed(ctx, ok.id);
    await ctx.store.markExpired([ok.id], Date.now());
    assert.equal(JSON.parse((await get(`/v1/videos/${ok.id}`)).body).status, 'completed');
    error(await get(`/v1/videos/${ok.id}/content`), 410, { code: 'video_expired' });
  });

  test('tasks of the other doors render as videos', async () => {
    const kie = JSON.parse((await inject('POST', '/api/v1/veo/generate', { prompt: 'cross', aspect_ratio: '9:16', resolution: '1080p', duration: 6 })).body).data.taskId;
    const k = JSON.parse((await get(`/v1/videos/${kie}`)).body);
    assert.deepEqual(Object.keys(k).sort(), KEYS);
    assert.equal(k.id, kie);
    assert.equal(k.model, 'veo3_fast');
    assert.equal(k.size, '1080x1920');
    assert.equal(k.seconds, '6');
    assert.equal(k.status, 'queued');
    const kk = JSON.parse((await inject('POST', '/v1/video/create', { model: 'veo3', prompt: 'other' })).body).id;
    const q = JSON.parse((await get(`/v1/videos/${encodeURIComponent(kk)}`)).body);
    assert.equal(q.id, kk);
    assert.equal(q.size, '1280x720');
    assert.equal(q.seconds, '8');
  });

  test('delete while it is being made cancels it: deleted for this door at once, canceled for the others until its work is stopped', async () => {
    const v = await created(post({ prompt: 'p' }));
    const res = await inject('DELETE', `/v1/videos/${v.id}`, undefined, { authorization: `Bearer ${KEY_A}` });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { id: v.id, object: 'video.deleted', deleted: true });
    error(await get(`/v1/videos/${v.id}`), 404, { code: 'video_not_found' });
    const list = JSON.parse((await get('/v1/videos?limit=100')).body) as { data: { id: string }[] };
    assert.ok(!list.data.some((d) => d.id === v.id), 'not listed');
    // No engine runs here: the task waits, canceled, for the step that stops its work and deletes it.
    const task = (await ctx.tasks.get('tenant0', v.id))!;
    assert.equal(task.state, 'canceled');
    assert.equal(task.cancelOutcome, 'pending');
    assert.equal(task.deleteRequested, true);
    const kie = JSON.parse((await inject('GET', `/api/v1/veo/record-info?taskId=${v.id}`, undefined, { authorization: `Bearer ${KEY_A}` })).body);
    assert.equal(kie.data.successFlag, 2);
    // Deleted again before the engine came: still answered as deleted.
    assert.equal((await inject('DELETE', `/v1/videos/${v.id}`, undefined, { authorization: `Bearer ${KEY_A}` })).statusCode, 404);
  });

  test('delete: a completed video is deleted with its files, then 404', async () => {
    const v = await created(post({ prompt: 'p' }));
    await succeed(ctx, v.id);
    const task = (await ctx.tasks.get('tenant0', v.id))!;
    for (const name of ['video.mp4', 'thumbnail.webp']) await ctx.files.storeBytes(task, name, Buffer.from('x'));
    const del = (key = KEY_A) => inject('DELETE', `/v1/videos/${v.id}`, undefined, { authorization: `Bearer ${key}` });
    error(await del(KEY_B), 404, { code: 'video_not_found' });
    assert.ok(await ctx.files.exists(task, 'video.mp4'), 'another key deletes nothing');
    const res = await del();
    assert.equal(res.statusCode, 200, res.body);
    for (const name of ['video.mp4', 'thumbnail.webp']) assert.equal(await ctx.files.exists(task, name), undefined, `${name} is removed`);
    assert.deepEqual(JSON.parse(res.body), { id: v.id, object: 'video.deleted', deleted: true });
    error(await get(`/v1/videos/${v.id}`), 404, { code: 'video_not_found' });
    error(await del(), 404);
  });

  /** A completed video whose file is a real 1-second H.264 MP4. */
  const rendered = async () => {
    const v = await created(post({ prompt: 'p', size: '1280x720' }));
    await succeed(ctx, v.id);
    const task = await taskOf(v.id);
    const file = await ctx.files.scratch(task, 'video.mp4');
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=320x180:d=1:r=24', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', file]);
    const bytes = readFileSync(file);
    await ctx.files.store(task, 'video.mp4', file);
    return { id: v.id as string, bytes };
  };

  test('content: 409 not ready (no retry) or failed, bad variant; the MP4 with Range; the spritesheet', async () => {
    const v = await created(post({ prompt: 'p', size: '1280x720' }));
    error(await get(`/v1/videos/${v.id}/content`), 409, { code: 'video_not_ready', message: /queued/ });
    error(await get(`/v1/videos/${v.id}/content?variant=poster`), 400, { param: 'variant' });
    error(await get(`/v1/videos/${v.id}/content`, KEY_B), 404, { code: 'video_not_found' });
    const f = await created(post({ prompt: 'p' }));
    await fail(ctx, f.id);
    error(await get(`/v1/videos/${f.id}/content`), 409, { code: 'video_failed' });

    const { id, bytes } = await rendered();
    const mp4 = await get(`/v1/videos/${id}/content`);
    assert.equal(mp4.statusCode, 200);
    assert.equal(mp4.headers['content-type'], 'video/mp4');
    assert.equal(mp4.headers['cache-control'], 'private, max-age=3600');
    assert.deepEqual(mp4.rawPayload, bytes);
    error(await get(`/v1/videos/${id}/content`, KEY_B), 404, { code: 'video_not_found' });
    const range = await app.inject({ method: 'GET', url: `/v1/videos/${id}/content?variant=video`, headers: { authorization: `Bearer ${KEY_A}`, range: 'bytes=10-19' } });
    assert.equal(range.statusCode, 206);
    assert.deepEqual(range.rawPayload, bytes.subarray(10, 20));
    const sprite = await get(`/v1/videos/${id}/content?variant=spritesheet`);
    assert.equal(sprite.statusCode, 200, sprite.body);
    assert.equal(sprite.headers['content-type'], 'image/jpeg');
    assert.deepEqual([...sprite.rawPayload.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  });

  test('content: the thumbnail is a WebP', async () => {
    const { id } = await rendered();
    const thumb = await get(`/v1/videos/${id}/content?variant=thumbnail`);
    assert.equal(thumb.statusCode, 200, thumb.body);
    assert.equal(thumb.headers['content-type'], 'image/webp');
    assert.equal(thumb.rawPayload.toString('latin1', 0, 4), 'RIFF');
    assert.equal(thumb.rawPayload.toString('latin1', 8, 12), 'WEBP');
  });

  test('remix: a completed source only; same size, seconds and images; remixed_from_video_id', async () => {
    const data = `data:image/png;base64,${PNG.toString('base64')}`;
    const src = await created(post({ prompt: 'first', size: '1792x1024', seconds: '8', model: 'sora-2-pro', input_reference: { image_url: data } }));
    const remix = (id: string, body: unknown = { prompt: 'second' }, key = KEY_A) => post(body, key, `/v1/videos/${id}/remix`);
    error(await remix(src.id), 409, { code: 'video_not_ready', param: 'video_id' });
    error(await remix('video_0123456789abcdef0123456789abcdef'), 404, { code: 'video_not_found', param: 'video_id' });
    await succeed(ctx, src.id);
    error(await remix(src.id, { prompt: 'x' }, KEY_B), 404);
    error(await remix(src.id, {}), 400, { param: 'prompt' });
    const r = await created(remix(src.id));
    assert.equal(r.remixed_from_video_id, src.id);
    assert.equal(r.status, 'queued');
    assert.equal(r.prompt, 'second');
    assert.equal(r.size, '1792x1024');
    assert.equal(r.seconds, '8');
    assert.equal(r.model, 'sora-2-pro');
    const [a, b] = [await taskOf(src.id), await taskOf(r.id)];
    assert.deepEqual(b.spec, { ...a.spec, prompt: 'second' });
    assert.deepEqual(b.request, { prompt: 'second', remixed_from_video_id: src.id });
    // Multipart too; a file part is not taken.
    assert.equal((await created(postForm([['prompt', 'third']], KEY_A, `/v1/videos/${src.id}/remix`))).remixed_from_video_id, src.id);
    error(await postForm([['prompt', 'p'], ['input_reference', { bytes: PNG, filename: 'a.png', type: 'image/png' }]], KEY_A, `/v1/videos/${src.id}/remix`), 400, { message: /no file/ });
    const f = await created(post({ prompt: 'p' }));
    await fail(ctx, f.id);
    error(await remix(f.id), 400, { code: 'video_failed', param: 'video_id' });
  });

  test('extensions: the stitched total, the source size, spec.video; by id (JSON, bracket keys) or an MP4 file', async () => {
    const src = await created(post({ prompt: 'first', size: '1280x720', seconds: '4' }));
    const extend = (body: unknown, key = KEY_A) => post(body, key, '/v1/videos/extensions');
    error(await extend({ video: { id: src.id }, prompt: 'more', seconds: '8' }), 409, { code: 'video_not_ready', param: 'video.id' });
    await succeed(ctx, src.id);
    const e = await created(extend({ video: { id: src.id }, prompt: 'more', seconds: '8' }));
    assert.equal(e.seconds, '12');
    assert.equal(e.size, '1280x720');
    assert.equal(e.prompt, 'more');
    assert.equal(e.remixed_from_video_id, null);
    const task = await taskOf(e.id);
    assert.equal(task.spec.video, `task:${src.id}`);
    assert.equal(task.spec.durationSeconds, 8);
    assert.equal(task.spec.aspectRatio, '16:9');
    assert.deepEqual(task.spec.images, []);
    assert.deepEqual(task.request, { video: { id: src.id }, prompt: 'more', seconds: '8', stitched_seconds: '12' });
    // An extension of the extension adds up.
    await succeed(ctx, e.id);
    const e2 = await created(postForm([['video[id]', e.id], ['prompt', 'and more'], ['seconds', '20']], KEY_A, '/v1/videos/extensions'));
    assert.equal(e2.seconds, '32');
    assert.equal((await taskOf(e2.id)).spec.video, `task:${e.id}`);
    // A remix of an extension extends the same source again: as long as the extension.
    const r = await created(post({ prompt: 'again', stitched_seconds: '99' }, KEY_A, `/v1/videos/${e.id}/remix`));
    assert.equal(r.seconds, '12');
    assert.equal((await taskOf(r.id)).spec.video, `task:${src.id}`);

    error(await extend({ video: { id: src.id }, prompt: 'more' }), 400, { param: 'seconds', message: /seconds is required/ });
    error(await extend({ video: { id: src.id }, prompt: 'more', seconds: '6' }), 400, { param: 'seconds' });
    error(await extend({ video: { id: src.id }, seconds: '4' }), 400, { param: 'prompt' });
    error(await extend({ prompt: 'p', seconds: '4' }), 400, { param: 'video' });
    error(await extend({ video: src.id, prompt: 'p', seconds: '4' }), 400, { param: 'video' });
    error(await extend({ video: { id: 'video_0123456789abcdef0123456789abcdef' }, prompt: 'p', seconds: '4' }), 404, { param: 'video.id', code: 'video_not_found' });
    error(await extend({ video: { id: src.id }, prompt: 'p', seconds: '4' }, KEY_B), 404);

    // An uploaded MP4: its size and length are read from the file.
    const dir = tmpDir();
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=180x320:d=2:r=24', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', `${dir}/src.mp4`]);
    const mp4 = readFileSync(`${dir}/src.mp4`);
    const up = await created(postForm([['prompt', 'go on'], ['seconds', '4'], ['video', { bytes: mp4, filename: 'src.mp4', type: 'video/mp4' }]], KEY_A, '/v1/videos/extensions'));
    assert.equal(up.seconds, '6');
    assert.equal(up.size, '180x320', 'the source\'s own size, as an exact frame');
    assert.equal(up.model, 'sora-2');
    const upTask = await taskOf(up.id);
    // The upload is the task's stored source, not part of its record.
    assert.equal(upTask.spec.video, 'upload');
    assert.deepEqual(readFileSync((await ctx.files.local(upTask, SOURCE_FILE))!), mp4);
    assert.ok(JSON.stringify(upTask).length < 10_000, 'no video in the task record');
    assert.deepEqual(upTask.request.video, { filename: 'src.mp4', content_type: 'video/mp4', bytes: mp4.length });
    error(await postForm([['prompt', 'p'], ['seconds', '4'], ['video', { bytes: PNG, filename: 'a.mp4', type: 'video/mp4' }]], KEY_A, '/v1/videos/extensions'), 400, { param: 'video', message: /MP4/ });
  });

  test('edits and characters are not offered: 400 unsupported; unknown paths: 404 in the envelope', async () => {
    error(await post({ prompt: 'p', video: { id: 'video_x' } }, KEY_A, '/v1/videos/edits'), 400, { code: 'unsupported', message: /not offered/ });
    error(await postForm([['name', 'cat'], ['video', { bytes: PNG, filename: 'a.mp4', type: 'video/mp4' }]], KEY_A, '/v1/videos/characters'), 400, { code: 'unsupported' });
    error(await get('/v1/videos/characters/char_123'), 400, { code: 'unsupported' });
    error(await get('/v1/videos/video_x/nope'), 404, { code: 'unknown_url', message: /Invalid URL \(GET \/v1\/videos\/video_x\/nope\)/ });
    error(await inject('PUT', '/v1/videos/video_x', { prompt: 'p' }), 404, { code: 'unknown_url' });
  });

  test('503 while draining (the SDK may retry it); reads still answer', async () => {
    const v = await created(post({ prompt: 'p' }));
    ctx.tasks.draining = true;
    try {
      error(await post({ prompt: 'p' }), 503, { type: 'server_error', code: 'maintenance' });
      assert.equal((await get(`/v1/videos/${v.id}`)).statusCode, 200);
    } finally {
      ctx.tasks.draining = false;
    }
  });
});

describe('openai list (in-process, tenants of their own)', async () => {
  const { app } = await testApp();
  const list = async (query = '', key = KEY_A) => {
    const res = await app.inject({ method: 'GET', url: `/v1/videos${query}`, headers: { authorization: `Bearer ${key}` } });
    return { res, body: JSON.parse(res.body) };
  };
  const make = async (key: string) => JSON.parse((await app.inject({ method: 'POST', url: '/v1/videos', headers: auth(key), payload: { prompt: 'p' } })).body).id as string;

  test('an empty list', async () => {
    const { res, body } = await list();
    assert.equal(res.statusCode, 200);
    assert.deepEqual(body, { object: 'list', data: [], first_id: null, last_id: null, has_more: false });
  });

  test('pages by after/limit/order with has_more; every door\'s tasks; one tenant only', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) mine.push(await make(KEY_A));
    const kie = JSON.parse((await app.inject({ method: 'POST', url: '/api/v1/veo/generate', headers: auth(), payload: { prompt: 'kie' } })).body).data.taskId;
    mine.push(kie);
    const theirs = [await make(KEY_B), await make(KEY_B)];

    const all = (await list('?limit=100&order=asc')).body;
    assert.deepEqual(new Set(all.data.map((v: { id: string }) => v.id)), new Set(mine));
    assert.equal(all.has_more, false);
    assert.equal(all.first_id, all.data[0].id);
    assert.equal(all.last_id, all.data.at(-1).id);
    assert.ok(all.data.every((v: { object: string }) => v.object === 'video'));
    const asc = all.data.map((v: { id: string }) => v.id);
    const desc = (await list()).body.data.map((v: { id: string }) => v.id);
    assert.deepEqual(desc, [...asc].reverse(), 'desc by default');

    const walked: string[] = [];
    let after = '';
    for (let pages = 1; ; pages++) {
      const { body } = await list(`?limit=2${after ? `&after=${after}` : ''}`);
      assert.ok(body.data.length <= 2);
      walked.push(...body.data.map((v: { id: string }) => v.id));
      if (!body.has_more) {
        assert.equal(pages, 3);
        break;
      }
      after = body.last_id;
    }
    assert.deepEqual(walked, desc);
    const ascPage = (await list(`?order=asc&limit=3&after=${asc[1]}`)).body;
    assert.deepEqual(ascPage.data.map((v: { id: string }) => v.id), asc.slice(2, 5));
    assert.equal(ascPage.has_more, true);

    const other = (await list('', KEY_B)).body;
    assert.deepEqual(new Set(other.data.map((v: { id: string }) => v.id)), new Set(theirs));
    // Another tenant's id is no cursor here.
    assert.equal((await list(`?after=${theirs[0]}`)).res.statusCode, 400);
  });

  test('bad parameters: 400 naming them', async () => {
    for (const [query, param] of [['?limit=101', 'limit'], ['?limit=abc', 'limit'], ['?limit=1&limit=2', 'limit'], ['?order=up', 'order'], ['?after=video_nope', 'after']]) {
      const { res, body } = await list(query);
      assert.equal(res.statusCode, 400, query);
      assert.equal(body.error.param, param, query);
      assert.equal(body.error.type, 'invalid_request_error');
    }
  });
});
