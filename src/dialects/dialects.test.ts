import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { KEY_A, KEY_B, testApp } from '../../test/app.js';
import { DIALECTS } from './index.js';

// Each door's own create, as its clients send it, and its read of any task by id.
const CREATE: Record<string, { url: string; payload: unknown; id: (body: any) => string }> = {
  kie: { url: '/api/v1/veo/generate', payload: { prompt: 'p' }, id: (b) => b.data.taskId },
  kkiai: { url: '/v1/video/create', payload: { model: 'veo3.1-fast', prompt: 'p' }, id: (b) => b.id },
  openai: { url: '/v1/videos', payload: { prompt: 'p' }, id: (b) => b.id },
  gemini: { url: '/v1beta/models/veo-3.1-generate-preview:predictLongRunning', payload: { instances: [{ prompt: 'p' }] }, id: (b) => b.name.split('/operations/')[1] },
  reelay: { url: '/reelay/v1/tasks', payload: { model: 'veo3.1-fast', prompt: 'p' }, id: (b) => b.id },
};
const READ: Record<string, (id: string) => string> = {
  kie: (id) => `/api/v1/veo/record-info?taskId=${encodeURIComponent(id)}`,
  kkiai: (id) => `/v1/video/query?id=${encodeURIComponent(id)}`,
  openai: (id) => `/v1/videos/${encodeURIComponent(id)}`,
  gemini: (id) => `/v1beta/models/any/operations/${encodeURIComponent(id)}`,
  reelay: (id) => `/reelay/v1/tasks/${encodeURIComponent(id)}`,
};
/** Whether a door's answer to a read names a task (each door's own not-found is told apart). */
const FOUND: Record<string, (status: number, body: any) => boolean> = {
  kie: (_s, b) => b.code === 200,
  kkiai: (s) => s === 200,
  openai: (s) => s === 200,
  gemini: (s) => s === 200,
  reelay: (s) => s === 200,
};

test('the list of dialects: distinct names, prefixes that do not overlap, and each door\'s create and read written down here', () => {
  const names = DIALECTS.map((d) => d.name);
  assert.equal(new Set(names).size, names.length);
  for (const a of DIALECTS) {
    for (const b of DIALECTS) if (a !== b) assert.ok(!`${a.prefix}/`.startsWith(`${b.prefix}/`), `${a.prefix} is under ${b.prefix}`);
  }
  assert.deepEqual(Object.keys(CREATE).sort(), [...names].sort(), 'a new door gets its cases here');
});

test('each dialect makes ids in its own format, all different', () => {
  for (const d of DIALECTS) {
    const ids = Array.from({ length: 500 }, () => d.newId('veo3.1-fast'));
    for (const id of ids) assert.match(id, d.idFormat, d.name);
    assert.equal(new Set(ids).size, ids.length, d.name);
  }
});

test('each dialect reads the key where its clients put it', () => {
  const req = (headers: Record<string, string>, query: Record<string, string> = {}) => ({ headers, query }) as unknown as FastifyRequest;
  for (const d of DIALECTS) {
    assert.equal(d.credentials(req({ authorization: 'Bearer sk-1' })), 'sk-1', d.name);
    assert.equal(d.credentials(req({})), undefined, d.name);
  }
  const gemini = DIALECTS.find((d) => d.name === 'gemini')!;
  assert.equal(gemini.credentials(req({ 'x-goog-api-key': 'sk-2' })), 'sk-2');
  assert.equal(gemini.credentials(req({}, { key: 'sk-3' })), 'sk-3');
});

test('a task made through any door is seen through every door, with the id format of the door that made it; never through another key', async () => {
  const { app } = await testApp();
  const headers = (key: string) => ({ authorization: `Bearer ${key}`, 'x-goog-api-key': key, 'content-type': 'application/json' });
  for (const maker of DIALECTS) {
    const c = CREATE[maker.name]!;
    const res = await app.inject({ method: 'POST', url: c.url, headers: headers(KEY_A), payload: JSON.stringify(c.payload) });
    assert.equal(res.statusCode, 200, `${maker.name}: ${res.body}`);
    const id = c.id(JSON.parse(res.body));
    assert.match(id, maker.idFormat, maker.name);
    for (const reader of DIALECTS) {
      const mine = await app.inject({ method: 'GET', url: READ[reader.name]!(id), headers: headers(KEY_A) });
      assert.ok(FOUND[reader.name]!(mine.statusCode, JSON.parse(mine.body)), `${reader.name} sees ${maker.name}'s task: ${mine.body}`);
      const theirs = await app.inject({ method: 'GET', url: READ[reader.name]!(id), headers: headers(KEY_B) });
      assert.ok(!FOUND[reader.name]!(theirs.statusCode, JSON.parse(theirs.body)), `${reader.name} hides ${maker.name}'s task from another key`);
    }
  }
});
