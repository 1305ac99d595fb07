import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../../test/tmp.js';
import type { Store } from '../store/port.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { KeyCache } from './cache.js';
import { hashKey } from './keys.js';

/** A real store whose key lookups are counted, and can be made to fail. */
function counted(t: { after(fn: () => unknown): void }) {
  const store = openSqliteStore(join(tmpDir(), 'keys.sqlite'));
  t.after(() => store.close());
  let lookups = 0;
  let failing = false;
  const wrapped: Store = {
    ...store,
    async findKeyByHash(hash) {
      lookups++;
      await new Promise((r) => setTimeout(r, 20));
      if (failing) throw new Error('database unreachable');
      return store.findKeyByHash(hash);
    },
  };
  return { store, wrapped, lookups: () => lookups, fail: (on: boolean) => void (failing = on) };
}

test('keys: requests that miss at once share one lookup; a revoked key stops within the TTL; an unknown key is never kept', async (t) => {
  const s = counted(t);
  await s.store.insertKey({ id: 'k1', tenantId: 't1', hash: hashKey('sk-one'), prefix: 'sk-one', name: 'one', source: 'cli', createdAt: 1, revokedAt: null });
  const cache = new KeyCache(s.wrapped, 200);
  const answers = await Promise.all(Array.from({ length: 25 }, () => cache.tenantOf('sk-one')));
  assert.deepEqual(new Set(answers), new Set(['t1']));
  assert.equal(s.lookups(), 1, 'one lookup for 25 requests at once');
  assert.equal(cache.cachedTenant('sk-one'), 't1');
  // Unknown keys: looked up each time, never kept.
  assert.deepEqual(await Promise.all([cache.tenantOf('sk-nope'), cache.tenantOf('sk-nope')]), [undefined, undefined]);
  assert.equal(await cache.tenantOf('sk-nope'), undefined);
  assert.equal(s.lookups(), 3, 'the two at once shared one, the third looked again');
  // Revoked: within the TTL it still answers from memory, after it no longer.
  await s.store.revokeKey('k1', 2);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(await cache.tenantOf('sk-one'), undefined);
  assert.equal(cache.cachedTenant('sk-one'), undefined);
});

test('keys: a lookup that fails fails the requests that shared it, and the next request looks again', async (t) => {
  const s = counted(t);
  await s.store.insertKey({ id: 'k2', tenantId: 't2', hash: hashKey('sk-two'), prefix: 'sk-two', name: 'two', source: 'cli', createdAt: 1, revokedAt: null });
  const cache = new KeyCache(s.wrapped, 1000);
  s.fail(true);
  const failed = await Promise.allSettled([cache.tenantOf('sk-two'), cache.tenantOf('sk-two')]);
  assert.deepEqual(failed.map((f) => f.status), ['rejected', 'rejected']);
  assert.equal(s.lookups(), 1);
  s.fail(false);
  assert.equal(await cache.tenantOf('sk-two'), 't2');
  assert.equal(s.lookups(), 2);
});
