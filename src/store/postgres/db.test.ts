import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { makeTask } from '../../../test/fixtures.js';
import { freshDatabase, pgSkipReason } from '../../../test/pg.js';
import { openPostgresStore } from './index.js';

test('a create refused for its credits keeps its connection: no new session per refusal', { skip: pgSkipReason() }, async (t) => {
  const url = (await freshDatabase())!;
  const store = openPostgresStore(url);
  const admin = new pg.Client({ connectionString: url });
  t.after(async () => {
    await admin.end().catch(() => {});
    await store.close();
  });
  await store.migrate();
  await admin.connect();
  const sessions = async () => Number((await admin.query<{ n: string }>(`SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()`)).rows[0]!.n);
  await store.addCredits('t_a', 5, 1, null);
  const before = await sessions();
  for (let i = 0; i < 20; i++) {
    await assert.rejects(store.createTask(makeTask({ id: `r${i}`, fileToken: `f${i}`, charge: { credits: 10, perSecond: 1, item: 'video' } })), /costs 10 credits/);
  }
  // Sessions are counted as they end or are read; a pool that closed each connection made 20.
  assert.ok((await sessions()) - before <= 1, `new sessions: ${(await sessions()) - before}`);
  assert.equal((await store.creditAccount('t_a'))?.balance, 5);
});
