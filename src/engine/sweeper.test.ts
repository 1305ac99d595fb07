import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { makeTask } from '../../test/fixtures.js';
import { tmpDir } from '../../test/tmp.js';
import { ResultFiles } from '../results/files.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { TOMBSTONE_MS, sweep } from './sweeper.js';

test('the sweeper removes files past retention, keeps a tombstone, then purges it', async () => {
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 's.sqlite'));
  const files = new ResultFiles(dir, 'http://r');
  const day = 86_400_000;
  const now = 100 * day;
  const old = makeTask({ id: 'old', fileToken: 'old', state: 'succeeded', completedAt: now - 15 * day, nextRunAt: null });
  const fresh = makeTask({ id: 'fresh', fileToken: 'fresh', state: 'succeeded', completedAt: now - 13 * day, nextRunAt: null });
  for (const t of [old, fresh]) {
    await store.createTask(t);
    await files.ensureDir(t);
    writeFileSync(files.path(t, 'video.mp4'), 'x');
  }
  const log = pino({ level: 'silent' });
  assert.deepEqual(await sweep(store, files, join(dir, 'renders'), 14 * day, now, log), { expired: 1, purged: 0 });
  assert.equal(existsSync(files.path(old, 'video.mp4')), false);
  assert.equal(existsSync(files.path(fresh, 'video.mp4')), true);
  assert.equal((await store.getTask('t_a', 'old'))?.state, 'expired');
  assert.deepEqual(await sweep(store, files, join(dir, 'renders'), 14 * day, now + TOMBSTONE_MS, log), { expired: 1, purged: 1 });
  assert.equal(await store.getTask('t_a', 'old'), undefined);
  await store.close();
});
