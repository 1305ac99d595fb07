import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KEY_A, KEY_B, testApp } from '../../../test/app.js';

describe('native API over HTTP (in-process, no engine)', async () => {
  const { app, ctx } = await testApp();
  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown, key = KEY_A, extra: Record<string, string> = {}) => {
    const res = await app.inject({
      method,
      url: `/reelay/v1${url}`,
      headers: { authorization: `Bearer ${key}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...extra },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    return { status: res.statusCode, type: res.headers['content-type'], headers: res.headers, body: JSON.parse(res.body) as any };
  };
  const problem = (r: { status: number; type: unknown; body: any }, status: number, code: string, detail?: RegExp) => {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.match(String(r.type), /^application\/problem\+json/);
    assert.deepEqual([r.body.status, r.body.code, r.body.type], [status, code, `urn:reelay:error:${code}`]);
    assert.equal(typeof r.body.title, 'string');
    if (detail) assert.match(r.body.detail, detail);
  };

  test('create: the task in the state machine\'s own words, every field there', async () => {
    const r = await call('POST', '/tasks', { model: 'veo3.1-fast', prompt: '  a lighthouse  ', seconds: 6, resolution: '1080p', aspect_ratio: '9:16', seed: 7 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.body.id, /^task_[0-9a-f]{32}$/);
    assert.deepEqual(
      { ...r.body, id: undefined, created_at: undefined, updated_at: undefined },
      {
        id: undefined, object: 'task', dialect: 'reelay', model: 'veo3.1-fast', state: 'queued', progress: 0, prompt: 'a lighthouse', images: 0, seconds: 6, resolution: '1080p',
        aspect_ratio: '9:16', provider: 'local', fallback: false, attempts: 0, retries: 0, error: null, last_error: null, cancel_outcome: null, credits_reserved: null,
        outputs: { video: null, video_720p: null, video_1080p: null, video_4k: null }, created_at: undefined, updated_at: undefined, completed_at: null,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(r.body.created_at)));
    const got = await call('GET', `/tasks/${r.body.id}`);
    assert.deepEqual(got.body, r.body);
  });

  test('bad input is a problem+json 400 naming the field; nothing is stored', async () => {
    const before = (await call('GET', '/tasks?limit=100')).body.data.length;
    problem(await call('POST', '/tasks', { prompt: 'p' }), 400, 'validation', /model/);
    problem(await call('POST', '/tasks', { model: 'm', prompt: '   ' }), 400, 'validation', /prompt/);
    problem(await call('POST', '/tasks', { model: 'm', prompt: 'p', seconds: 5 }), 400, 'validation', /seconds/);
    problem(await call('POST', '/tasks', { model: 'm', prompt: 'p', colour: 'red' }), 400, 'validation');
    problem(await call('POST', '/tasks', { model: 'm', prompt: 'p', images: ['https://a.example/1.png', 'https://a.example/2.png', 'https://a.example/3.png'], image_mode: 'frames' }), 400, 'validation', /at most 2/);
    problem(await call('POST', '/tasks', { model: 'm', prompt: 'p', webhook_url: 'ftp://x' }), 400, 'validation', /webhook_url/);
    problem(await call('POST', '/tasks', { model: 'm', prompt: 'p', webhook_url: 'http://127.0.0.1:9/x' }), 400, 'validation', /callback URL refused/);
    assert.equal((await call('GET', '/tasks?limit=100')).body.data.length, before);
  });

  test('keys: none is 401, another tenant\'s task is 404, an unknown route is 404, all as problems', async () => {
    const mine = (await call('POST', '/tasks', { model: 'm', prompt: 'mine' })).body.id as string;
    const none = await app.inject({ method: 'GET', url: `/reelay/v1/tasks/${mine}` });
    assert.equal(none.statusCode, 401);
    assert.equal(JSON.parse(none.body).code, 'unauthorized');
    problem(await call('GET', `/tasks/${mine}`, undefined, KEY_B), 404, 'not_found');
    problem(await call('POST', `/tasks/${mine}/cancel`, undefined, KEY_B), 404, 'not_found');
    problem(await call('GET', '/nope'), 404, 'not_found');
    assert.equal((await call('GET', `/tasks/${mine}`)).body.state, 'queued', 'the other key changed nothing');
  });

  test('list: newest first, a cursor, limits checked', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call('POST', '/tasks', { model: 'm', prompt: `page ${i}` }, KEY_B)).body.id);
    const first = await call('GET', '/tasks?limit=2', undefined, KEY_B);
    assert.deepEqual(first.body.data.map((t: { id: string }) => t.id), [ids[2], ids[1]]);
    assert.equal(first.body.has_more, true);
    const next = await call('GET', `/tasks?limit=2&after=${first.body.next_cursor}`, undefined, KEY_B);
    assert.deepEqual(next.body.data.map((t: { id: string }) => t.id), [ids[0]]);
    assert.deepEqual([next.body.has_more, next.body.next_cursor], [false, null]);
    const asc = await call('GET', '/tasks?order=asc', undefined, KEY_B);
    assert.deepEqual(asc.body.data.map((t: { id: string }) => t.id), ids);
    problem(await call('GET', '/tasks?limit=0', undefined, KEY_B), 400, 'validation', /limit/);
    problem(await call('GET', '/tasks?limit=101', undefined, KEY_B), 400, 'validation', /limit/);
    problem(await call('GET', '/tasks?after=task_nope', undefined, KEY_B), 400, 'validation', /after/);
  });

  test('list filters run on the server: state (a comma list), model, dialect, creation time; a bad one is a 400', async () => {
    const a = (await call('POST', '/tasks', { model: 'filter-a', prompt: 'x' }, KEY_B)).body.id as string;
    const b = (await call('POST', '/tasks', { model: 'filter-b', prompt: 'y' }, KEY_B)).body.id as string;
    await call('POST', `/tasks/${b}/cancel`, undefined, KEY_B);
    const ids = async (q: string) => ((await call('GET', `/tasks?${q}`, undefined, KEY_B)).body.data as { id: string }[]).map((t) => t.id);
    assert.deepEqual(await ids('model=filter-a'), [a]);
    assert.deepEqual(await ids('state=canceled'), [b]);
    assert.deepEqual(await ids('state=queued,canceled&model=filter-b'), [b]);
    assert.deepEqual(await ids('dialect=kie&model=filter-a'), []);
    const created = Date.parse((await call('GET', `/tasks/${b}`, undefined, KEY_B)).body.created_at);
    assert.deepEqual(await ids(`created_from=${new Date(created + 1).toISOString()}&model=filter-b`), []);
    assert.deepEqual(await ids(`created_to=${new Date(created).toISOString()}&model=filter-b`), [b]);
    problem(await call('GET', '/tasks?state=running', undefined, KEY_B), 400, 'validation', /state/);
    problem(await call('GET', '/tasks?created_from=yesterday', undefined, KEY_B), 400, 'validation', /created_from/);
    problem(await call('GET', '/tasks?colour=red', undefined, KEY_B), 400, 'validation');
  });

  /** A stream of the listening app, read as it comes: `until` waits for its text to match. */
  const openStream = async (path: string, key: string, extra: Record<string, string> = {}) => {
    const address = app.server.address() as { port: number };
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${address.port}/reelay/v1${path}`, { headers: { authorization: `Bearer ${key}`, ...extra }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const until = async (re: RegExp) => {
      const deadline = Date.now() + 10_000;
      while (!re.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in ${text}`);
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      return text;
    };
    return { until, close: () => ac.abort() };
  };

  test('stream: Server-Sent Events of a task\'s changes, then end once nothing more will change', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const id = (await call('POST', '/tasks', { model: 'm', prompt: 'streamed' })).body.id as string;
    const { until, close } = await openStream(`/tasks/${id}/stream`, KEY_A);
    try {
      await until(/event: task\ndata: .*"state":"queued"/);
      await call('POST', `/tasks/${id}/cancel`);
      await until(/"state":"canceled".*"cancel_outcome":"pending"/);
      // The engine's cancel step, as it would commit it: then the stream ends.
      const [claimed] = await ctx.store.claimDue('E', Date.now(), 10_000, 50).then((ts) => ts.filter((t) => t.id === id));
      assert.ok(claimed);
      assert.ok(await ctx.store.commitStep('E', { taskId: id, ofCanceled: true, patch: { cancelOutcome: 'not_submitted', nextRunAt: null, updatedAt: Date.now() } }));
      const text = await until(/event: end\ndata: \{"id":"[^"]+","state":"canceled"\}/);
      const events = text.split('\n\n').filter((b) => b.includes('event: task'));
      assert.deepEqual(events.map((b) => JSON.parse(b.split('data: ')[1]!).cancel_outcome), [null, 'pending', 'not_submitted'], 'one event per change');
      assert.match(text, /^retry: 2000/);
    } finally {
      close();
    }
    problem(await call('GET', `/tasks/${id}/stream`, undefined, KEY_B), 404, 'not_found');
  });

  test('the key\'s stream: every task of the key as it changes, from now, or from Last-Event-ID', async () => {
    const open = (extra: Record<string, string> = {}) => openStream('/stream', KEY_B, extra);
    const s = await open();
    try {
      await s.until(/^retry: 2000/);
      const id = (await call('POST', '/tasks', { model: 'm', prompt: 'on the key stream' }, KEY_B)).body.id as string;
      await s.until(new RegExp(`"id":"${id}".*"state":"queued"`));
      await call('POST', `/tasks/${id}/cancel`, undefined, KEY_B);
      const text = await s.until(new RegExp(`"id":"${id}".*"state":"canceled"`));
      assert.ok(!/"prompt":"mine"|tenant0/.test(text), 'only this key\'s tasks');
      const first = /id: (\d+)\nevent: task/.exec(text)![1]!;
      s.close();
      // Reconnected from the first event: the change after it comes again, the one before does not.
      const again = await open({ 'last-event-id': first });
      try {
        const replay = await again.until(new RegExp(`"id":"${id}".*"state":"canceled"`));
        assert.ok(!replay.includes('"state":"queued"'));
      } finally {
        again.close();
      }
    } finally {
      s.close();
    }
  });

  test('Idempotency-Key: the same create twice is one task, the first answer again', async () => {
    const body = { model: 'm', prompt: 'once' };
    const a = await call('POST', '/tasks', body, KEY_A, { 'idempotency-key': 'native-1' });
    const b = await call('POST', '/tasks', body, KEY_A, { 'idempotency-key': 'native-1' });
    assert.equal(b.headers['idempotent-replayed'], 'true');
    assert.deepEqual(b.body, a.body);
    problem(await call('POST', '/tasks', { ...body, prompt: 'other' }, KEY_A, { 'idempotency-key': 'native-1' }), 422, 'key_reused');
  });

  test('cancel: canceled at once (an empty JSON body is fine), again is the same; the audit trail says who and when', async () => {
    const id = (await call('POST', '/tasks', { model: 'm', prompt: 'to cancel' })).body.id as string;
    const r = await call('POST', `/tasks/${id}/cancel`, undefined, KEY_A, { 'content-type': 'application/json' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([r.body.state, r.body.cancel_outcome, r.body.error], ['canceled', 'pending', { kind: 'canceled', stage: 'input', message: 'Canceled by the client' }]);
    assert.ok(r.body.completed_at);
    const again = await call('POST', `/tasks/${id}/cancel`);
    assert.deepEqual([again.status, again.body.state], [200, 'canceled']);
    const events = (await call('GET', `/tasks/${id}/events`)).body.data as { kind: string; actor: string; from: string | null; to: string | null; detail: { reason?: string } }[];
    assert.deepEqual(events.map((e) => [e.kind, e.actor, e.from, e.to]), [['created', 'api', null, 'queued'], ['state', 'api', 'queued', 'canceled']]);
    assert.equal(events[1]!.detail.reason, 'canceled by the client');
    assert.deepEqual((await call('GET', `/tasks/${id}/deliveries`)).body, { object: 'list', data: [] });
    problem(await call('POST', `/tasks/${id}/deliveries/1/resend`), 404, 'not_found');
    problem(await call('POST', `/tasks/${id}/deliveries/x/resend`), 400, 'validation');
    // Every door words it: kie successFlag 2.
    const kie = await app.inject({ method: 'GET', url: `/api/v1/veo/record-info?taskId=${id}`, headers: { authorization: `Bearer ${KEY_A}` } });
    assert.equal(JSON.parse(kie.body).data.successFlag, 2);
    assert.equal((await ctx.store.getTask('tenant0', id))?.nextRunAt !== null, true, 'due for the step that stops its work');
  });
});
