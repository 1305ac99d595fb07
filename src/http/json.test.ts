import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testApp } from '../../test/app.js';
import { defaultRouting } from '../routing/config.js';
import { MAX_JSON_DEPTH, jsonDepth } from './json.js';
import { registerUpstreamCallbacks } from './upstream-callbacks.js';

const nested = (levels: number) => '{"x":'.repeat(levels) + '1' + '}'.repeat(levels);

test('jsonDepth counts nested objects and arrays, not brackets inside strings, and stops past the limit', () => {
  assert.equal(jsonDepth('1'), 0);
  assert.equal(jsonDepth('{"prompt":"a"}'), 1);
  assert.equal(jsonDepth('{"a":[1,{"b":[]}],"c":{}}'), 4);
  assert.equal(jsonDepth('{"p":"[[[{{{ not nesting \\" [[[ still in the string"}'), 1);
  assert.equal(jsonDepth('{"p":"a backslash at the end \\\\"}'), 1);
  assert.equal(jsonDepth(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH);
  assert.equal(jsonDepth(nested(10_000)), MAX_JSON_DEPTH + 1, 'stops counting once past the limit');
  assert.equal(jsonDepth(nested(100), 10), 11);
});

test('a body nested too deeply is a 400 on a route outside the dialects too (upstream callbacks), not a 500', async () => {
  const { app } = await testApp();
  registerUpstreamCallbacks(app, defaultRouting(), async () => {});
  const res = await app.inject({ method: 'POST', url: '/upstream-callbacks/local/x', headers: { 'content-type': 'application/json' }, payload: `{"data":${nested(10_000)}}` });
  assert.equal(res.statusCode, 400);
  assert.match(JSON.parse(res.body).error.message, /more than 64 levels deep/);
  const shallow = await app.inject({ method: 'POST', url: '/upstream-callbacks/local/x', headers: { 'content-type': 'application/json' }, payload: '{"data":{}}' });
  assert.equal(shallow.statusCode, 404, 'a wrong label or token is still a plain 404');
});
