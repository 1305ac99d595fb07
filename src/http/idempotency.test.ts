import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEY_A, KEY_B, auth, testApp } from '../../test/app.js';
import { KEY_HOLD_MS, fingerprint, idempotencyKeyOf } from './idempotency.js';

type Res = { statusCode: number; body: string; headers: Record<string, unknown> };

/**
 * `Idempotency-Key` at every create endpoint, in each dialect's envelope: a repeat gets the first
 * answer byte for byte, a changed request 422, a repeat while the first runs 409 with
 * `Retry-After`, and a request that failed stores nothing.
 */
test('Idempotency-Key: kie, kkiai, OpenAI and Gemini creates are answered once per key, per tenant and endpoint', async () => {
  const { app, ctx } = await testApp();
  const post = (url: string, body: unknown, key: string | undefined, headers: Record<string, string> = auth()) =>
    app.inject({ method: 'POST', url, headers: { ...headers, ...(key === undefined ? {} : { 'idempotency-key': key }) }, payload: JSON.stringify(body) }) as Promise<Res>;
  const count = async () => (await ctx.store.listTasks('tenant0', { limit: 1000, order: 'asc' }))!.length;
  const holdByHand = (scope: string, url: string, body: unknown, key: string) =>
    ctx.store.takeKey({ tenantId: 'tenant0', scope, key, token: 'another-request', fingerprint: fingerprint('POST', url, body), now: Date.now(), heldUntil: Date.now() + KEY_HOLD_MS, expiresAt: Date.now() + 86_400_000 });

  const doors = [
    { name: 'kie', scope: 'kie.generate', url: '/api/v1/veo/generate', body: { prompt: 'a lighthouse at dusk' }, other: { prompt: 'a harbour at dawn' }, bad: { prompt: '' },
      id: (r: Res) => JSON.parse(r.body).data.taskId as string,
      // kie's business errors are HTTP 200 with the code in the body; 409 is a real status too.
      refused: (r: Res, code: number) => { assert.equal(r.statusCode, code === 409 ? 409 : 200); assert.equal(JSON.parse(r.body).code, code); } },
    { name: 'kkiai', scope: 'kkiai.create', url: '/v1/video/create', body: { model: 'veo3.1-fast', prompt: 'a lighthouse at dusk' }, other: { model: 'veo3.1-fast', prompt: 'a harbour' }, bad: { model: 'veo3.1-fast' },
      id: (r: Res) => JSON.parse(r.body).id as string,
      refused: (r: Res, code: number) => { assert.equal(r.statusCode, code); assert.match(JSON.parse(r.body).error.code, code === 409 ? /idempotency_key_in_use/ : /idempotency_key_reused/); } },
    { name: 'openai', scope: 'openai.create', url: '/v1/videos', body: { prompt: 'a lighthouse at dusk', seconds: '4' }, other: { prompt: 'a lighthouse at dusk', seconds: '8' }, bad: { prompt: 'x', seconds: '5' },
      id: (r: Res) => JSON.parse(r.body).id as string,
      refused: (r: Res, code: number) => {
        assert.equal(r.statusCode, code);
        const e = JSON.parse(r.body).error;
        assert.equal(e.code, code === 409 ? 'idempotency_key_in_use' : 'idempotency_key_reused');
        assert.equal(e.type, 'invalid_request_error');
        // The SDK retries a 409 by itself only when told it may: then its retry gets the answer.
        assert.equal(r.headers['x-should-retry'], code === 409 ? 'true' : 'false');
      } },
    { name: 'gemini', scope: 'gemini.predict', url: '/v1beta/models/veo-3.1-generate-preview:predictLongRunning', body: { instances: [{ prompt: 'a lighthouse at dusk' }] },
      other: { instances: [{ prompt: 'a lighthouse at dusk' }], parameters: { aspectRatio: '9:16' } }, bad: { instances: [] },
      id: (r: Res) => (JSON.parse(r.body).name as string).split('/').pop()!,
      refused: (r: Res, code: number) => {
        assert.equal(r.statusCode, code);
        assert.deepEqual(Object.keys(JSON.parse(r.body).error).sort(), ['code', 'message', 'status']);
        assert.equal(JSON.parse(r.body).error.status, code === 409 ? 'ABORTED' : 'INVALID_ARGUMENT');
      } },
  ];

  for (const d of doors) {
    const key = `${d.name}-key-1`;
    const before = await count();
    const first = await post(d.url, d.body, key);
    assert.equal(first.statusCode, 200, `${d.name}: ${first.body}`);
    assert.equal(first.headers['idempotent-replayed'], undefined);
    const again = await post(d.url, d.body, key);
    assert.equal(again.statusCode, 200, `${d.name}: ${again.body}`);
    assert.equal(again.headers['idempotent-replayed'], 'true', d.name);
    assert.equal(again.body, first.body, `${d.name}: the first answer, byte for byte`);
    assert.equal(again.headers['x-reelay-task-id'], d.id(first));
    // The same JSON with its keys in another order is the same request.
    const reordered = Object.fromEntries(Object.entries(d.body).reverse());
    assert.equal((await post(d.url, reordered, key)).body, first.body, `${d.name}: key order`);
    assert.equal(await count(), before + 1, `${d.name}: one task`);

    // The key with another request: 422, nothing created.
    const changed = await post(d.url, d.other, key);
    d.refused(changed, 422);
    assert.match(changed.body, /already used with a different request/);
    assert.equal(await count(), before + 1);

    // Another tenant's key of the same name is its own.
    const b = await post(d.url, d.body, key, d.name === 'gemini' ? { 'x-goog-api-key': KEY_B, 'content-type': 'application/json' } : auth(KEY_B));
    assert.equal(b.statusCode, 200);
    assert.notEqual(d.id(b), d.id(first));
    assert.equal(b.headers['idempotent-replayed'], undefined);

    // A request that fails validation stores nothing: the key then serves the right request.
    const badKey = `${d.name}-key-bad`;
    const bad = await post(d.url, d.bad, badKey);
    assert.ok(bad.statusCode >= 400 || JSON.parse(bad.body).code === 422, `${d.name}: ${bad.body}`);
    const good = await post(d.url, d.body, badKey);
    assert.equal(good.statusCode, 200, good.body);
    assert.equal(good.headers['idempotent-replayed'], undefined, `${d.name}: a new request, not a replay or a 422`);
    assert.notEqual(d.id(good), d.id(first));

    // A repeat while the first request still runs (another request holds the key): 409, retry in 1 s.
    const busyKey = `${d.name}-key-busy`;
    assert.equal((await holdByHand(d.scope, d.url, d.body, busyKey)).kind, 'new');
    const busy = await post(d.url, d.body, busyKey);
    d.refused(busy, 409);
    assert.equal(busy.headers['retry-after'], '1');
    assert.equal(await count(), before + 2, `${d.name}: nothing created while busy`);
  }

  // Without a key, every create is a new task.
  const a = await post('/api/v1/veo/generate', { prompt: 'no key' }, undefined);
  const b = await post('/api/v1/veo/generate', { prompt: 'no key' }, undefined);
  assert.notEqual(JSON.parse(a.body).data.taskId, JSON.parse(b.body).data.taskId);
  // A malformed key is a validation error in the envelope.
  const long = await post('/v1/videos', { prompt: 'x' }, 'k'.repeat(256));
  assert.equal(long.statusCode, 400);
  assert.equal(JSON.parse(long.body).error.param, 'Idempotency-Key');
});

