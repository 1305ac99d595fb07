import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KEY_B, auth, testApp } from '../../../test/app.js';
import { makeTask } from '../../../test/fixtures.js';
import { fileToken } from '../../core/ids.js';
import type { Task } from '../../core/task.js';
import { kieTaskId } from './ids.js';

describe('kie dialect over HTTP (in-process)', async () => {
  const { app, ctx } = await testApp();
  const post = (body: unknown, headers: Record<string, string> = auth()) =>
    app.inject({ method: 'POST', url: '/api/v1/veo/generate', headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });
  const get = (url: string, headers: Record<string, string> = auth()) => app.inject({ method: 'GET', url, headers });

  /** Every kie answer is the envelope; business errors are HTTP 200 with the code in the body. */
  function envelope(res: { statusCode: number; headers: Record<string, unknown>; body: string }, code: number, msg?: RegExp) {
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = JSON.parse(res.body);
    assert.deepEqual(Object.keys(body).sort(), ['code', 'data', 'msg']);
    assert.equal(body.code, code, res.body);
    assert.equal(res.statusCode, code === 500 ? 500 : 200);
    if (msg) assert.match(body.msg, msg);
    return body;
  }

  test('generate takes every documented field and answers {code:200, msg:"success", data:{taskId}}', async () => {
    const res = await post({
      prompt: 'A dog playing in a park',
      model: 'veo3',
      watermark: 'MyBrand',
      aspect_ratio: '9:16',
      resolution: '1080p',
      seeds: 12345,
      enableFallback: false,
      enableTranslation: true,
      generationType: 'TEXT_2_VIDEO',
      callBackUrl: 'https://93.184.215.14/cb',
    });
    const body = envelope(res, 200, /^success$/);
    assert.match(body.data.taskId, /^[0-9a-f]{32}$/);
    const task = await ctx.store.getTask('tenant0', body.data.taskId);
    assert.equal(task?.model, 'veo3');
    assert.equal(task?.spec.aspectRatio, '9:16');
    assert.equal(task?.spec.resolution, '1080p');
    assert.equal(task?.spec.upsample, true);
    assert.equal(task?.spec.seed, 12345);
    assert.equal(task?.spec.watermark, 'MyBrand');
    assert.equal(task?.callbackUrl, 'https://93.184.215.14/cb');
  });

  test('the older aspectRatio spelling and the default model', async () => {
    const body = envelope(await post({ prompt: 'p', aspectRatio: '9:16' }), 200);
    const task = await ctx.store.getTask('tenant0', body.data.taskId);
    assert.equal(task?.spec.aspectRatio, '9:16');
    assert.equal(task?.model, 'veo3_fast');
    assert.ok(task!.spec.seed >= 10000 && task!.spec.seed <= 99999, 'a seed is assigned');
  });

  test('record-info of a new task: every seed field, successFlag 0', async () => {
    const created = envelope(await post({ prompt: 'A futuristic city', watermark: 'KieAI' }), 200);
    const body = envelope(await get(`/api/v1/veo/record-info?taskId=${created.data.taskId}`), 200);
    const d = body.data;
    assert.deepEqual(Object.keys(d).sort(), ['completeTime', 'createTime', 'errorCode', 'errorMessage', 'fallbackFlag', 'paramJson', 'response', 'successFlag', 'taskId'].sort());
    assert.equal(d.taskId, created.data.taskId);
    assert.deepEqual(JSON.parse(d.paramJson), { prompt: 'A futuristic city', watermark: 'KieAI' });
    assert.equal(d.successFlag, 0);
    assert.equal(d.response, null);
    assert.match(d.createTime, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.equal(d.fallbackFlag, false);
  });

  test('401 for a missing, malformed or unknown key', async () => {
    envelope(await post({ prompt: 'p' }, { 'content-type': 'application/json' }), 401, /access permissions/);
    envelope(await post({ prompt: 'p' }, { authorization: 'Basic abc', 'content-type': 'application/json' }), 401);
    envelope(await get('/api/v1/veo/record-info?taskId=x', { authorization: 'Bearer sk-nope' }), 401);
  });

  test('404 for an unknown task and for another tenant\'s task', async () => {
    envelope(await get('/api/v1/veo/record-info?taskId=0123456789abcdef0123456789abcdef'), 404);
    const mine = envelope(await post({ prompt: 'p' }), 200);
    envelope(await get(`/api/v1/veo/record-info?taskId=${mine.data.taskId}`, auth(KEY_B)), 404);
    envelope(await get(`/api/v1/veo/get-1080p-video?taskId=${mine.data.taskId}`, auth(KEY_B)), 404);
  });

  test('422 for validation errors, with a message naming the field', async () => {
    envelope(await post({}), 422, /prompt is required/);
    envelope(await post({ prompt: '   ' }), 422, /prompt is required/);
    envelope(await post({ prompt: 42 }), 422, /prompt must be string/);
    envelope(await post({ prompt: 'p', model: 'veo9' }), 422, /model .*veo3, veo3_fast, veo3_lite/);
    envelope(await post({ prompt: 'p', aspect_ratio: '4:3' }), 422, /aspect_ratio/);
    envelope(await post({ prompt: 'p', seeds: 5 }), 422, /seeds/);
    envelope(await post({ prompt: 'p', seeds: '12345' }), 422, /seeds must be integer/);
    envelope(await post({ prompt: 'p', imageUrls: 'https://x/y.png' }), 422, /imageUrls must be array/);
    envelope(await post({ prompt: 'p', imageUrls: ['a', 'b', 'c', 'd'] }), 422, /imageUrls/);
    envelope(await post({ prompt: 'p', enableTranslation: 'yes' }), 422, /enableTranslation/);
    envelope(await post({ prompt: 'p', generationType: 'TEXT_2_VIDEO', imageUrls: ['https://93.184.215.14/a.png'] }), 422, /TEXT_2_VIDEO/);
    envelope(await post({ prompt: 'p', generationType: 'REFERENCE_2_VIDEO' }), 422, /REFERENCE_2_VIDEO/);
    envelope(await post({ prompt: 'p', duration: 5 }), 422, /duration/);
    envelope(await post([1, 2]), 422);
    envelope(await get('/api/v1/veo/record-info'), 422, /taskId is required/);
    envelope(await get('/api/v1/veo/record-info?taskId=a&taskId=b'), 422, /taskId must be given once/);
    envelope(await get('/api/v1/veo/get-1080p-video?taskId=x&index=-1'), 422, /index/);
  });

  test('malformed JSON, wrong content type, oversized body', async () => {
    envelope(await post('{"prompt": '), 422, /not valid JSON/);
    envelope(await post('prompt=x', { ...auth(), 'content-type': 'text/plain' }), 422, /JSON object/);
    envelope(await post('prompt=x', { ...auth(), 'content-type': 'application/x-www-form-urlencoded' }), 422, /Content-Type must be application\/json/);
    envelope(await post({ prompt: 'x'.repeat(70_000) }), 422, /too large/);
    // An unknown field nested 10,000 levels deep (about 60 kB) parses, but could not be stored.
    const deep = (levels: number) => `{"prompt":"p","extra":${'{"x":'.repeat(levels)}1${'}'.repeat(levels)}}`;
    envelope(await post(deep(10_000)), 422, /more than 64 levels deep/);
    envelope(await post(deep(63)), 200);
  });

  test('private and malformed image and callback URLs are refused', async () => {
    envelope(await post({ prompt: 'p', imageUrls: ['http://127.0.0.2/a.png'] }), 451, /Failed to fetch the image.*loopback/);
    envelope(await post({ prompt: 'p', imageUrls: ['http://[::1]/a.png'] }), 451, /loopback/);
    envelope(await post({ prompt: 'p', imageUrls: ['http://[::127.0.0.1]/a.png'] }), 451, /IPv4-compatible/);
    envelope(await post({ prompt: 'p', callBackUrl: 'http://[::127.0.0.1]:9/cb' }), 422, /callback URL refused.*IPv4-compatible/);
    envelope(await post({ prompt: 'p', imageUrls: ['http://localhost/a.png'] }), 451, /loopback/);
    envelope(await post({ prompt: 'p', imageUrls: ['file:///etc/passwd'] }), 451, /http and https/);
    envelope(await post({ prompt: 'p', callBackUrl: 'http://127.0.0.2:9/cb' }), 422, /callback URL refused/);
    envelope(await post({ prompt: 'p', callBackUrl: 'not a url' }), 422, /callback URL refused/);
  });

  test('get-1080p-video of an unfinished task: record status is not success', async () => {
    const created = envelope(await post({ prompt: 'p' }), 200);
    envelope(await get(`/api/v1/veo/get-1080p-video?taskId=${created.data.taskId}&index=0`), 422, /record status is not success/);
  });

  test('455 while draining for maintenance; queries still answer', async () => {
    const created = envelope(await post({ prompt: 'p' }), 200);
    ctx.tasks.draining = true;
    try {
      envelope(await post({ prompt: 'p' }), 455, /maintenance/);
      envelope(await get(`/api/v1/veo/record-info?taskId=${created.data.taskId}`), 200);
    } finally {
      ctx.tasks.draining = false;
    }
  });

  test('an expired task answers the 14-day message', async () => {
    const created = envelope(await post({ prompt: 'p' }), 200);
    const id = created.data.taskId;
    const [t] = await ctx.store.claimDue('x', Date.now() + 1, 1000, 100).then((ts) => ts.filter((t) => t.id === id));
    assert.ok(t);
    await ctx.store.commitStep('x', { taskId: id, patch: { state: 'failed', failureStage: 'generation', completedAt: 1, nextRunAt: null } });
    await ctx.store.markExpired([id], Date.now());
    envelope(await get(`/api/v1/veo/record-info?taskId=${id}`), 422, /^Temporarily supports records within 14 days$/);
  });

  /** A finished task of tenant0, stored as the engine would leave it. */
  async function finished(over: Partial<Task> = {}, spec: Partial<Task["spec"]> = {}): Promise<Task> {
    const task = makeTask({ id: kieTaskId(), tenantId: 'tenant0', dialect: 'kie', model: 'veo3_fast', state: 'succeeded', completedAt: Date.now(), fileToken: fileToken(), nextRunAt: null, ...over }, spec);
    assert.ok(await ctx.store.createTask(task));
    return task;
  }
  const post4k = (body: unknown, headers = auth()) => app.inject({ method: 'POST', url: '/api/v1/veo/get-4k-video', headers, payload: JSON.stringify(body) });
  const postExtend = (body: unknown, headers = auth()) => app.inject({ method: 'POST', url: '/api/v1/veo/extend', headers, payload: JSON.stringify(body) });

  test('get-4k-video: asked once it starts (200, URLs null); asked again, 422 "processing" with the data; once made, 422 "already generated" with the URLs', async () => {
    const task = await finished();
    const first = envelope(await post4k({ taskId: task.id, callBackUrl: 'https://93.184.215.14/cb4k' }), 200, /^success$/);
    assert.deepEqual(first.data, { taskId: task.id, resultUrls: null, imageUrls: null });
    const stored = await ctx.store.getTask('tenant0', task.id);
    assert.equal(stored?.uhdState, 'pending');
    assert.equal(stored?.uhdCallbackUrl, 'https://93.184.215.14/cb4k');
    const again = envelope(await post4k({ taskId: task.id }), 422, /^4k is processing\. It should be ready in 5-10 minutes/);
    assert.deepEqual(again.data, { taskId: task.id, resultUrls: null, imageUrls: null });

    const made = await finished({ uhdState: 'ready' });
    const done = envelope(await post4k({ taskId: made.id }), 422, /^The video has been generated successfully$/);
    assert.equal(done.data.taskId, made.id);
    assert.match(done.data.resultUrls[0], /\/files\/[A-Za-z0-9_-]{22}\/video-4k\.mp4$/);
    assert.match(done.data.imageUrls[0], /\/files\/[A-Za-z0-9_-]{22}\/video-4k\.jpg$/);
  });

  test('get-4k-video asked twice at once: one answer starts it, the other says it is processing', async () => {
    const task = await finished();
    const answers = await Promise.all([post4k({ taskId: task.id }), post4k({ taskId: task.id })]);
    const codes = answers.map((r) => JSON.parse(r.body).code).sort();
    assert.deepEqual(codes, [200, 422]);
    assert.match(JSON.parse(answers.find((r) => JSON.parse(r.body).code === 422)!.body).msg, /^4k is processing/);
  });

  test('get-4k-video refuses: a running task, another tenant\'s, a bad index, a missing taskId, a private callback', async () => {
    const running = envelope(await post({ prompt: 'p' }), 200);
    envelope(await post4k({ taskId: running.data.taskId }), 422, /record status is not success/);
    const task = await finished();
    envelope(await post4k({ taskId: task.id }, auth(KEY_B)), 404);
    envelope(await post4k({ taskId: task.id, index: 1 }), 422, /record result data not exist/);
    envelope(await post4k({}), 422, /taskId is required/);
    envelope(await post4k({ taskId: task.id, callBackUrl: 'http://127.0.0.2/cb' }), 422, /callback URL refused/);
    assert.equal((await ctx.store.getTask('tenant0', task.id))?.uhdState, 'none', 'a refused request changes nothing');
  });

  test('extend: a new task that continues the source with the new prompt, in the source\'s frame', async () => {
    const source = await finished({}, { aspectRatio: '9:16', durationSeconds: 6, images: ['https://93.184.215.14/a.png'], mode: 'frames' });
    const body = envelope(await postExtend({ taskId: source.id, prompt: 'the camera flies on over the sea', seeds: 54321, model: 'quality', callBackUrl: 'https://93.184.215.14/cb' }), 200, /^success$/);
    assert.match(body.data.taskId, /^[0-9a-f]{32}$/);
    assert.notEqual(body.data.taskId, source.id);
    const task = await ctx.store.getTask('tenant0', body.data.taskId);
    assert.equal(task?.model, 'veo3', 'quality is veo3');
    assert.equal(task?.spec.video, `task:${source.id}`);
    assert.equal(task?.spec.prompt, 'the camera flies on over the sea');
    assert.equal(task?.spec.aspectRatio, '9:16');
    assert.equal(task?.spec.seed, 54321);
    assert.deepEqual(task?.spec.images, [], 'the source\'s images are not used again');
    assert.equal(task?.callbackUrl, 'https://93.184.215.14/cb');
    const rec = envelope(await get(`/api/v1/veo/record-info?taskId=${body.data.taskId}`), 200);
    assert.equal(rec.data.successFlag, 0);
    assert.deepEqual(JSON.parse(rec.data.paramJson).taskId, source.id);
  });

  test('extend refuses: unknown or another tenant\'s task, a running one, no prompt, a bad model', async () => {
    envelope(await postExtend({ taskId: '0123456789abcdef0123456789abcdef', prompt: 'p' }), 404);
    const source = await finished();
    envelope(await postExtend({ taskId: source.id, prompt: 'p' }, auth(KEY_B)), 404);
    const running = envelope(await post({ prompt: 'p' }), 200);
    envelope(await postExtend({ taskId: running.data.taskId, prompt: 'p' }), 422, /record status is not success/);
    envelope(await postExtend({ taskId: source.id, prompt: '  ' }), 422, /prompt is required/);
    envelope(await postExtend({ taskId: source.id }), 422, /prompt is required/);
    envelope(await postExtend({ taskId: source.id, prompt: 'p', model: 'veo3' }), 422, /model .*fast, quality, lite/);
  });

  test('extend on a model none of whose providers can extend: refused before anything is stored', async () => {
    const source = await finished();
    const before = (await ctx.store.listTasks('tenant0', { limit: 1000, order: 'asc' }))!.length;
    ctx.tasks.extendable = () => false;
    try {
      envelope(await postExtend({ taskId: source.id, prompt: 'p' }), 422, /model veo3_fast is served by providers that cannot extend this video/);
    } finally {
      ctx.tasks.extendable = () => true;
    }
    assert.equal((await ctx.store.listTasks('tenant0', { limit: 1000, order: 'asc' }))!.length, before);
  });

  test('unknown kie path: 404 in the envelope', async () => {
    envelope(await get('/api/v1/veo/nope'), 404);
  });
});
