import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { makeTask } from '../../test/fixtures.js';
import { peer } from '../../test/peer.js';
import { waitFor } from '../../test/server.js';
import { tmpDir } from '../../test/tmp.js';
import { GuardedFetcher } from '../net/fetch.js';
import { UrlGuard } from '../net/guard.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { Deliverer, RETRY_SCHEDULE_MS, backoff } from './deliveries.js';
import { ROTATION_OVERLAP_MS, newWebhookSecret } from './signing.js';

test('backoff: with a base it grows 4× and stops at 10 minutes; without, the Standard Webhooks schedule, spread ±10 %', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoff(n, 5000)), [5000, 20000, 80000, 320000, 600000, 600000]);
  const mid = (n: number) => backoff(n, undefined, () => 0.5);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(mid), [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 504e5, 72e6, 864e5, 864e5]);
  // The ten tries of the default span about three days, where six tries gave up after 17 minutes.
  assert.equal(RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0), ((75 * 60 + 35) * 60 + 5) * 1000, '75 h 35 min 5 s');
  assert.equal(backoff(2, undefined, () => 0), 270_000);
  assert.equal(backoff(2, undefined, () => 1), 330_000);
});

test('every callback is signed: Standard Webhooks headers that the standardwebhooks package verifies, kie headers, both secrets while a rotation overlaps; 410 stops the tries, a redirect is not followed', async () => {
  const p = await peer({
    '/ok': (_q, res) => res.writeHead(200).end(),
    '/gone': (_q, res) => res.writeHead(410).end(),
    '/moved': (_q, res) => res.writeHead(301, { location: '/ok' }).end(),
  });
  const store = openSqliteStore(join(tmpDir(), 's.sqlite'));
  const fetcher = new GuardedFetcher(new UrlGuard(['127.0.0.1']));
  const d = new Deliverer(store, fetcher, { timeoutMs: 2000, maxAttempts: 4, backoffMs: 20, tickMs: 10 }, pino({ level: 'silent' }));
  after(async () => {
    await d.stop();
    await fetcher.close();
    await store.close();
    await p.close();
  });
  const owe = async (id: string, path: string, body: string) => {
    await store.createTask(makeTask({ id, tenantId: 'tenant-s', fileToken: id, nextRunAt: 0 }));
    await store.claimDue('o', 1, 1000, 1);
    await store.commitStep('o', { taskId: id, patch: { nextRunAt: null }, deliveries: [{ taskId: id, url: `${p.url}${path}`, body, createdAt: Date.now() }] });
  };
  const first = (await store.webhookSecrets('tenant-s', Date.now(), newWebhookSecret()))[0]!;
  assert.match(first, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const body = '{"code":200,"msg":"success","data":{"taskId":"sig1","info":{"resultUrls":["x"]}}}';
  await owe('sig1', '/ok', body);
  d.start();
  await waitFor(async () => ((await store.listDeliveries('sig1'))[0]?.status === 'delivered' ? true : undefined), 5000, 10);
  const got = p.received.find((r) => r.path === '/ok')!;
  const headers = got.headers as Record<string, string>;
  assert.equal(got.body, body);
  assert.deepEqual(new Webhook(first).verify(got.body, headers), JSON.parse(body), 'verified by a verifier Reelay did not write');
  assert.throws(() => new Webhook(first).verify(got.body.replace('success', 'sucdess'), headers), /signature/i, 'a tampered body fails');
  assert.throws(() => new Webhook(newWebhookSecret()).verify(got.body, headers), /signature/i, 'another secret fails');
  assert.match(headers['webhook-id']!, /^msg_sig1_\d+$/);
  // kie's: base64 HMAC-SHA256 of "taskId.timestamp", keyed by the secret's text.
  assert.equal(headers['x-webhook-timestamp'], headers['webhook-timestamp']);
  assert.equal(headers['x-webhook-signature'], createHmac('sha256', first).update(`sig1.${headers['x-webhook-timestamp']}`).digest('base64'));

  // A rotation: both secrets sign until the overlap ends, newest first; each verifies on its own.
  const now = Date.now() + 1;
  const live = await store.rotateWebhookSecret('tenant-s', newWebhookSecret(), now, ROTATION_OVERLAP_MS);
  assert.equal(live.length, 2);
  assert.equal(live[1], first);
  const d2 = new Deliverer(store, fetcher, { timeoutMs: 2000, maxAttempts: 4, backoffMs: 20, tickMs: 10 }, pino({ level: 'silent' }));
  after(() => d2.stop());
  await d.stop();
  await owe('sig2', '/ok', '{"n":2}');
  d2.start();
  await waitFor(async () => ((await store.listDeliveries('sig2'))[0]?.status === 'delivered' ? true : undefined), 5000, 10);
  const second = p.received.filter((r) => r.path === '/ok').at(-1)!;
  const h2 = second.headers as Record<string, string>;
  assert.equal(h2['webhook-signature']!.split(' ').length, 2);
  for (const secret of live) assert.deepEqual(new Webhook(secret).verify(second.body, h2), { n: 2 });
  // Past the overlap, the old secret signs no more.
  assert.deepEqual(await store.webhookSecrets('tenant-s', now + ROTATION_OVERLAP_MS, 'unused'), [live[0]]);

  // 410: one try, then no more. A 301 is a failed try, and its Location is not followed.
  await owe('gone', '/gone', '{}');
  await owe('moved', '/moved', '{}');
  const gone = await waitFor(async () => (await store.listDeliveries('gone')).find((x) => x.status !== 'pending'), 5000, 10);
  assert.deepEqual([gone.status, gone.attempts, gone.lastStatus], ['failed', 1, 410]);
  assert.match(gone.lastError ?? '', /410 Gone/);
  const moved = await waitFor(async () => (await store.listDeliveries('moved')).find((x) => x.status !== 'pending'), 5000, 10);
  assert.deepEqual([moved.status, moved.attempts, moved.lastStatus], ['failed', 4, 301]);
  assert.equal(p.received.filter((r) => r.path === '/ok').length, 2, 'nothing reached the redirect target');
});

test('a callback is retried until the receiver says 2xx, and given up after the last try', async () => {
  let calls = 0;
  const p = await peer({
    '/flaky': (_q, res) => res.writeHead(++calls < 3 ? 500 : 200).end(),
    '/down': (_q, res) => res.writeHead(503).end(),
  });
  const store = openSqliteStore(join(tmpDir(), 'd.sqlite'));
  const fetcher = new GuardedFetcher(new UrlGuard(['127.0.0.1']));
  const d = new Deliverer(store, fetcher, { timeoutMs: 2000, maxAttempts: 3, backoffMs: 20, tickMs: 10 }, pino({ level: 'silent' }));
  after(async () => {
    await d.stop();
    await fetcher.close();
    await store.close();
    await p.close();
  });
  for (const [id, path] of [['a', '/flaky'], ['b', '/down']] as const) {
    await store.createTask(makeTask({ id, fileToken: id, nextRunAt: 0 }));
    await store.claimDue('o', 1, 1000, 1);
    await store.commitStep('o', { taskId: id, patch: { nextRunAt: null }, deliveries: [{ taskId: id, url: `${p.url}${path}`, body: '{"code":200}', createdAt: Date.now() }] });
  }
  d.start();
  const a = await waitFor(async () => (await store.listDeliveries('a')).find((x) => x.status !== 'pending'), 5000, 10);
  assert.equal(a.status, 'delivered');
  assert.equal(a.attempts, 3);
  assert.equal(a.lastStatus, 200);
  const b = await waitFor(async () => (await store.listDeliveries('b')).find((x) => x.status !== 'pending'), 5000, 10);
  assert.equal(b.status, 'failed');
  assert.equal(b.attempts, 3);
  assert.match(b.lastError ?? '', /HTTP 503/);
  const posted = p.received.filter((r) => r.path === '/flaky');
  assert.ok(posted.every((r) => r.method === 'POST' && r.body === '{"code":200}' && r.headers['content-type'] === 'application/json'));
});
