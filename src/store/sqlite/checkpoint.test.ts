import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from './driver.js';
import { waitFor } from '../../../test/server.js';
import { tmpDir } from '../../../test/tmp.js';
import { Checkpointer } from './checkpoint.js';

test('the checkpointer copies the WAL into the database from its own thread, and the WAL starts over', async () => {
  const file = join(tmpDir(), 'c.sqlite');
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT)');
  const checkpointer = new Checkpointer(db, file, 256 * 1024, 10);
  const size = (f: string) => statSync(f, { throwIfNoEntry: false })?.size ?? 0;
  const insert = db.prepare('INSERT INTO t (pad) VALUES (?)');
  const write = (n: number) => db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run('x'.repeat(1000));
  })();
  try {
    const before = size(file);
    write(2000); // about 2 MB of pages, all in the WAL: the main connection no longer checkpoints
    assert.ok(size(`${file}-wal`) > 1024 * 1024);
    assert.ok(size(file) < before + 64 * 1024, 'nothing was copied on the writing thread');
    await waitFor(async () => (size(file) > 1900 * 1024 ? true : undefined), 5000, 10);
    // Once everything is copied, the next writes start the WAL over instead of growing it.
    for (let round = 0; round < 20; round++) {
      write(200);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(size(`${file}-wal`) < 4 * 1024 * 1024, `the WAL stays bounded (${size(`${file}-wal`)} bytes)`);
    assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 6000);
  } finally {
    await checkpointer.close();
    db.close();
  }
});
