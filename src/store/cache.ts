import type { Task } from '../core/task.js';
import type { Store } from './port.js';

/**
 * A read cache of tasks in front of a store, for the query path (clients poll the same tasks over
 * and over). Every write this process makes to a task drops its entry, so a read after a write sees
 * the write (`wakeByUpstream` only moves `next_run_at`, which no answer shows, so it keeps the
 * entry). It is only correct while this process is the only writer of its tasks, which holds for
 * the embedded store (one process per SQLite file); a store shared by several processes must not be
 * wrapped (or must invalidate across processes).
 *
 * Entries are kept in insertion order and the oldest dropped past `maxEntries` (default 10000).
 */
export function withTaskCache(inner: Store, maxEntries = 10_000): Store {
  const cache = new Map<string, Task>();
  const key = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;
  // Task ids are unique across tenants, so an id-only index makes invalidation O(1).
  const byId = new Map<string, string>();
  const drop = (id: string) => {
    const k = byId.get(id);
    if (k === undefined) return;
    cache.delete(k);
    byId.delete(id);
  };

  return {
    ...inner,
    peekTask(tenantId, id) {
      return cache.get(key(tenantId, id));
    },
    async getTask(tenantId, id) {
      const k = key(tenantId, id);
      const hit = cache.get(k);
      if (hit) return hit;
      const task = await inner.getTask(tenantId, id);
      if (task) {
        if (cache.size >= maxEntries) {
          const oldest = cache.keys().next().value as string;
          cache.delete(oldest);
          byId.delete(oldest.slice(oldest.indexOf('\u0000') + 1));
        }
        cache.set(k, task);
        byId.set(id, k);
      }
      return task;
    },
    async commitStep(owner, commit) {
      drop(commit.taskId);
      const ok = await inner.commitStep(owner, commit);
      drop(commit.taskId);
      return ok;
    },
    // Dropped before and after the write: a read that raced the write may have put the old task back.
    async requestHd(tenantId, id, now, price) {
      drop(id);
      const task = await inner.requestHd(tenantId, id, now, price);
      drop(id);
      return task;
    },
    async requestUhd(tenantId, id, now, callbackUrl, price) {
      drop(id);
      const task = await inner.requestUhd(tenantId, id, now, callbackUrl, price);
      drop(id);
      return task;
    },
    async cancelTask(tenantId, id, now, o) {
      drop(id);
      const r = await inner.cancelTask(tenantId, id, now, o);
      drop(id);
      return r;
    },
    async deleteTask(tenantId, id) {
      drop(id);
      const gone = await inner.deleteTask(tenantId, id);
      drop(id);
      return gone;
    },
    async markExpired(ids, now) {
      for (const id of ids) drop(id);
      return inner.markExpired(ids, now);
    },
    async purgeTombstones(before) {
      const n = await inner.purgeTombstones(before);
      if (n > 0) {
        cache.clear();
        byId.clear();
      }
      return n;
    },
  };
}