test('Idempotency-Key: OpenAI multipart with a file, remix and extensions are keyed on what was sent', async () => {
  const { app, ctx } = await testApp();
  const multipart = async (fields: Record<string, string | Blob>) => {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v as string);
    const req = new Request('http://x/', { method: 'POST', body: fd });
    return { payload: Buffer.from(await req.arrayBuffer()), type: req.headers.get('content-type')! };
  };
  const png = (byte: number) => new Blob([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, byte])], { type: 'image/png' });
  const send = async (fields: Record<string, string | Blob>, key: string) => {
    const { payload, type } = await multipart(fields);
    return app.inject({ method: 'POST', url: '/v1/videos', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': type, 'idempotency-key': key }, payload }) as Promise<Res>;
  };
  const first = await send({ prompt: 'p', input_reference: png(1) }, 'mp-1');
  assert.equal(first.statusCode, 200, first.body);
  const again = await send({ prompt: 'p', input_reference: png(1) }, 'mp-1');
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.equal(again.body, first.body);
  // The same form with other file bytes is another request.
  assert.equal((await send({ prompt: 'p', input_reference: png(2) }, 'mp-1')).statusCode, 422);

  // Remix: keyed by its path too (the video it remixes) and its body.
  const id = JSON.parse(first.body).id as string;
  await ctx.store.claimDue('E', Date.now() + 1000, 60_000, 100);
  await ctx.store.commitStep('E', { taskId: id, patch: { state: 'succeeded', completedAt: Date.now(), nextRunAt: null } });
  const remix = (key: string, prompt = 'again') =>
    app.inject({ method: 'POST', url: `/v1/videos/${id}/remix`, headers: { ...auth(), 'idempotency-key': key }, payload: JSON.stringify({ prompt }) }) as Promise<Res>;
  const r1 = await remix('rx');
  assert.equal(r1.statusCode, 200, r1.body);
  assert.equal((await remix('rx')).body, r1.body);
  assert.equal((await remix('rx', 'other')).statusCode, 422);
  const ext = (key: string) =>
    app.inject({ method: 'POST', url: '/v1/videos/extensions', headers: { ...auth(), 'idempotency-key': key }, payload: JSON.stringify({ prompt: 'on', video: { id }, seconds: '4' }) }) as Promise<Res>;
  const e1 = await ext('ex');
  assert.equal(e1.statusCode, 200, e1.body);
  assert.equal((await ext('ex')).headers['idempotent-replayed'], 'true');
  // The key of one endpoint is not the key of another: the same name at remix and extensions.
  assert.notEqual(JSON.parse((await ext('rx')).body).id, JSON.parse(r1.body).id);
});

