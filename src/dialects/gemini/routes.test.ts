import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { KEY_A, KEY_B, auth, testApp } from '../../../test/app.js';
import type { Task } from '../../core/task.js';
import { SOURCE_FILE } from '../../results/files.js';
import { GEMINI_ID } from './ids.js';
import { gemini } from './index.js';
import { taskUrls } from '../../results/files.js';

const MODELS = ['veo-3.1-generate-preview', 'veo-3.1-fast-generate-preview', 'veo-3.1-lite-generate-preview', 'veo-3.0-generate-001', 'veo-3.0-fast-generate-001', 'veo-2.0-generate-001', 'veo-3.1-generate-001'];
/** A 1×1 PNG's first bytes: enough for the request checks (the engine is off here). */
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'), Buffer.alloc(200)]).toString('base64');

describe('gemini dialect over HTTP (in-process)', async () => {
  const { app, ctx } = await testApp();
  const goog = (key = KEY_A) => ({ 'x-goog-api-key': key, 'content-type': 'application/json' });
  const predict = (body: unknown, headers: Record<string, string> = goog(), model = 'veo-3.1-generate-preview', query = '') =>
    app.inject({ method: 'POST', url: `/v1beta/models/${model}:predictLongRunning${query}`, headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });
  // The SDK sends Content-Type: application/json on its bodiless GETs too.
  const get = (url: string, headers: Record<string, string> = goog()) => app.inject({ method: 'GET', url, headers });
  const text = (prompt = 'a lighthouse at dusk', parameters: Record<string, unknown> = {}) => ({ instances: [{ prompt }], parameters });

  async function created(body: unknown = text(), headers = goog(), model = 'veo-3.1-generate-preview'): Promise<{ name: string; id: string }> {
    const res = await predict(body, headers, model);
    assert.equal(res.statusCode, 200, res.body);
    const { name } = JSON.parse(res.body);
    assert.deepEqual(Object.keys(JSON.parse(res.body)), ['name'], 'the bare Operation');
    return { name, id: name.split('/operations/')[1] };
  }

  /** Google's error envelope with the real HTTP status. */
  function error(res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number, rpc: string, msg?: RegExp) {
    assert.equal(res.statusCode, status, res.body);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = JSON.parse(res.body);
    assert.deepEqual(Object.keys(body), ['error']);
    assert.equal(body.error.code, status);
    assert.equal(body.error.status, rpc);
    assert.equal(typeof body.error.message, 'string');
    if (msg) assert.match(body.error.message, msg);
    return body.error;
  }

  /** Moves a stored task on, as an engine would commit it. */
  async function advance(id: string, patch: Partial<Task>): Promise<void> {
    await ctx.store.claimDue('x', Date.now() + 1, 1000, 100);
    await ctx.store.commitStep('x', { taskId: id, patch: { nextRunAt: Date.now(), ...patch } });
  }
  /** A task that succeeded, with `bytes` as its stored video. */
  async function succeeded(bytes: Buffer, headers = goog()): Promise<{ name: string; id: string; task: Task }> {
    const op = await created(text('finished'), headers);
    await advance(op.id, { state: 'generating' });
    await advance(op.id, { state: 'succeeded', completedAt: Date.now(), nextRunAt: null });
    const task = (await ctx.tasks.get(headers['x-goog-api-key'] === KEY_B ? 'tenant1' : 'tenant0', op.id))!;
    await ctx.files.storeBytes(task, 'video.mp4', bytes);
    return { ...op, task };
  }
  const operation = async (name: string, headers = goog()) => {
    const res = await get(`/v1beta/${name}`, headers);
    assert.equal(res.statusCode, 200, res.body);
    return JSON.parse(res.body);
  };

  test('every Veo model is accepted; the answer is the Operation name models/{model}/operations/{32 hex}', async () => {
    for (const model of MODELS) {
      const { name, id } = await created(text(), goog(), model);
      assert.ok(name.startsWith(`models/${model}/operations/`), name);
      assert.match(id, GEMINI_ID);
      const task = await ctx.store.getTask('tenant0', id);
      assert.equal(task?.dialect, 'gemini');
      assert.equal(task?.model, model);
      assert.deepEqual(task?.request, text());
    }
  });

  test('a model that is not Veo, or another method, is 404 NOT_FOUND as Google answers it', async () => {
    error(await predict(text(), goog(), 'gemini-2.5-flash'), 404, 'NOT_FOUND', /models\/gemini-2.5-flash is not found for API version v1beta/);
    const other = await app.inject({ method: 'POST', url: '/v1beta/models/veo-3.1-generate-preview:generateContent', headers: goog(), payload: '{}' });
    error(other, 404, 'NOT_FOUND', /not supported for generateContent/);
    error(await app.inject({ method: 'POST', url: '/v1beta/models/veo-3.1-generate-preview', headers: goog(), payload: '{}' }), 404, 'NOT_FOUND');
  });

  test('the key: x-goog-api-key, ?key= or Bearer; none is 403 PERMISSION_DENIED, a wrong one 400 "API key not valid"', async () => {
    await created(text(), goog());
    assert.equal((await predict(text(), { 'content-type': 'application/json' }, 'veo-3.1-generate-preview', `?key=${KEY_A}`)).statusCode, 200);
    assert.equal((await predict(text(), auth())).statusCode, 200);
    error(await predict(text(), { 'content-type': 'application/json' }), 403, 'PERMISSION_DENIED', /unregistered callers/);
    const bad = error(await predict(text(), goog('sk-nope')), 400, 'INVALID_ARGUMENT', /^API key not valid/);
    assert.equal(bad.details[0].reason, 'API_KEY_INVALID');
    error(await get('/v1beta/models/veo-3.1-generate-preview/operations/abc?key=sk-nope', {}), 400, 'INVALID_ARGUMENT', /API key not valid/);
    error(await get('/v1beta/models/veo-3.1-generate-preview/operations/abc', {}), 403, 'PERMISSION_DENIED');
  });

  test('every field reaches the spec: images in each encoding, frames, references, parameters, seed', async () => {
    const image = (i: number) => [{ bytesBase64Encoded: PNG, mimeType: 'image/png' }, { inlineData: { mimeType: 'image/png', data: PNG } }, { imageBytes: PNG, mimeType: 'image/png' }][i];
    for (let i = 0; i < 3; i++) {
      const { id } = await created({ instances: [{ prompt: 'p', image: image(i) }] });
      const task = await ctx.store.getTask('tenant0', id);
      assert.deepEqual(task?.spec.images, [`data:image/png;base64,${PNG}`]);
      assert.equal(task?.spec.mode, 'frames');
      assert.match(JSON.stringify(task?.request), /<\d+ bytes>/, 'the stored request does not repeat the bytes');
    }
    const frames = await created({ instances: [{ prompt: 'p', image: image(0), lastFrame: image(1) }], parameters: { aspectRatio: '9:16', durationSeconds: '6' } });
    const f = (await ctx.store.getTask('tenant0', frames.id))!.spec;
    assert.deepEqual([f.mode, f.images.length, f.aspectRatio, f.durationSeconds], ['frames', 2, '9:16', 6]);
    const refs = await created({ instances: [{ prompt: 'p', referenceImages: [0, 1, 2].map((i) => ({ image: image(i), referenceType: i ? 'ASSET' : 'asset' })) }], parameters: { durationSeconds: 8 } });
    const r = (await ctx.store.getTask('tenant0', refs.id))!.spec;
    assert.deepEqual([r.mode, r.images.length], ['reference', 3]);
    const full = await created({
      instances: [{ prompt: 'p' }],
      parameters: { aspectRatio: '16:9', resolution: '4k', durationSeconds: 8, negativePrompt: 'blur', personGeneration: 'allow_all', sampleCount: 1, enhancePrompt: true, seed: 99, generateAudio: true },
      webhookConfig: { uris: ['https://hooks.example/veo'], userMetadata: { job: 'a' } },
    });
    const task = (await ctx.store.getTask('tenant0', full.id))!;
    assert.deepEqual([task.spec.resolution, task.spec.upsample, task.spec.seed, task.spec.enhancePrompt], ['4k', true, 99, true]);
    assert.deepEqual(task.request.webhookConfig, { uris: ['https://hooks.example/veo'], userMetadata: { job: 'a' } }, 'stored as sent');
    assert.equal(task.callbackUrl, 'https://hooks.example/veo', 'the URI the done Operation is sent to');
  });

  test('webhookConfig.uris: one http(s) URI, called with the done Operation; more, or another scheme, is 400; a private address is refused', async () => {
    for (const uris of [['https://a.example/1', 'https://a.example/2'], ['ftp://a.example/x'], 'https://a.example', [3]]) {
      const res = await predict({ ...text(), webhookConfig: { uris } });
      assert.equal(res.statusCode, 400, JSON.stringify(uris));
      assert.match(JSON.parse(res.body).error.message, /webhookConfig\.uris/);
    }
    const refused = await predict({ ...text(), webhookConfig: { uris: ['http://169.254.169.254/latest'] } });
    assert.equal(refused.statusCode, 400);
    assert.match(JSON.parse(refused.body).error.message, /callback URL refused/);
    const plain = await created({ ...text(), webhookConfig: { userMetadata: { a: 1 } } });
    assert.equal((await ctx.store.getTask('tenant0', plain.id))!.callbackUrl, null);
    // What is sent: the Operation as a poll answers it once done.
    const hooked = await created({ ...text(), webhookConfig: { uris: ['https://hooks.example/done'] } });
    const task = (await ctx.store.getTask('tenant0', hooked.id))!;
    const env = { publicUrl: ctx.config.publicUrl, retentionMs: ctx.config.retentionMs };
    const done = { ...task, state: 'failed' as const, lastError: 'no', lastErrorKind: 'upstream' as const, failureStage: 'generation' as const };
    const cb = gemini.callback!(done, taskUrls(ctx.files, done), undefined, env)!;
    assert.equal(cb.url, 'https://hooks.example/done');
    assert.deepEqual(JSON.parse(cb.body), { name: hooked.name, done: true, error: { code: 13, message: 'no' } });
    assert.equal(gemini.callback!(done, taskUrls(ctx.files, done), 'uhd', env), undefined);
    assert.equal(gemini.callback!({ ...done, callbackUrl: null }, taskUrls(ctx.files, done), undefined, env), undefined);
  });

  test('an extension: a video uri of the tenant\'s finished task, or its bytes; another tenant\'s is not found', async () => {
    const source = await succeeded(Buffer.from('mp4'));
    const uri = `${ctx.config.publicUrl}/v1beta/files/${source.id}:download?alt=media`;
    const ext = await created({ instances: [{ prompt: 'and then', video: { uri, encoding: 'video/mp4' } }] });
    assert.equal((await ctx.store.getTask('tenant0', ext.id))?.spec.video, `task:${source.id}`);
    const bytes = await created({ instances: [{ prompt: 'and then', video: { encodedVideo: 'AAAAGGZ0eXA=', encoding: 'video/mp4' } }] });
    const upTask = (await ctx.store.getTask('tenant0', bytes.id))!;
    assert.equal(upTask.spec.video, 'upload', 'the bytes are the task\'s stored source, not part of its record');
    assert.deepEqual(readFileSync((await ctx.files.local(upTask, SOURCE_FILE))!), Buffer.from('AAAAGGZ0eXA=', 'base64'));
    error(await predict({ instances: [{ prompt: 'x', video: { uri } }] }, goog(KEY_B)), 404, 'NOT_FOUND', /no task .* to extend/);
    const running = await created();
    error(await predict({ instances: [{ prompt: 'x', video: { uri: `files/${running.id}` } }] }), 400, 'INVALID_ARGUMENT', /only a finished video can be extended/);
  });

  test('validation errors: 400 INVALID_ARGUMENT naming the field', async () => {
    error(await predict({ instances: [{ prompt: 'p', image: { gcsUri: 'gs://b/i.png', mimeType: 'image/png' } }] }), 400, 'INVALID_ARGUMENT', /image.gcsUri is not supported/);
    error(await predict(text('p', { sampleCount: 2 })), 400, 'INVALID_ARGUMENT', /sampleCount must be 1/);
    error(await predict(text('p', { durationSeconds: 5 })), 400, 'INVALID_ARGUMENT', /durationSeconds must be 4, 6 or 8/);
    error(await predict(text('p', { durationSeconds: 4, resolution: '1080p' })), 400, 'INVALID_ARGUMENT', /must be 8 with resolution 1080p/);
    error(await predict(text('p', { aspectRatio: '4:3' })), 400, 'INVALID_ARGUMENT', /aspectRatio/);
    error(await predict({ instances: [{ prompt: 'p', image: { bytesBase64Encoded: '***' } }] }), 400, 'INVALID_ARGUMENT', /not valid base64/);
    error(await predict({ instances: [] }), 400, 'INVALID_ARGUMENT', /exactly one instance/);
    error(await predict({ instances: [{}] }), 400, 'INVALID_ARGUMENT', /prompt is required/);
    error(await predict('{"instances": ['), 400, 'INVALID_ARGUMENT', /not valid JSON/);
    error(await predict('[1]'), 400, 'INVALID_ARGUMENT', /JSON object/);
    // The create takes bodies past REELAY_BODY_LIMIT_BYTES (64 kB here): a video may come inline.
    error(await predict(text('x'.repeat(70_000))), 400, 'INVALID_ARGUMENT', /prompt is longer than 20000 characters/);
    const inline = { instances: [{ prompt: 'p', video: { encodedVideo: Buffer.alloc(200_000, 7).toString('base64'), encoding: 'video/mp4' } }] };
    assert.equal((await predict(inline)).statusCode, 200, 'a 270 kB create with a video inline');
    error(await predict(text('x'.repeat(29 * 1024 * 1024))), 400, 'INVALID_ARGUMENT', /too large/);
    error(await predict('p', { ...goog(), 'content-type': 'text/plain' }), 400, 'INVALID_ARGUMENT');
    const deep = (levels: number) => `{"instances":[{"prompt":"p"}],"extra":${'{"x":'.repeat(levels)}1${'}'.repeat(levels)}}`;
    error(await predict(deep(10_000)), 400, 'INVALID_ARGUMENT', /more than 64 levels deep/);
    error(await predict({ instances: [{ prompt: 'x', video: { uri: 'https://h/v1beta/files/%E0%A4%A:download' } }] }), 400, 'INVALID_ARGUMENT', /uri must be the uri of a video made here/);
  });

  test('a video made through another door downloads by its uri: the file id is lowercase [a-z0-9] whatever the task id', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/videos', headers: auth(), payload: { prompt: 'made by the OpenAI door', seconds: '4' } });
    const id: string = JSON.parse(res.body).id;
    assert.match(id, /^video_/);
    await ctx.store.claimDue('x', Date.now() + 1, 1000, 100);
    await ctx.store.commitStep('x', { taskId: id, patch: { state: 'succeeded', completedAt: Date.now(), nextRunAt: null } });
    const task = (await ctx.tasks.get('tenant0', id))!;
    await ctx.files.storeBytes(task, 'video.mp4', Buffer.from('the bytes'));
    const op = await operation(`models/sora-2/operations/${id}`);
    const uri: string = op.response.generateVideoResponse.generatedSamples[0].video.uri;
    const fileId = /files\/([^:]+):download/.exec(uri)![1]!;
    assert.equal(/[a-z0-9]+/.exec(fileId)![0], fileId, 'what files.download keeps of it is all of it');
    const file = await get(`/v1beta/files/${fileId}:download?alt=media`, goog());
    assert.equal(file.statusCode, 200);
    assert.equal(file.body, 'the bytes');
    // And it can be extended by that uri.
    const ext = await created({ instances: [{ prompt: 'and then', video: { uri } }] });
    assert.equal((await ctx.store.getTask('tenant0', ext.id))?.spec.video, `task:${id}`);
  });

  test('the operation: {name} while running (GET with a JSON content type and no body), done with the video\'s uri once succeeded', async () => {
    const { name, id } = await created();
    assert.deepEqual(await operation(name), { name });
    assert.deepEqual(await operation(name), { name }, 'again, from memory');
    assert.deepEqual(await operation(name, { 'content-type': 'application/json' , 'x-goog-api-key': KEY_A }), { name });
    const byQuery = await get(`/v1beta/${name}?key=${KEY_A}`, {});
    assert.equal(byQuery.statusCode, 200);
    await advance(id, { state: 'generating' });
    assert.deepEqual(await operation(name), { name });
    await advance(id, { state: 'succeeded', completedAt: Date.now(), nextRunAt: null });
    const done = await operation(name);
    assert.equal(done.done, true);
    assert.equal(done.response['@type'], 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse');
    assert.deepEqual(done.response.generateVideoResponse.generatedSamples, [{ video: { uri: `${ctx.config.publicUrl}/v1beta/files/${id}:download?alt=media`, encoding: 'video/mp4' } }]);
  });

  test('failures: the RAI shape for content policy, error {code, message} otherwise; expired is done with 5', async () => {
    const rai = await created();
    await advance(rai.id, { state: 'failed', failureStage: 'generation', lastErrorKind: 'content_policy', lastError: 'unsafe prompt', completedAt: Date.now(), nextRunAt: null });
    const r = await operation(rai.name);
    assert.equal(r.done, true);
    assert.equal(r.error, undefined);
    assert.equal(r.response.generateVideoResponse.raiMediaFilteredCount, 1);
    assert.deepEqual(r.response.generateVideoResponse.raiMediaFilteredReasons, ['unsafe prompt']);
    assert.equal(r.response.generateVideoResponse.generatedSamples, undefined);
    const bad = await created();
    await advance(bad.id, { state: 'failed', failureStage: 'input', lastErrorKind: 'image_fetch', lastError: 'not an image', completedAt: Date.now(), nextRunAt: null });
    assert.deepEqual((await operation(bad.name)).error, { code: 3, message: 'not an image' });
    const slow = await created();
    await advance(slow.id, { state: 'failed', failureStage: 'generation', lastErrorKind: 'timeout', lastError: 'Timeout: stuck', completedAt: Date.now(), nextRunAt: null });
    assert.deepEqual((await operation(slow.name)).error, { code: 4, message: 'Timeout: stuck' });
    await ctx.store.markExpired([slow.id], Date.now());
    const expired = await operation(slow.name);
    assert.equal(expired.done, true);
    assert.equal(expired.error.code, 5);
    assert.match(expired.error.message, /has expired: results are kept 14 days/);
    error(await get(`/v1beta/files/${slow.id}:download?alt=media`), 404, 'NOT_FOUND', /has expired/);
  });

  test('isolation: another tenant\'s operation and file are not found; unknown ids too', async () => {
    const { name, id } = await created();
    error(await get(`/v1beta/${name}`, goog(KEY_B)), 404, 'NOT_FOUND', /not found/);
    error(await get(`/v1beta/files/${id}:download?alt=media`, goog(KEY_B)), 404, 'NOT_FOUND');
    error(await get(`/v1beta/files/${id}`, goog(KEY_B)), 404, 'NOT_FOUND');
    error(await get('/v1beta/models/veo-3.1-generate-preview/operations/0123456789abcdef0123456789abcdef'), 404, 'NOT_FOUND', /Operation .* not found/);
    error(await get('/v1beta/models/veo-3.1-generate-preview/operations/'), 404, 'NOT_FOUND');
  });

  test('tasks of the other doors poll here too, named with their own model', async () => {
    const kie = JSON.parse((await app.inject({ method: 'POST', url: '/api/v1/veo/generate', headers: auth(), payload: { prompt: 'cross' } })).body).data.taskId;
    assert.deepEqual(await operation(`models/veo3_fast/operations/${kie}`), { name: `models/veo3_fast/operations/${kie}` });
    const kk = JSON.parse((await app.inject({ method: 'POST', url: '/v1/video/create', headers: auth(), payload: { model: 'veo3.1-fast', prompt: 'cross' } })).body).id;
    const op = await operation(`models/any/operations/${encodeURIComponent(kk)}`);
    assert.equal(op.name, `models/veo3.1-fast/operations/${encodeURIComponent(kk)}`);
    // And a task of this door shows in the kie dialect.
    const mine = await created();
    const rec = JSON.parse((await get(`/api/v1/veo/record-info?taskId=${mine.id}`, auth())).body);
    assert.equal(rec.data.successFlag, 0);
  });

  test('files: the video with the key (header or ?key=), Range, its File resource; not before it is made', async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    const { id } = await succeeded(bytes);
    const url = `/v1beta/files/${id}:download?alt=media`;
    const res = await get(url);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'video/mp4');
    assert.equal(res.headers['cache-control'], 'private, max-age=86400');
    assert.deepEqual(res.rawPayload, bytes);
    assert.deepEqual((await get(`${url}&key=${KEY_A}`, {})).rawPayload, bytes);
    const range = await get(url, { ...goog(), range: 'bytes=10-19' });
    assert.equal(range.statusCode, 206);
    assert.deepEqual(range.rawPayload, bytes.subarray(10, 20));
    error(await get(url, {}), 403, 'PERMISSION_DENIED');
    const meta = JSON.parse((await get(`/v1beta/files/${id}`)).body);
    assert.equal(meta.name, `files/${id}`);
    assert.equal(meta.state, 'ACTIVE');
    assert.equal(meta.sizeBytes, '1000');
    assert.equal(meta.downloadUri, `${ctx.config.publicUrl}${url}`);
    const running = await created();
    error(await get(`/v1beta/files/${running.id}:download?alt=media`), 400, 'FAILED_PRECONDITION', /not ready/);
    assert.equal(JSON.parse((await get(`/v1beta/files/${running.id}`)).body).state, 'PROCESSING');
    error(await get('/v1beta/files/0123456789abcdef0123456789abcdef:download?alt=media'), 404, 'NOT_FOUND');
  });

  test('unknown paths under /v1beta: 404 NOT_FOUND in the envelope', async () => {
    error(await get('/v1beta/nope'), 404, 'NOT_FOUND', /GET \/v1beta\/nope/);
    error(await get('/v1beta/models/veo-3.1-generate-preview'), 404, 'NOT_FOUND');
  });

  test('503 UNAVAILABLE while draining; polls still answer', async () => {
    const { name } = await created();
    ctx.tasks.draining = true;
    try {
      error(await predict(text()), 503, 'UNAVAILABLE', /draining/);
      assert.deepEqual(await operation(name), { name });
    } finally {
      ctx.tasks.draining = false;
    }
  });
});
