import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { makeTask } from '../../test/fixtures.js';
import { tmpDir } from '../../test/tmp.js';
import { fileToken } from '../core/ids.js';
import { HD_FILE, ResultFiles, VIDEO_FILE, inputFileName } from '../results/files.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { TOMBSTONE_MS, sweep } from './sweeper.js';

test('the sweeper removes files past retention, keeps a tombstone, then purges it', async () => {
  const dir = tmpDir();
  const store = openSqliteStore(join(dir, 's.sqlite'));
  const files = new ResultFiles(dir, 'http://r');
  const day = 86_400_000;
  const now = 100 * day;
  // Two tasks in one shard folder (their tokens share the first two characters), one with an
  // input image and a 1080p file; a third stored in the older per-task folder layout.
  const token = fileToken();
  const old = makeTask({ id: 'old', fileToken: `${token.slice(0, 21)}A`, state: 'succeeded', completedAt: now - 15 * day, nextRunAt: null }, { images: ['http://img.test/a.png'] });
  const fresh = makeTask({ id: 'fresh', fileToken: `${token.slice(0, 21)}B`, state: 'succeeded', completedAt: now - 13 * day, nextRunAt: null });
  const legacy = makeTask({ id: 'legacy', fileToken: fileToken(), state: 'succeeded', completedAt: now - 20 * day, nextRunAt: null });
  for (const t of [old, fresh]) {
    await store.createTask(t);
    await files.storeBytes(t, VIDEO_FILE, Buffer.from('x'));
  }
  await files.storeBytes(old, HD_FILE, Buffer.from('x'));
  await files.storeBytes(old, inputFileName(0, 'png'), Buffer.from('x'));
  await store.createTask(legacy);
  mkdirSync(join(dir, 'results', legacy.fileToken));
  writeFileSync(join(dir, 'results', legacy.fileToken, VIDEO_FILE), 'x');
  assert.equal(files.existing(legacy, VIDEO_FILE), join(dir, 'results', legacy.fileToken, VIDEO_FILE));
  const log = pino({ level: 'silent' });
  assert.deepEqual(await sweep(store, files, join(dir, 'renders'), 14 * day, now, log), { expired: 2, purged: 0 });
  assert.deepEqual(readdirSync(join(dir, 'results', token.slice(0, 2))), [`${fresh.fileToken}-${VIDEO_FILE}`], 'the old task\'s files are gone, the fresh one\'s stay');
  assert.equal(existsSync(join(dir, 'results', legacy.fileToken)), false);
  assert.equal((await store.getTask('t_a', 'old'))?.state, 'expired');
  assert.deepEqual(await sweep(store, files, join(dir, 'renders'), 14 * day, now + TOMBSTONE_MS, log), { expired: 1, purged: 2 });
  assert.equal(await store.getTask('t_a', 'old'), undefined);
  await store.close();
});
