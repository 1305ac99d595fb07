import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KEY_B, auth, testApp } from '../../../test/app.js';
import { KKIAI_ID } from './ids.js';
import { KKIAI_MODEL_NAMES } from './models.js';

describe('kkiai dialect over HTTP (in-process)', async () => {
  const { app, ctx } = await testApp();
  const post = (body: unknown, headers: Record<string, string> = auth()) =>
    app.inject({ method: 'POST', url: '/v1/video/create', headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });
  const get = (url: string, headers: Record<string, string> = auth()) => app.inject({ method: 'GET', url, headers });

  function error(res: { statusCode: number; body: string }, status: number, msg?: RegExp) {
    assert.equal(res.statusCode, status, res.body);
    const body = JSON.parse(res.body);
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    if (msg) assert.match(body.error.message, msg);
    return body.error;
  }

  test('every model of the reference list is accepted; ids are <model>:<unix>-<10 alnum>', async () => {
    for (const model of KKIAI_MODEL_NAMES) {
      const res = await post({ model, prompt: 'make animate' });
      assert.equal(res.statusCode, 200, `${model}: ${res.body}`);
      const body = JSON.parse(res.body);
      assert.match(body.id, KKIAI_ID);
      assert.ok(body.id.startsWith(`${model}:`));
      const secs = Number(body.id.split(':')[1].split('-')[0]);
      assert.ok(Math.abs(secs - Date.now() / 1000) < 5);
      assert.equal(body.status, 'pending');
      assert.equal(typeof body.status_update_time, 'number');
      assert.equal(typeof body.enhanced_prompt, 'string');
    }
  });

  test('the seed request: images, enhance_prompt, enable_upsample, aspect_ratio', async () => {
    const req = { enable_upsample: true, enhance_prompt: true, images: ['https://93.184.215.14/w8A.png'], model: 'veo3.1-fast', prompt: 'make animate', aspect_ratio: '16:9' };
    const created = JSON.parse((await post(req)).body);
    assert.match(created.enhanced_prompt, /^make animate\. .+/);
    const res = await get(`/v1/video/query?id=${encodeURIComponent(created.id)}`);
    assert.equal(res.statusCode, 200);
    const q = JSON.parse(res.body);
    assert.equal(q.status, 'pending');
    assert.equal(q.video_url, null);
    assert.deepEqual(q.detail.req, req);
    assert.equal(q.detail.images[0].url, req.images[0]);
    assert.equal(q.detail.images[0].status, 'pending');
    assert.equal(q.detail.error_sleep, 5000);
    assert.equal(q.detail.max_retries, 3);
    assert.equal(q.detail.retry_count, 0);
    assert.equal(q.detail.upsample_status, 'MEDIA_GENERATION_STATUS_PENDING');
    const task = await ctx.store.getTask('tenant0', created.id);
    assert.equal(task?.spec.resolution, '1080p');
    assert.equal(task?.spec.mode, 'frames');
  });

  test('enable_upsample as the string "true" (as one kkiai page types it)', async () => {
    const created = JSON.parse((await post({ model: 'veo3', prompt: 'p', enable_upsample: 'true' })).body);
    assert.equal((await ctx.store.getTask('tenant0', created.id))?.spec.upsample, true);
  });

  test('a kie task renders in the kkiai dialect and the other way round', async () => {
    const kie = await app.inject({ method: 'POST', url: '/api/v1/veo/generate', headers: auth(), payload: { prompt: 'cross' } });
    const kieId = JSON.parse(kie.body).data.taskId;
    const q = JSON.parse((await get(`/v1/video/query?id=${kieId}`)).body);
    assert.equal(q.id, kieId);
    assert.equal(q.status, 'pending');
    const created = JSON.parse((await post({ model: 'veo3', prompt: 'other way' })).body);
    const rec = JSON.parse((await get(`/api/v1/veo/record-info?taskId=${encodeURIComponent(created.id)}`)).body);
    assert.equal(rec.code, 200);
    assert.equal(rec.data.successFlag, 0);
  });

  test('errors: unknown model, missing prompt, wrong types, too many images', async () => {
    error(await post({ model: 'veo9', prompt: 'p' }), 400, /unknown model "veo9"/);
    error(await post({ prompt: 'p' }), 400, /model is required/);
    error(await post({ model: 'veo3' }), 400, /prompt is required/);
    error(await post({ model: 'veo3', prompt: ' ' }), 400, /prompt is required/);
    error(await post({ model: 'veo3', prompt: ['x'] }), 400, /prompt must be string/);
    error(await post({ model: 'veo3', prompt: 'p', aspect_ratio: '1:1' }), 400, /aspect_ratio/);
    error(await post({ model: 'veo3', prompt: 'p', enable_upsample: 'yes' }), 400, /enable_upsample/);
    error(await post({ model: 'veo3', prompt: 'p', images: ['https://93.184.215.14/a.png'] }), 400, /at most 0 images.*veo3-frames/);
    error(await post({ model: 'veo3-pro-frames', prompt: 'p', images: ['https://93.184.215.14/a.png', 'https://93.184.215.14/b.png'] }), 400, /at most 1/);
    error(await post({ model: 'veo3', prompt: 'p', images: ['data:image/png;base64,@@@'] }), 400);
  });

  test('errors: malformed JSON, oversized body, bad key, unknown and foreign ids', async () => {
    error(await post('{"model":'), 400, /not valid JSON/);
    error(await post({ model: 'veo3', prompt: 'x'.repeat(70_000) }), 413, /too large/);
    const deep = `{"model":"veo3","prompt":"p","extra":${'{"x":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    error(await post(deep), 400, /more than 64 levels deep/);
    error(await post({ model: 'veo3', prompt: 'p' }, { 'content-type': 'application/json' }), 401);
    error(await get('/v1/video/query?id=veo3:1770350082-trii1OXZc3'), 404, /not found/);
    error(await get('/v1/video/query?id=veo3:1770350082-trii1OXZc3', { authorization: 'Bearer sk-nope' }), 401);
    error(await get('/v1/video/query?id=veo3:1770350082-trii1OXZc3', {}), 401);
    error(await get('/v1/video/query'), 400, /id is required/);
    error(await get('/v1/video/query?id=a&id=b'), 400, /id must be given once/);
    const created = JSON.parse((await post({ model: 'veo3', prompt: 'p' })).body);
    error(await get(`/v1/video/query?id=${encodeURIComponent(created.id)}`, auth(KEY_B)), 404);
  });

  test('a polled task shows each change at once, and 410 once it has expired', async () => {
    const created = JSON.parse((await post({ model: 'veo3', prompt: 'p' })).body);
    const url = `/v1/video/query?id=${encodeURIComponent(created.id)}`;
    const status = async () => JSON.parse((await get(url)).body).status;
    assert.equal(await status(), 'pending');
    assert.equal(await status(), 'pending'); // answered from memory this time
    const claim = async () => assert.ok((await ctx.store.claimDue('x', Date.now() + 1, 1000, 100)).some((t) => t.id === created.id));
    await claim();
    await ctx.store.commitStep('x', { taskId: created.id, patch: { state: 'generating', nextRunAt: Date.now() } });
    assert.equal(await status(), 'video_generating');
    await claim();
    await ctx.store.commitStep('x', { taskId: created.id, patch: { state: 'failed', failureStage: 'generation', completedAt: Date.now(), nextRunAt: null } });
    assert.equal(await status(), 'video_generation_failed');
    await ctx.store.markExpired([created.id], Date.now());
    error(await get(url), 410, /has expired: results are kept 14 days/);
  });

  test('errors: private image URLs', async () => {
    for (const url of ['http://127.0.0.2/a.png', 'http://[::1]:8080/a.png', 'http://localhost/a.png', 'http://169.254.169.254/latest/meta-data', 'ftp://93.184.215.14/a.png']) {
      error(await post({ model: 'veo3.1', prompt: 'p', images: [url] }), 400, /Failed to fetch the image/);
    }
  });

  test('503 while draining', async () => {
    ctx.tasks.draining = true;
    try {
      error(await post({ model: 'veo3', prompt: 'p' }), 503, /maintenance/);
    } finally {
      ctx.tasks.draining = false;
    }
  });
});
