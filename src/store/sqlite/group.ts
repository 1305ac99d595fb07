import type { Database } from 'better-sqlite3';

/**
 * Group commit: calls of `fn` that arrive in the same turn of the event loop run in one
 * transaction (one WAL write instead of one each), each inside its own savepoint, so one call's
 * failure undoes only that call. Each caller's promise settles after the shared commit.
 */
export function grouped<A extends unknown[], R>(db: Database, fn: (...args: A) => R): (...args: A) => Promise<R> {
  type Call = { args: A; resolve: (r: R) => void; reject: (e: unknown) => void; ok?: boolean; result?: R; error?: unknown };
  const one = db.transaction(fn);
  const all = db.transaction((batch: Call[]) => {
    for (const c of batch) {
      try {
        c.result = one(...c.args);
        c.ok = true;
      } catch (e) {
        c.error = e;
        c.ok = false;
      }
    }
  });
  let pending: Call[] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    try {
      all.immediate(batch);
    } catch (e) {
      for (const c of batch) c.reject(e);
      return;
    }
    for (const c of batch) {
      if (c.ok) c.resolve(c.result as R);
      else c.reject(c.error);
    }
  };
  return (...args: A) =>
    new Promise<R>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ args, resolve, reject });
    });
}
