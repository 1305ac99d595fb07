import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { KEY_A, testApp } from '../../test/app.js';
import { tenantOf } from './auth.js';
import { bearer, bearerToken, googleApiKey } from './credentials.js';

const req = (headers: Record<string, string>, query: Record<string, string> = {}) => ({ headers, query }) as unknown as FastifyRequest;

test('bearer: only a well-formed Authorization: Bearer header gives a token', () => {
  assert.equal(bearerToken('Bearer sk-abc'), 'sk-abc');
  assert.equal(bearerToken('bearer   sk-abc  '), 'sk-abc');
  for (const h of [undefined, '', 'Bearer ', 'Basic sk-abc', 'Bearer sk a', 'sk-abc']) assert.equal(bearerToken(h), undefined, String(h));
  assert.equal(bearer(req({ authorization: 'Bearer sk-1' })), 'sk-1');
  assert.equal(bearer(req({ 'x-goog-api-key': 'sk-1' })), undefined);
});

test('googleApiKey: the x-goog-api-key header, else ?key=, else a Bearer header', () => {
  assert.equal(googleApiKey(req({ 'x-goog-api-key': 'sk-h' }, { key: 'sk-q' })), 'sk-h');
  assert.equal(googleApiKey(req({}, { key: 'sk-q' })), 'sk-q');
  assert.equal(googleApiKey(req({ authorization: 'Bearer sk-b' })), 'sk-b');
  assert.equal(googleApiKey(req({ 'x-goog-api-key': '  ' })), undefined);
  assert.equal(googleApiKey(req({})), undefined);
});

test('tenantOf resolves a key from whichever carrier the dialect reads, and refuses a wrong one', async () => {
  const { ctx } = await testApp();
  assert.equal(await tenantOf(ctx.keys, req({}, { key: KEY_A }), googleApiKey), 'tenant0');
  assert.equal(await tenantOf(ctx.keys, req({ 'x-goog-api-key': KEY_A }), googleApiKey), 'tenant0');
  assert.equal(await tenantOf(ctx.keys, req({ authorization: `Bearer ${KEY_A}` })), 'tenant0');
  await assert.rejects(async () => tenantOf(ctx.keys, req({ 'x-goog-api-key': KEY_A })), { name: 'ApiError', kind: 'unauthorized' });
  await assert.rejects(async () => tenantOf(ctx.keys, req({}, { key: 'sk-nope' }), googleApiKey), { name: 'ApiError', kind: 'unauthorized' });
});
