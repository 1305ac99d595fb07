import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Reelay } from './client.js';
import { ReelayError } from './errors.js';

type Handler = (url: URL, init: RequestInit, n: number) => Response | Promise<Response>;

/** A client whose requests `handler` answers; `calls` records each try. */
function client(handler: Handler, opts: { maxRetries?: number; timeoutMs?: number } = {}) {
  const calls: { url: URL; headers: Headers; method: string }[] = [];
  const reelay = new Reelay({
    baseURL: 'http://reelay.test',
    apiKey: 'sk-test',
    ...opts,
    fetch: async (input, init = {}) => {
      const url = new URL(String(input));
      calls.push({ url, headers: new Headers(init.headers), method: init.method ?? 'GET' });
      return handler(url, init, calls.length);
    },
  });
  return { reelay, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': status < 400 ? 'application/json' : 'application/problem+json', ...headers } });
const problem = (status: number, code: string, extra: Record<string, unknown> = {}) => ({ type: `urn:reelay:error:${code}`, title: 't', status, detail: `a ${code}`, code, ...extra });
const TASK = { id: 'task_1', object: 'task', state: 'queued' };

test('a Retry-After longer than maxRetryDelayMs is not waited for: the 429 is thrown at once, saying when to come back', async () => {
  const { reelay, calls } = client(() => json(429, problem(429, 'rate_limited'), { 'retry-after': '42' }), { maxRetries: 3 });
  const started = Date.now();
  const err = await reelay.create({ model: 'm', prompt: 'p' }).catch((e: unknown) => e);
  assert.ok(err instanceof ReelayError);
  assert.deepEqual([err.status, err.code, err.retryAfterMs], [429, 'rate_limited', 42_000]);
  assert.equal(calls.length, 1, 'not tried again');
  assert.ok(Date.now() - started < 1000);
});

test('a create is tried again after a 503, a 429 and a busy key, with the same Idempotency-Key, waiting what Retry-After asks', async () => {
  const answers = [json(503, problem(503, 'maintenance')), json(429, problem(429, 'rate_limited'), { 'retry-after': '1' }), json(200, TASK)];
  const { reelay, calls } = client(() => answers.shift()!, { maxRetries: 3 });
  const started = Date.now();
  assert.deepEqual(await reelay.create({ model: 'm', prompt: 'p', aspectRatio: '9:16', enhancePrompt: true, webhookUrl: 'https://x.test/cb' }), TASK);
  assert.ok(Date.now() - started >= 950, 'Retry-After: 1 was waited');
  assert.equal(calls.length, 3);
  const keys = new Set(calls.map((c) => c.headers.get('idempotency-key')));
  assert.equal(keys.size, 1, 'one key on every try');
  assert.match([...keys][0]!, /^[0-9a-f-]{36}$/);
  assert.equal(calls[0]!.headers.get('authorization'), 'Bearer sk-test');
  assert.equal(calls[0]!.url.pathname, '/reelay/v1/tasks');

  const busy = client((_u, _i, n) => (n === 1 ? json(409, problem(409, 'in_progress', { param: 'Idempotency-Key' }), { 'retry-after': '0' }) : json(200, TASK)));
  assert.equal((await busy.reelay.create({ model: 'm', prompt: 'p' }, { idempotencyKey: 'order-1' })).id, 'task_1');
  assert.deepEqual(busy.calls.map((c) => c.headers.get('idempotency-key')), ['order-1', 'order-1']);
});

test('other 4xx are never tried again; the problem details make the error', async () => {
  const { reelay, calls } = client(() => json(400, problem(400, 'validation', { param: 'seconds' })));
  const err = await reelay.create({ model: 'm', prompt: 'p' }).catch((e: unknown) => e);
  assert.ok(err instanceof ReelayError);
  assert.deepEqual([err.status, err.code, err.param, err.message, calls.length], [400, 'validation', 'seconds', 'a validation', 1]);

  const conflict = client(() => json(409, problem(409, 'conflict', { task: { ...TASK, state: 'succeeded' } })));
  const late = await conflict.reelay.cancel('task_1').catch((e: unknown) => e);
  assert.ok(late instanceof ReelayError);
  assert.deepEqual([late.code, late.taskId, late.task?.state, conflict.calls.length], ['conflict', 'task_1', 'succeeded', 1]);
});

test('no answer: network errors are tried again, then a network error; a slow answer is a timeout; a body that is not JSON keeps its status', async () => {
  const down = client(() => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED') })), { maxRetries: 1 });
  const err = await down.reelay.get('task_9').catch((e: unknown) => e);
  assert.ok(err instanceof ReelayError);
  assert.deepEqual([err.status, err.code, err.taskId, down.calls.length], [null, 'network', 'task_9', 2]);
  assert.match(err.message, /ECONNREFUSED/);

  const hang: Handler = (_u, init) => new Promise((_r, reject) => init.signal!.addEventListener('abort', () => reject(init.signal!.reason)));
  const slow = client(hang, { maxRetries: 0, timeoutMs: 50 });
  await assert.rejects(slow.reelay.balance(), (e: ReelayError) => e.code === 'timeout' && e.status === null);

  const html = client(() => new Response('<html>bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }), { maxRetries: 0 });
  await assert.rejects(html.reelay.get('task_2'), (e: ReelayError) => e.status === 502 && e.code === 'server_error' && e.taskId === 'task_2');
});

test('an abort ends a request at once, retries and all, with the signal\'s reason', async () => {
  const { reelay, calls } = client(() => json(503, problem(503, 'maintenance'), { 'retry-after': '5' }));
  const ctl = new AbortController();
  const reason = new Error('enough');
  setTimeout(() => ctl.abort(reason), 100);
  const started = Date.now();
  await assert.rejects(reelay.get('task_1', { signal: ctl.signal }), (e) => e === reason);
  assert.ok(Date.now() - started < 5_000);
  assert.equal(calls.length, 1);
});

test('list sends its filters in the wire\'s words, and walks the pages by next_cursor', async () => {
  const pages: Record<string, unknown> = {
    '': { object: 'list', data: [{ id: 't1' }, { id: 't2' }], has_more: true, next_cursor: 't2' },
    t2: { object: 'list', data: [{ id: 't3' }], has_more: false, next_cursor: null },
  };
  const { reelay, calls } = client((url) => json(200, pages[url.searchParams.get('after') ?? '']));
  const ids: string[] = [];
  for await (const t of reelay.list({ state: ['failed', 'canceled'], createdFrom: new Date('2026-01-01T00:00:00Z'), limit: 2, order: 'asc' })) ids.push(t.id);
  assert.deepEqual(ids, ['t1', 't2', 't3']);
  assert.deepEqual(Object.fromEntries(calls[1]!.url.searchParams), { state: 'failed,canceled', created_from: '2026-01-01T00:00:00.000Z', order: 'asc', limit: '2', after: 't2' });
  assert.deepEqual(await reelay.list({ limit: 2 }), { data: [{ id: 't1' }, { id: 't2' }], nextCursor: 't2', hasMore: true });
});

test('a download whose body is shorter than its Content-Length leaves nothing at `to`, nor a temporary file', async () => {
  const { mkdtemp, readdir } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'reelay-client-'));
  const task = { ...TASK, state: 'succeeded', outputs: { video: 'http://reelay.test/files/t/video.mp4', video_720p: null, video_1080p: null, video_4k: null } } as never;
  const short = client(() => new Response('only part', { status: 200, headers: { 'content-type': 'video/mp4', 'content-length': '1000' } }), { maxRetries: 0 });
  const err = await short.reelay.download(task, { to: join(dir, 'out.mp4') }).catch((e: unknown) => e);
  assert.ok(err instanceof ReelayError, String(err));
  assert.equal(err.code, 'network');
  assert.match(err.message, /ended after 9 of 1000 bytes/);
  assert.deepEqual(await readdir(dir), []);
  const whole = client(() => new Response('all of it', { status: 200, headers: { 'content-type': 'video/mp4', 'content-length': '9' } }), { maxRetries: 0 });
  assert.deepEqual(await whole.reelay.download(task, { to: join(dir, 'out.mp4') }), { path: join(dir, 'out.mp4'), bytes: 9 });
  assert.deepEqual(await readdir(dir), ['out.mp4']);
});