test('Idempotency-Key: the header is an RFC 8941 string or a bare token', () => {
  const req = (v: string | string[] | undefined) => ({ headers: { 'idempotency-key': v } }) as never;
  assert.equal(idempotencyKeyOf(req(undefined)), undefined);
  assert.equal(idempotencyKeyOf(req('"8e03978e-40d5-43e8-bc93-6894a57f9324"')), '8e03978e-40d5-43e8-bc93-6894a57f9324');
  assert.equal(idempotencyKeyOf(req('plain-token')), 'plain-token');
  assert.equal(idempotencyKeyOf(req('"a \\"q\\" b"')), 'a "q" b');
  for (const bad of ['', '""', 'k'.repeat(256), 'ünï', ['a', 'b']]) assert.throws(() => idempotencyKeyOf(req(bad)), /Idempotency-Key/);
  // Keys of object members in any order, and file bytes by their digest.
  assert.equal(fingerprint('POST', '/a', { x: 1, y: [1, { b: 2, a: 1 }] }), fingerprint('POST', '/a', { y: [1, { a: 1, b: 2 }], x: 1 }));
  assert.notEqual(fingerprint('POST', '/a', { x: 1 }), fingerprint('POST', '/b', { x: 1 }));
  assert.notEqual(fingerprint('POST', '/a', { f: Buffer.from('1') }), fingerprint('POST', '/a', { f: Buffer.from('2') }));
});
