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
import { Deliverer, backoff } from './deliveries.js';

test('backoff grows 4× from the base and stops at 10 minutes', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoff(n, 5000)), [5000, 20000, 80000, 320000, 600000, 600000]);
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
