import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Reelay, ReelayError, type Task, TaskCanceledError, TaskFailedError, WaitTimeoutError, WebhookVerificationError, isTerminal } from '../packages/client/src/index.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const KEY = 'sk-cl-main-0123456789';
const OTHER = 'sk-cl-other-0123456789';
/** Short videos keep the renders, and the test, quick. */
const SHORT = { model: 'veo3.1-fast', seconds: 4, resolution: '720p' } as const;
/** Long enough to still be running when a short wait gives up, or a cancel comes. */
const LONG = { model: 'veo3.1-fast', seconds: 8, resolution: '4k' } as const;

interface Callback {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A callback receiver on loopback: every POST's raw body and headers, as they came. */
async function receiver(): Promise<{ url: string; got: Callback[]; close(): Promise<void> }> {
  const got: Callback[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      got.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cb`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('the TypeScript client against a real server', () => {
  let srv: ServerProcess;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let work: string;
  let env: Record<string, string>;
  let reelay: Reelay;
  /** Every request the client sent: its method, URL and headers. */
  const sent: { method: string; url: string; headers: Headers }[] = [];
  const recording: typeof fetch = (input, init) => {
    sent.push({ method: init?.method ?? 'GET', url: String(input), headers: new Headers(init?.headers) });
    return fetch(input, init);
  };
  /** `reelay keys …` against the server's store; its stdout. */
  const keys = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, 'keys', ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  /** The ids this test created, for the listing. */
  const made: string[] = [];

  before(async () => {
    work = tmpDir();
    rx = await receiver();
    // Renders report "running" for a second at least, so a wait sees the task run.
    env = { REELAY_DATA_DIR: work, REELAY_API_KEYS: `${KEY},${OTHER}`, REELAY_URL_ALLOWLIST: '127.0.0.1', REELAY_RENDER_DELAY_MS: '1000' };
    srv = await startServer(env);
    reelay = new Reelay({ baseURL: srv.url, apiKey: KEY, fetch: recording });
  });
  after(async () => {
    await srv?.stop();
    await rx?.close();
  });

  test('create sends an Idempotency-Key, the same one gives the same task, and none given still makes one per create', async () => {
    const params = { ...SHORT, prompt: 'a lighthouse at dusk' };
    const task = await reelay.create(params, { idempotencyKey: 'client-order-1' });
    assert.match(task.id, /^task_/);
    assert.equal(task.object, 'task');
    assert.equal(isTerminal(task.state), false);
    assert.equal(task.seconds, 4);
    const again = await reelay.createWithReplay(params, { idempotencyKey: 'client-order-1' });
    assert.deepEqual([again.task.id, again.replayed], [task.id, true], 'the same key and request: the same task, said to be a replay');
    const other = await reelay.createWithReplay({ ...params, prompt: `${params.prompt} (another)` });
    assert.equal(other.replayed, false);
    await reelay.cancel(other.task.id);
    made.push(task.id);

    const a = await reelay.create({ ...SHORT, prompt: 'no key given' });
    const b = await reelay.create({ ...SHORT, prompt: 'no key given' });
    assert.notEqual(a.id, b.id, 'two creates without a key are two tasks');
    made.push(a.id, b.id);
    // The key the client made for `a` was sent, and the server kept it: sent again, it replays `a`.
    const creates = sent.filter((s) => s.method === 'POST' && s.url.endsWith('/reelay/v1/tasks'));
    const keyOfA = creates.at(-2)!.headers.get('idempotency-key');
    assert.ok(keyOfA && keyOfA !== creates.at(-1)!.headers.get('idempotency-key'), 'each create its own key');
    const replay = await fetch(`${srv.url}/reelay/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'idempotency-key': keyOfA },
      body: JSON.stringify({ model: SHORT.model, prompt: 'no key given', seconds: 4, resolution: '720p' }),
    });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(((await replay.json()) as Task).id, a.id);
    // Not needed further: canceled, so the renderer is free for the next tests.
    await reelay.cancel(a.id);
    await reelay.cancel(b.id);
  });

  test('wait follows the task: onUpdate sees it run, and it resolves once it succeeded', async () => {
    const states: string[] = [];
    const done = await reelay.wait(made[0]!, { onUpdate: (t) => states.push(t.state) });
    assert.equal(done.state, 'succeeded');
    assert.equal(states.at(-1), 'succeeded');
    assert.ok(new Set(states).size >= 2, `at least two states seen: ${states.join(' → ')}`);
    assert.match(done.outputs.video!, /^http:\/\/127\.0\.0\.1:\d+\/files\//);
    const streamed = sent.some((s) => s.url.endsWith(`/tasks/${made[0]}/stream`));
    assert.ok(streamed, 'it followed the event stream');
    // A cancel after the end: a conflict that carries the task as it ended.
    const late = await reelay.cancel(done.id).then(() => undefined, (e: unknown) => e);
    assert.ok(late instanceof ReelayError, String(late));
    assert.deepEqual([late.status, late.code, late.taskId, late.task?.state], [409, 'conflict', done.id, 'succeeded']);
  });

  test('generate writes an MP4, and tells onCreated before the task ends', async () => {
    const to = join(work, 'generated.mp4');
    let created: Task | undefined;
    let endedBeforeCreated = false;
    const updates: string[] = [];
    const { task, file } = await reelay.generate({ ...SHORT, prompt: 'a red kite over green hills' }, {
      to,
      onCreated: (t) => (created = t),
      onUpdate: (t) => {
        if (!created) endedBeforeCreated = true;
        updates.push(t.state);
      },
    });
    assert.ok(created, 'onCreated was called');
    assert.equal(endedBeforeCreated, false);
    assert.equal(created.id, task.id);
    assert.equal(isTerminal(created.state), false, 'onCreated came while the task was still running');
    assert.equal(task.state, 'succeeded');
    assert.equal(file, to);
    const bytes = readFileSync(to);
    assert.ok(bytes.length > 0);
    assert.equal(bytes.subarray(4, 8).toString('latin1'), 'ftyp', 'an MP4 starts with its ftyp box');
    assert.deepEqual(readdirSync(work).filter((f) => f.endsWith('.part')), [], 'no temporary file is left');
    made.push(task.id);

    // download and content give the same bytes.
    const again = await reelay.download(task.id, { to: join(work, 'again.mp4'), variant: '720p' });
    assert.equal(again.bytes, statSync(again.path).size);
    const res = await reelay.content(task);
    assert.equal(Buffer.from(await res.arrayBuffer()).subarray(4, 8).toString('latin1'), 'ftyp');
    await assert.rejects(reelay.download(task, { to: join(work, '4k.mp4'), variant: '4k' }), (e: ReelayError) => e.code === 'not_found' && e.taskId === task.id);
  });

  test('wait gives up after timeoutMs without canceling; an abort ends it; a cancel ends it in TaskCanceledError', async () => {
    const long = await reelay.create({ ...LONG, prompt: 'a long 4k render' });
    made.push(long.id);
    const started = Date.now();
    const timedOut = await reelay.wait(long.id, { timeoutMs: 1_500 }).then(() => undefined, (e: unknown) => e);
    assert.ok(timedOut instanceof WaitTimeoutError, String(timedOut));
    assert.ok(Date.now() - started < 10_000);
    assert.equal(timedOut.taskId, long.id);
    assert.ok(timedOut.task && !isTerminal(timedOut.task.state), 'its task as last seen, still running');
    assert.equal(isTerminal((await reelay.get(long.id)).state), false, 'the task was not canceled');

    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const aborted = await reelay.wait(long.id, { signal: ctl.signal }).then(() => undefined, (e: unknown) => e);
    assert.ok(aborted instanceof DOMException && aborted.name === 'AbortError', String(aborted));
    const reason = new Error('stop waiting');
    const own = new AbortController();
    own.abort(reason);
    await assert.rejects(reelay.wait(long.id, { signal: own.signal }), (e) => e === reason);

    // Running (not merely queued), then canceled: the wait ends in TaskCanceledError.
    await waitFor(async () => {
      const { state } = await reelay.get(long.id);
      assert.equal(isTerminal(state), false, `still running: ${state}`);
      return state === 'queued' ? undefined : true;
    }, 60_000, 50);
    const waiting = reelay.wait(long.id).then(() => undefined, (e: unknown) => e);
    const canceled = await reelay.cancel(long.id);
    assert.deepEqual([canceled.state, canceled.cancel_outcome], ['canceled', 'pending']);
    const ended = await waiting;
    assert.ok(ended instanceof TaskCanceledError, String(ended));
    assert.deepEqual([ended.code, ended.taskId, ended.task.state], ['canceled', long.id, 'canceled']);
  });

  test('a blocked word ends in TaskFailedError content_policy', async () => {
    const err = await reelay.generate({ ...SHORT, prompt: 'an nsfw scene' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError, String(err));
    assert.equal(err.code, 'content_policy');
    assert.equal(err.task.state, 'failed');
    assert.equal(err.task.error?.kind, 'content_policy');
    assert.match(err.taskId, /^task_/);
    made.push(err.taskId);
  });

  test('errors are ReelayErrors from the problem details: validation, a wrong key, another tenant\'s task', async () => {
    const invalid = await reelay.create({ ...SHORT, prompt: 'five seconds', seconds: 5 as 4 }).then(() => undefined, (e: unknown) => e);
    assert.ok(invalid instanceof ReelayError, String(invalid));
    assert.deepEqual([invalid.status, invalid.code, invalid.param], [400, 'validation', 'seconds']);

    const stranger = new Reelay({ baseURL: srv.url, apiKey: 'sk-not-a-key' });
    await assert.rejects(stranger.balance(), (e: ReelayError) => e instanceof ReelayError && e.status === 401 && e.code === 'unauthorized');

    const other = new Reelay({ baseURL: `${srv.url}/reelay/v1/`, apiKey: OTHER });
    const notFound = await other.get(made[0]!).then(() => undefined, (e: unknown) => e);
    assert.ok(notFound instanceof ReelayError, String(notFound));
    assert.deepEqual([notFound.status, notFound.code, notFound.taskId], [404, 'not_found', made[0]]);
    await assert.rejects(other.wait(made[0]!), (e: ReelayError) => e.code === 'not_found' && e.taskId === made[0]);

    const down = new Reelay({ baseURL: 'http://127.0.0.1:9', apiKey: KEY, maxRetries: 0 });
    await assert.rejects(down.get(made[0]!), (e: ReelayError) => e.status === null && e.code === 'network' && e.taskId === made[0]);
  });

  test('list walks every page, and filters by state; events start with the creation', async () => {
    const first = await reelay.list({ limit: 2 });
    assert.equal(first.data.length, 2);
    assert.equal(first.hasMore, true);
    assert.equal(first.nextCursor, first.data[1]!.id);
    const all: string[] = [];
    for await (const t of reelay.list({ limit: 2 })) all.push(t.id);
    assert.ok(all.length >= 3);
    assert.equal(new Set(all).size, all.length, 'no task twice');
    for (const id of made) assert.ok(all.includes(id), `${id} listed`);
    const pages = sent.filter((s) => s.url.includes('/reelay/v1/tasks?') && s.url.includes('limit=2'));
    assert.ok(pages.some((s) => s.url.includes('after=')), 'later pages asked with after');

    const canceled: Task[] = [];
    for await (const t of reelay.list({ state: ['canceled'], limit: 2 })) canceled.push(t);
    assert.ok(canceled.length >= 3, 'the three canceled tasks');
    assert.ok(canceled.every((t) => t.state === 'canceled'));
    const oldest = await reelay.list({ order: 'asc', limit: 1, state: ['succeeded', 'failed'] });
    assert.equal(oldest.data[0]!.id, made[0]);

    const events = await reelay.events(made[0]!);
    assert.equal(events[0]!.kind, 'created');
    assert.ok(events.some((e) => e.kind === 'state' && e.to === 'succeeded'));
  });

  test('balance: not metered, then the amount a top-up gave; the ledger has the top-up', async () => {
    const other = new Reelay({ baseURL: srv.url, apiKey: OTHER });
    assert.deepEqual(await other.balance(), { object: 'balance', metered: false, credits: null, updated_at: null });
    assert.equal(keys('credit', OTHER.slice(0, 10), '75', '--note', 'client test'), '75');
    const b = await other.balance();
    assert.deepEqual([b.metered, b.credits], [true, 75]);
    const ledger = await other.ledger({ limit: 10 });
    assert.deepEqual(ledger.data.map((e) => [e.kind, e.amount, e.note]), [['topup', 75, 'client test']]);
    assert.equal(ledger.hasMore, false);
  });

  test('webhooks.verify checks a real callback with the key\'s secret; a changed body does not verify', async () => {
    const task = await reelay.generate({ ...SHORT, prompt: 'a callback at the end', webhookUrl: rx.url });
    const cb = await waitFor(async () => rx.got.find((c) => c.body.includes(task.task.id)), 30_000, 50);
    const secret = keys('webhook-secret', KEY.slice(0, 10));
    assert.match(secret, /^whsec_/);
    const event = await reelay.webhooks.verify(cb.body, cb.headers, secret);
    assert.deepEqual([event.type, event.data.id, event.data.state], ['video.completed', task.task.id, 'succeeded']);
    assert.deepEqual(await Reelay.webhooks.verify(cb.body, cb.headers, ['whsec_' + Buffer.alloc(32, 1).toString('base64'), secret]), event);
    await assert.rejects(Reelay.webhooks.verify(cb.body.replace('succeeded', 'failed'), cb.headers, secret), WebhookVerificationError);
    await assert.rejects(Reelay.webhooks.verify(cb.body, cb.headers, 'whsec_' + Buffer.alloc(32, 7).toString('base64')), WebhookVerificationError);

    // Its delivery, and a resend: the same webhook-id again, signed anew.
    const [delivery] = await reelay.deliveries(task.task.id);
    assert.ok(delivery);
    assert.deepEqual([delivery.status, delivery.webhook_id], ['delivered', cb.headers['webhook-id']]);
    const before = rx.got.length;
    await reelay.resend(task.task.id, delivery.id);
    const resent = await waitFor(async () => rx.got.slice(before).find((c) => c.headers['webhook-id'] === delivery.webhook_id), 30_000, 50);
    assert.equal((await Reelay.webhooks.verify(resent.body, resent.headers, secret)).data.id, task.task.id);
  });
});
