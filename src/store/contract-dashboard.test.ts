import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import { freshDatabase, pgSkipReason } from '../../test/pg.js';
import { tmpDir } from '../../test/tmp.js';
import type { ApiKeyRow, Store } from './port.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

/** The store methods the dashboard adds (sessions, search, every tenant's list, overview), on both backends. */
const backends: { name: string; skip: string | false; open(t: TestContext): Promise<Store> }[] = [
  {
    name: 'sqlite',
    skip: false,
    async open(t) {
      const s = openSqliteStore(join(tmpDir(), `dash-${Math.random().toString(36).slice(2)}.sqlite`));
      t.after(() => s.close());
      return s;
    },
  },
  {
    name: 'postgres',
    skip: pgSkipReason(),
    async open(t) {
      const url = await freshDatabase();
      if (!url) throw new Error('no PostgreSQL cluster');
      const s = openPostgresStore(url);
      t.after(() => s.close());
      await s.migrate();
      return s;
    },
  },
];

const key = (id: string, tenantId: string): ApiKeyRow => ({ id, tenantId, hash: `h_${id}`, prefix: id.slice(0, 10), name: `name ${id}`, source: 'cli', createdAt: 1, revokedAt: null });

for (const backend of backends) {
  describe(`store contract (dashboard): ${backend.name}`, { skip: backend.skip }, () => {
    test('a session is found while it lasts and its key is live; touch moves it on, never past its end; delete and purge end it', async (t) => {
      const s = await backend.open(t);
      await s.insertKey(key('key_a', 't_a'));
      await s.createSession({ tokenHash: 'th1', keyId: 'key_a', tenantId: 't_a', createdAt: 1000, idleUntil: 2000, expiresAt: 5000 });
      const found = await s.findSession('th1', 1500);
      assert.equal(found?.session.tenantId, 't_a');
      assert.equal(found?.key.id, 'key_a');
      assert.equal(found?.key.name, 'name key_a');
      assert.equal(await s.findSession('th1', 2000), undefined, 'idle past its end');
      assert.equal(await s.findSession('nope', 1500), undefined);
      await s.touchSession('th1', 9000);
      assert.equal((await s.findSession('th1', 4000))?.session.idleUntil, 5000, 'never past expiresAt');
      assert.equal(await s.findSession('th1', 5000), undefined);

      await s.createSession({ tokenHash: 'th2', keyId: 'key_a', tenantId: 't_a', createdAt: 1000, idleUntil: 2000, expiresAt: 5000 });
      await s.deleteSession('th2');
      assert.equal(await s.findSession('th2', 1500), undefined);

      await s.createSession({ tokenHash: 'th3', keyId: 'key_a', tenantId: 't_a', createdAt: 1000, idleUntil: 3000, expiresAt: 5000 });
      assert.equal(await s.purgeSessions(5000), 2, 'th1 (ended at 5000) and th3');
      assert.equal(await s.purgeSessions(5000), 0);
    });

    test("a revoked key's sessions end at once", async (t) => {
      const s = await backend.open(t);
      await s.insertKey(key('key_b', 't_b'));
      await s.createSession({ tokenHash: 'tb', keyId: 'key_b', tenantId: 't_b', createdAt: 1, idleUntil: 10_000, expiresAt: 10_000 });
      assert.ok(await s.findSession('tb', 2));
      assert.equal(await s.revokeKey('key_b', 3), 1);
      assert.equal(await s.findSession('tb', 4), undefined);
    });

    test('search finds a task by its id or by part of its prompt, case-insensitive, taking % and _ as text', async (t) => {
      const s = await backend.open(t);
      await s.createTask(makeTask({ id: 'a1', tenantId: 't1', createdAt: 1 }, { prompt: 'A Lighthouse at dusk' }));
      await s.createTask(makeTask({ id: 'a2', tenantId: 't1', createdAt: 2 }, { prompt: '100% cotton_shirt' }));
      await s.createTask(makeTask({ id: 'a3', tenantId: 't1', createdAt: 3 }, { prompt: '1000 cottonXshirt' }));
      await s.createTask(makeTask({ id: 'b1', tenantId: 't2', createdAt: 4 }, { prompt: 'lighthouse again' }));
      const ids = async (tenant: string | null, search: string) => (await s.listTasks(tenant, { limit: 10, order: 'desc', filter: { search } }))!.map((x) => x.id);
      assert.deepEqual(await ids('t1', 'lighthouse'), ['a1']);
      assert.deepEqual(await ids('t1', 'a2'), ['a2']);
      assert.deepEqual(await ids('t1', '0%'), ['a2'], '% is a character, not a wildcard');
      assert.deepEqual(await ids('t1', 'n_s'), ['a2'], '_ is a character, not a wildcard');
      assert.deepEqual(await ids('t1', 'b1'), [], "another tenant's id");
      assert.deepEqual(await ids(null, 'LIGHTHOUSE'), ['b1', 'a1'], 'every tenant');
      // A–Z are matched in either case; other letters as they are written, alike on both backends
      // (and in the dashboard's live filter, which uses the same rule).
      await s.createTask(makeTask({ id: 'a4', tenantId: 't1', createdAt: 5 }, { prompt: 'ÜBER den Wolken' }));
      assert.deepEqual(await ids('t1', 'ÜBER'), ['a4']);
      assert.deepEqual(await ids('t1', 'Über'), ['a4']);
      assert.deepEqual(await ids('t1', 'über'), []);
    });

    test("every tenant's list (null): by creation time, with a cursor, and filters", async (t) => {
      const s = await backend.open(t);
      for (let i = 0; i < 5; i++) await s.createTask(makeTask({ id: `x${i}`, tenantId: i % 2 ? 't1' : 't2', createdAt: 10 + i, model: i < 2 ? 'm1' : 'm2' }));
      const first = (await s.listTasks(null, { limit: 3, order: 'desc' }))!.map((x) => x.id);
      assert.deepEqual(first, ['x4', 'x3', 'x2']);
      const next = (await s.listTasks(null, { limit: 3, order: 'desc', after: 'x2' }))!.map((x) => x.id);
      assert.deepEqual(next, ['x1', 'x0']);
      assert.deepEqual((await s.listTasks(null, { limit: 9, order: 'desc', filter: { model: 'm1' } }))!.map((x) => x.id), ['x1', 'x0']);
      assert.equal(await s.listTasks(null, { limit: 3, order: 'desc', after: 'nope' }), undefined);
      assert.equal(await s.listTasks('t1', { limit: 3, order: 'desc', after: 'x2' }), undefined, "a cursor of another tenant's");
    });

    test('taskStats: states per window, success and nearest-rank p50/p95 per model and provider, credits charged; per tenant or all', async (t) => {
      const s = await backend.open(t);
      const now = 100_000_000;
      const hour = now - 3_600_000;
      const day = now - 86_400_000;
      let n = 0;
      const put = async (over: Parameters<typeof makeTask>[0]) => s.createTask(makeTask({ id: `s${n++}`, tenantId: 't1', ...over }));
      // m1 on local: 10 succeeded taking 1..10 s, made in the last hour; 2 failed earlier today.
      for (let i = 1; i <= 10; i++) await put({ model: 'm1', state: 'succeeded', createdAt: now - 1000 * 60, completedAt: now - 1000 * 60 + i * 1000 });
      for (let i = 0; i < 2; i++) await put({ model: 'm1', state: 'failed', createdAt: hour - 1000, completedAt: hour });
      // m2 on p2: one queued now; one canceled (left out of success).
      await put({ model: 'm2', provider: 'p2', state: 'queued', createdAt: now - 10 });
      await put({ model: 'm2', provider: 'p2', state: 'canceled', createdAt: now - 10, completedAt: now });
      // Too old, and another tenant's.
      await put({ model: 'm1', state: 'succeeded', createdAt: day - 1, completedAt: day });
      await s.createTask(makeTask({ id: 'other', tenantId: 't2', model: 'm1', state: 'failed', createdAt: now - 5, completedAt: now }));

      const st = await s.taskStats('t1', { hourFrom: hour, dayFrom: day });
      assert.deepEqual(st.states, [
        { state: 'canceled', hour: 1, day: 1 },
        { state: 'failed', hour: 0, day: 2 },
        { state: 'queued', hour: 1, day: 1 },
        { state: 'succeeded', hour: 10, day: 10 },
      ]);
      assert.deepEqual(st.models, [{ name: 'm1', ended: 12, succeeded: 10, p50Ms: 5000, p95Ms: 10_000 }]);
      assert.deepEqual(st.providers, [{ name: 'local', ended: 12, succeeded: 10, p50Ms: 5000, p95Ms: 10_000 }]);
      assert.equal(st.creditsCharged, 0);

      const all = await s.taskStats(null, { hourFrom: hour, dayFrom: day });
      assert.deepEqual(all.models, [{ name: 'm1', ended: 13, succeeded: 10, p50Ms: 5000, p95Ms: 10_000 }]);
      assert.equal(all.states.find((x) => x.state === 'failed')?.day, 3);
    });
    test('taskStats counts the credits charged by the closes since dayFrom, per tenant or all', async (t) => {
      const s = await backend.open(t);
      const now = 100_000_000;
      for (const tenant of ['t1', 't2']) await s.addCredits(tenant, 100, now - 10, null);
      const charge = { credits: 20, perSecond: 2.5, item: 'video' as const };
      await s.createTask(makeTask({ id: 'c1', tenantId: 't1', fileToken: 'f1', state: 'generating', nextRunAt: now, createdAt: now - 5, charge }));
      await s.createTask(makeTask({ id: 'c2', tenantId: 't2', fileToken: 'f2', state: 'generating', nextRunAt: now, createdAt: now - 5, charge }));
      await s.claimDue('E', now, 10_000, 2);
      const close = (tenantId: string, taskId: string, amount: number, charged: number) => ({ tenantId, taskId, item: 'video', kind: 'settle' as const, amount, charged, at: now, reason: 'succeeded' });
      assert.equal(await s.commitStep('E', { taskId: 'c1', patch: { state: 'succeeded', nextRunAt: null, completedAt: now }, close: close('t1', 'c1', 5, 15) }), true);
      assert.equal(await s.commitStep('E', { taskId: 'c2', patch: { state: 'succeeded', nextRunAt: null, completedAt: now }, close: close('t2', 'c2', 8, 12) }), true);
      const w = { hourFrom: now - 3_600_000, dayFrom: now - 86_400_000 };
      assert.equal((await s.taskStats('t1', w)).creditsCharged, 15);
      assert.equal((await s.taskStats(null, w)).creditsCharged, 27);
      assert.equal((await s.taskStats(null, { hourFrom: now + 1, dayFrom: now + 1 })).creditsCharged, 0, 'closes before the window');
    });
  });
}
