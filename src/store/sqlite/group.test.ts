import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from './driver.js';
import { tmpDir } from '../../../test/tmp.js';
import { grouped } from './group.js';

test('group commit: calls of several functions in one turn share a commit; a failed call undoes only itself', async () => {
  const file = join(tmpDir(), 'g.sqlite');
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE a (id TEXT PRIMARY KEY); CREATE TABLE b (id TEXT PRIMARY KEY, a TEXT NOT NULL)');
  const insA = db.prepare('INSERT INTO a (id) VALUES (?)');
  const insB = db.prepare('INSERT INTO b (id, a) VALUES (?, ?)');
  const single = grouped(db, (id: string) => insA.run(id).changes, { single: true });
  // Two statements: the second fails when `b` is null, and the first must not stay.
  const pair = grouped(db, (id: string, b: string | null) => {
    insA.run(id);
    insB.run(`${id}-b`, b);
    return id;
  });
  const other = new BetterSqlite3(file, { readonly: true });
  const ids = (t: string) => (other.prepare(`SELECT id FROM ${t} ORDER BY id`).all() as { id: string }[]).map((r) => r.id);

  const results = await Promise.allSettled([single('x1'), pair('p1', 'ok'), pair('p2', null), single('x1'), single('x2')]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
  assert.match(String((results[2] as PromiseRejectedResult).reason), /NOT NULL/);
  assert.match(String((results[3] as PromiseRejectedResult).reason), /UNIQUE/);
  // Settled means committed: another connection sees exactly the calls that succeeded.
  assert.deepEqual(ids('a'), ['p1', 'x1', 'x2']);
  assert.deepEqual(ids('b'), ['p1-b']);
  other.close();
  db.close();
});
