import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ResultFiles } from '../results/files.js';
import type { Store } from '../store/port.js';
import { forEachLimited } from '../storage/util.js';

/** How long an expired task's tombstone is kept after its files go, so clients get "expired", not "unknown". */
export const TOMBSTONE_MS = 30 * 86_400_000;

/**
 * Removes results past the retention: the task's files go, the record becomes an `expired`
 * tombstone, and tombstones go after another 30 days. Stale render scratch files go too.
 */
export async function sweep(
  store: Store,
  files: ResultFiles,
  rendersDir: string,
  retentionMs: number,
  now: number,
  log: Logger,
): Promise<{ expired: number; purged: number }> {
  let expired = 0;
  for (;;) {
    const tasks = await store.listExpiring(now - retentionMs, 200);
    if (tasks.length === 0) break;
    // A removal that fails (the storage does not answer) fails the sweep before the tasks are
    // marked: the next sweep removes them again (a delete of what is gone is not an error).
    await forEachLimited(tasks, 8, (t) => files.remove(t));
    await store.markExpired(tasks.map((t) => t.id), now);
    expired += tasks.length;
    if (tasks.length < 200) break;
  }
  const purged = await store.purgeTombstones(now - retentionMs - TOMBSTONE_MS);
  // Idempotency keys past their time (REELAY_IDEMPOTENCY_TTL_HOURS), a thousand a statement.
  let keys = 0;
  while (keys < 100_000) {
    const n = await store.purgeKeys(now);
    keys += n;
    if (n < 1000) break;
  }
  try {
    for (const name of readdirSync(rendersDir)) {
      const p = join(rendersDir, name);
      if (name !== 'renders.log' && statSync(p).mtimeMs < now - retentionMs) rmSync(p, { force: true });
    }
  } catch {
    // no renders folder yet
  }
  if (expired || purged || keys) log.info({ expired, purged, keys }, 'retention sweep');
  return { expired, purged };
}
