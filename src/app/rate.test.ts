import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEY_A, KEY_B, testApp } from '../../test/app.js';
import { CreateRate } from './rate.js';

test('the bucket: a burst of the minute\'s allowance, then one more per 60/n seconds; per tenant; 0 is no limit', () => {
  const r = new CreateRate(6);
  for (let i = 0; i < 6; i++) assert.equal(r.take('a', 1000), 0);
  assert.equal(r.take('a', 1000), 10, 'the next token comes in 10 s');
  assert.equal(r.take('b', 1000), 0, 'another tenant has its own');
  assert.equal(r.take('a', 6000), 5);
  assert.equal(r.take('a', 11_000), 0);
  assert.equal(new CreateRate(0).take('a'), 0);
});

test('past the rate, a create is a 429 in each door\'s envelope with Retry-After; nothing is stored; a replay does not count', async () => {
  const { app, ctx } = await testApp({ REELAY_KEY_CREATES_PER_MINUTE: '2' });
  const post = (url: string, payload: unknown, key = KEY_A, extra: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}`, 'x-goog-api-key': key, 'content-type': 'application/json', ...extra }, payload: JSON.stringify(payload) });
  assert.equal((await post('/reelay/v1/tasks', { model: 'm', prompt: 'one' }, KEY_A, { 'idempotency-key': 'r1' })).statusCode, 200);
  assert.equal((await post('/reelay/v1/tasks', { model: 'm', prompt: 'one' }, KEY_A, { 'idempotency-key': 'r1' })).headers['idempotent-replayed'], 'true');
  assert.equal((await post('/v1/video/create', { model: 'veo3.1-fast', prompt: 'two' })).statusCode, 200);
  const before = (await ctx.tasks.list('tenant0', { limit: 100, order: 'asc' }))!.tasks.length;
  const doors: [string, unknown, (status: number, body: any) => void][] = [
    ['/api/v1/veo/generate', { prompt: 'p' }, (s, b) => assert.deepEqual([s, b.code], [429, 429])],
    ['/v1/video/create', { model: 'veo3.1-fast', prompt: 'p' }, (s, b) => assert.deepEqual([s, b.error.code], [429, 'rate_limit_exceeded'])],
    ['/v1/videos', { prompt: 'p' }, (s, b) => assert.deepEqual([s, b.error.code], [429, 'rate_limit_exceeded'])],
    ['/v1beta/models/veo-3.1-generate-preview:predictLongRunning', { instances: [{ prompt: 'p' }] }, (s, b) => assert.deepEqual([s, b.error.status], [429, 'RESOURCE_EXHAUSTED'])],
    ['/reelay/v1/tasks', { model: 'm', prompt: 'p' }, (s, b) => assert.deepEqual([s, b.code], [429, 'rate_limited'])],
  ];
  for (const [url, payload, check] of doors) {
    const res = await post(url, payload);
    check(res.statusCode, JSON.parse(res.body));
    assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/, url);
    assert.match(res.body, /2 tasks a minute/);
  }
  assert.equal((await ctx.tasks.list('tenant0', { limit: 100, order: 'asc' }))!.tasks.length, before, 'nothing stored');
  assert.equal((await post('/v1/videos', { prompt: 'other key' }, KEY_B)).statusCode, 200, 'another key has its own allowance');
});
