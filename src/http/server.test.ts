import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEY_A, testApp } from '../../test/app.js';

test('a URL that cannot be decoded is a 400 in the envelope of the door it is under, never a 500', async () => {
  const { app } = await testApp();
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${KEY_A}`, 'x-goog-api-key': KEY_A } });
    return { status: res.statusCode, headers: res.headers, body: JSON.parse(res.body) };
  };
  const kie = await get('/api/v1/veo/record-info%E0%A4%A');
  assert.deepEqual([kie.status, kie.body.code, Object.keys(kie.body).sort()], [200, 422, ['code', 'data', 'msg']]);
  const kkiai = await get('/v1/video/query%E0%A4%A');
  assert.deepEqual([kkiai.status, kkiai.body.error.type], [400, 'invalid_request_error']);
  const openai = await get('/v1/videos/%E0%A4%A');
  assert.deepEqual([openai.status, openai.body.error.type, openai.headers['x-should-retry']], [400, 'invalid_request_error', 'false']);
  assert.ok('param' in openai.body.error && 'code' in openai.body.error);
  const gemini = await get('/v1beta/models/veo-3.1-generate-preview/operations/%E0%A4%A');
  assert.deepEqual([gemini.status, gemini.body.error.code, gemini.body.error.status], [400, 400, 'INVALID_ARGUMENT']);
  const other = await get('/elsewhere/%E0%A4%A');
  assert.equal(other.status, 400);
  assert.match(other.body.error.message, /malformed/);
});

test('/healthz says the role; /readyz checks the database and the result storage, 503 when one fails', async () => {
  const { app, ctx } = await testApp();
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.deepEqual(health.json(), { ok: true, role: 'all', draining: false });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json(), { ok: true, role: 'all', draining: false, database: { ok: true }, storage: { ok: true } });
  // The database closed under the server: not ready, and it says why.
  await ctx.store.close();
  const down = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(down.statusCode, 503);
  assert.equal(down.json().database.ok, false);
  assert.match(down.json().database.error, /not open/);
  assert.deepEqual(down.json().storage, { ok: true });
});
