import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import { tmpDir } from '../../test/tmp.js';
import type { NewDelivery, Store } from './port.js';
import { openSqliteStore } from './sqlite/index.js';

/** Every store backend runs the same contract. A PostgreSQL backend joins this list. */
const backends: { name: string; open: () => Promise<Store> }[] = [
  { name: 'sqlite', open: async () => openSqliteStore(join(tmpDir(), `store-${Math.random().toString(36).slice(2)}.sqlite`)) },
];

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    test('create is idempotent on the id and reads are per tenant', async () => {
      const s = await backend.open();
      const t = makeTask({ id: 'a1', tenantId: 't1', fileToken: 'f1' });
      assert.equal(await s.createTask(t), true);
      assert.equal(await s.createTask({ ...t, model: 'other' }), false);
      assert.equal((await s.getTask('t1', 'a1'))?.model, 'veo3.1-fast');
      assert.equal(await s.getTask('t2', 'a1'), undefined, "another tenant's task is absent");
      assert.deepEqual(await s.getTask('t1', 'a1'), t, 'round-trips every field');
      await s.close();
    });

    test('claim hands a due task to exactly one owner until the lease expires', async () => {
      const s = await backend.open();
      const now = 1_000_000;
      for (let i = 0; i < 5; i++) await s.createTask(makeTask({ id: `c${i}`, fileToken: `fc${i}`, nextRunAt: now - i }));
      await s.createTask(makeTask({ id: 'later', fileToken: 'fl', nextRunAt: now + 60_000 }));
      const a = await s.claimDue('A', now, 10_000, 3);
      const b = await s.claimDue('B', now, 10_000, 10);
      assert.equal(a.length, 3);
      assert.equal(b.length, 2);
      assert.deepEqual(a.map((t) => t.id), ['c4', 'c3', 'c2'], 'oldest due first');
      assert.equal(new Set([...a, ...b].map((t) => t.id)).size, 5, 'no task twice');
      assert.deepEqual(await s.claimDue('C', now + 5_000, 10_000, 10), [], 'leased tasks are not due');
      const again = await s.claimDue('C', now + 10_001, 10_000, 10);
      assert.equal(again.length, 5, 'expired leases are claimable');
      await s.close();
    });

    test('commit is fenced by the lease and applies everything together', async () => {
      const s = await backend.open();
      const now = 2_000_000;
      await s.createTask(makeTask({ id: 'f', fileToken: 'ff', nextRunAt: now }));
      const [t] = await s.claimDue('A', now, 1000, 1);
      assert.ok(t);
      const commit = {
        taskId: 'f',
        patch: { state: 'generating' as const, upstreamId: 'up1', attemptCount: 1, nextRunAt: now + 500, updatedAt: now },
        attempt: { taskId: 'f', n: 0, step: 'submit' as const, provider: 'local', upstreamId: 'up1', startedAt: now, endedAt: now, outcome: 'submitted' as const, error: null },
        artifacts: [{ taskId: 'f', kind: 'input_0', path: '/x', contentType: 'image/png', bytes: 3, width: null, height: null, durationMs: null, codec: null, createdAt: now }],
        deliveries: [{ taskId: 'f', url: 'https://cb.example/x', body: '{}', createdAt: now }],
      };
      assert.equal(await s.commitStep('B', commit), false, 'a non-owner cannot commit');
      assert.equal((await s.getTask('t_a', 'f'))?.state, 'queued');
      assert.equal(await s.commitStep('A', commit), true);
      const after = await s.getTask('t_a', 'f');
      assert.equal(after?.state, 'generating');
      assert.equal(after?.upstreamId, 'up1');
      assert.equal((await s.listAttempts('f'))[0]?.n, 1);
      assert.equal((await s.listArtifacts('f')).length, 1);
      assert.equal((await s.listDeliveries('f')).length, 1);
      assert.equal(await s.commitStep('A', commit), false, 'the lease was released by the commit');
      // The next attempt gets the next number.
      const [t2] = await s.claimDue('A', now + 600, 1000, 1);
      assert.ok(t2);
      await s.commitStep('A', { taskId: 'f', patch: { nextRunAt: null }, attempt: { ...commit.attempt, outcome: 'retry', error: 'boom' } });
      assert.deepEqual((await s.listAttempts('f')).map((a) => [a.n, a.outcome]), [[1, 'submitted'], [2, 'retry']]);
      await s.close();
    });

    test('a commit with keepLeaseUntil keeps the task with its owner for the next step', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'k', fileToken: 'fk', nextRunAt: 0 }));
      await s.claimDue('A', 10, 100, 1);
      assert.equal(await s.commitStep('A', { taskId: 'k', patch: { state: 'generating', nextRunAt: 10 }, keepLeaseUntil: 5_000 }), true);
      assert.deepEqual(await s.claimDue('B', 20, 100, 1), [], 'still leased to A');
      // keepLease: the lease stays as it stands (to 5 000), neither released nor moved.
      assert.equal(await s.commitStep('B', { taskId: 'k', patch: { nextRunAt: 20 }, keepLease: true }), false, 'B holds no lease');
      assert.equal(await s.commitStep('A', { taskId: 'k', patch: { nextRunAt: 20 }, keepLease: true }), true);
      assert.deepEqual(await s.claimDue('B', 4_999, 100, 1), [], 'still leased to A until 5 000');
      // A heartbeat never shortens a lease.
      assert.deepEqual(await s.extendLeases('A', ['k'], 1_000), ['k']);
      assert.deepEqual(await s.claimDue('B', 4_999, 100, 1), [], 'the shorter extension did not shorten it');
      assert.equal(await s.commitStep('A', { taskId: 'k', patch: { nextRunAt: 30 } }), true, 'A commits the next step');
      assert.equal((await s.claimDue('B', 40, 100, 1)).length, 1, 'released after the last step');
      await s.close();
    });

    test("a task created leased (handed to the engine of the creating process) is nobody else's until the lease ends", async () => {
      const s = await backend.open();
      assert.equal(await s.createTask(makeTask({ id: 'n', fileToken: 'fn', nextRunAt: 10 }), { owner: 'A', until: 1_000 }), true);
      assert.deepEqual(await s.claimDue('B', 500, 100, 5), [], 'leased to A from its insert');
      assert.equal(await s.commitStep('A', { taskId: 'n', patch: { nextRunAt: 600 }, keepLease: true }), true, 'A runs it without a claim');
      assert.equal((await s.claimDue('B', 1_001, 100, 5))[0]?.id, 'n', 'A died: claimable once the lease ends');
      await s.close();
    });

    test('a heartbeat extends only the leases its owner holds', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'h', fileToken: 'fh', nextRunAt: 0 }));
      await s.claimDue('A', 10, 100, 1);
      assert.deepEqual(await s.extendLeases('B', ['h'], 10_000), []);
      assert.deepEqual(await s.extendLeases('A', ['h'], 10_000), ['h']);
      assert.deepEqual(await s.claimDue('B', 5_000, 100, 1), [], 'extended lease holds');
      await s.close();
    });

    test('wakeByUpstream makes a waiting task due now', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'w', fileToken: 'fw', state: 'generating', upstreamId: 'u9', nextRunAt: 50_000 }));
      await s.wakeByUpstream('local', 'u9', 1_000);
      assert.equal((await s.getTask('t_a', 'w'))?.nextRunAt, 1_000);
      // Held by an engine that died: due once its lease ends, not at the time it was held for.
      await s.createTask(makeTask({ id: 'w2', fileToken: 'fw2', state: 'generating', upstreamId: 'u10', nextRunAt: 1_000 }));
      await s.claimDue('dead', 1_000, 1_000, 5);
      await s.commitStep('dead', { taskId: 'w2', patch: { nextRunAt: 60_000 }, keepLeaseUntil: 61_000 });
      await s.wakeByUpstream('local', 'u10', 2_000);
      assert.deepEqual((await s.claimDue('B', 2_500, 1_000, 5)).map((t) => t.id), ['w'], 'w2 is still leased');
      const w2 = (await s.claimDue('C', 61_001, 1_000, 5)).find((t) => t.id === 'w2');
      assert.deepEqual([w2?.id, w2?.nextRunAt], ['w2', 2_000]);
      await s.close();
    });

    test('countInFlight counts generating tasks with an upstream job, per provider; routing fields round-trip', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'f1', fileToken: 'f1', state: 'generating', provider: 'kie', upstreamId: 'a', routeIndex: 1, submittedAt: 77, fallback: true }));
      await s.createTask(makeTask({ id: 'f2', fileToken: 'f2', state: 'generating', provider: 'kie', upstreamId: 'b' }));
      await s.createTask(makeTask({ id: 'f3', fileToken: 'f3', state: 'generating', provider: 'fal', upstreamId: null }));
      await s.createTask(makeTask({ id: 'f4', fileToken: 'f4', state: 'succeeded', provider: 'fal', upstreamId: 'c' }));
      assert.deepEqual(await s.countInFlight(), { kie: 2 });
      const t = await s.getTask('t_a', 'f1');
      assert.deepEqual([t?.routeIndex, t?.submittedAt, t?.fallback], [1, 77, true]);
      await s.close();
    });

    test('requestHd only applies to succeeded tasks and makes them due', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating' }));
      assert.equal((await s.requestHd('t_a', 'ok', 100))?.hdState, 'pending');
      assert.equal((await s.getTask('t_a', 'ok'))?.nextRunAt, 100);
      assert.equal((await s.requestHd('t_a', 'run', 100))?.hdState, 'none');
      assert.equal(await s.requestHd('t_other', 'ok', 100), undefined);
      await s.close();
    });

    test('requestUhd keeps its callback URL, and leaves a pending or stored rendition alone', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating' }));
      const first = await s.requestUhd('t_a', 'ok', 100, 'https://cb.example/4k');
      assert.deepEqual([first?.asked, first?.task.uhdState, first?.task.uhdCallbackUrl, first?.task.nextRunAt], [true, 'pending', 'https://cb.example/4k', 100]);
      const second = await s.requestUhd('t_a', 'ok', 200, null);
      assert.deepEqual([second?.asked, second?.task.uhdCallbackUrl], [false, 'https://cb.example/4k'], 'a second ask changes nothing, and says so');
      const running = await s.requestUhd('t_a', 'run', 100, null);
      assert.deepEqual([running?.asked, running?.task.uhdState], [false, 'none']);
      assert.equal(await s.requestUhd('t_other', 'ok', 100, null), undefined);
      await s.close();
    });

    test('a rendition asked for while a step of the task runs is not dropped by that step\'s commit', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.requestHd('t_a', 'ok', 100);
      const [held] = await s.claimDue('E', 200, 10_000, 10);
      assert.equal(held?.id, 'ok');
      assert.equal((await s.requestUhd('t_a', 'ok', 300, null))?.asked, true); // lands while the 1080p step runs
      assert.ok(await s.commitStep('E', { taskId: 'ok', patch: { hdState: 'ready', nextRunAt: null, updatedAt: 400 } }));
      const after = await s.getTask('t_a', 'ok');
      assert.deepEqual([after?.hdState, after?.uhdState], ['ready', 'pending']);
      assert.ok(after?.nextRunAt !== null && after!.nextRunAt <= 400, `still due (${after?.nextRunAt})`);
      const [again] = await s.claimDue('E', 500, 10_000, 10);
      assert.equal(again?.uhdState, 'pending', 'the engine finds the 4k request');
      assert.ok(await s.commitStep('E', { taskId: 'ok', patch: { uhdState: 'ready', nextRunAt: null, updatedAt: 600 } }));
      assert.equal((await s.getTask('t_a', 'ok'))?.nextRunAt, null, 'nothing owed: not due');
      await s.close();
    });

    test('listTasks pages a tenant\'s tasks by creation time in both orders; an unknown cursor is undefined', async () => {
      const s = await backend.open();
      // Two tasks share a creation time: the id breaks the tie, so no page skips or repeats one.
      const times = [10, 20, 20, 30, 40];
      for (const [i, at] of times.entries()) await s.createTask(makeTask({ id: `l${i}`, fileToken: `fl${i}`, createdAt: at }));
      await s.createTask(makeTask({ id: 'other', tenantId: 't_b', fileToken: 'fx', createdAt: 25 }));
      const walk = async (order: 'asc' | 'desc') => {
        const seen: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = (await s.listTasks('t_a', { limit: 2, order, ...(after ? { after } : {}) }))!;
          seen.push(...page.map((t) => t.id));
          if (page.length < 2) return seen;
          after = page[page.length - 1]!.id;
        }
      };
      assert.deepEqual(await walk('asc'), ['l0', 'l1', 'l2', 'l3', 'l4']);
      assert.deepEqual(await walk('desc'), ['l4', 'l3', 'l2', 'l1', 'l0']);
      assert.equal(await s.listTasks('t_a', { limit: 2, order: 'asc', after: 'other' }), undefined, "another tenant's id is no cursor");
      assert.equal(await s.listTasks('t_a', { limit: 2, order: 'asc', after: 'nope' }), undefined);
      await s.close();
    });

    test('deleteTask removes an ended task with its records, never a running one or another tenant\'s', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'done', fileToken: 'fd', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating' }));
      await s.commitStep('nobody', { taskId: 'done', patch: {} });
      assert.equal(await s.deleteTask('t_b', 'done'), false);
      assert.equal(await s.deleteTask('t_a', 'run'), false);
      assert.equal(await s.deleteTask('t_a', 'done'), true);
      assert.equal(await s.getTask('t_a', 'done'), undefined);
      assert.deepEqual(await s.listArtifacts('done'), []);
      assert.equal(await s.deleteTask('t_a', 'done'), false, 'gone already');
      assert.ok(await s.getTask('t_a', 'run'));
      await s.close();
    });

    test('retention: expiring, tombstones, purge', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'old', fileToken: 'fo1', state: 'succeeded', completedAt: 100, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'new', fileToken: 'fn1', state: 'succeeded', completedAt: 10_000, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr1', state: 'generating' }));
      const due = await s.listExpiring(5_000, 10);
      assert.deepEqual(due.map((t) => t.id), ['old']);
      await s.markExpired(['old'], 6_000);
      assert.equal((await s.getTask('t_a', 'old'))?.state, 'expired');
      assert.deepEqual(await s.listExpiring(5_000, 10), []);
      assert.equal(await s.purgeTombstones(50), 0);
      assert.equal(await s.purgeTombstones(200), 1);
      assert.equal(await s.getTask('t_a', 'old'), undefined);
      await s.close();
    });

    test('deliveries: claim, finish, retry schedule', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'd', fileToken: 'fd', nextRunAt: 0 }));
      await s.claimDue('A', 1, 1000, 1);
      await s.commitStep('A', { taskId: 'd', patch: { nextRunAt: null }, deliveries: [{ taskId: 'd', url: 'u', body: 'b', createdAt: 10 }] });
      const [d] = await s.claimDueDeliveries(10, 1000, 5);
      assert.ok(d);
      assert.deepEqual(await s.claimDueDeliveries(20, 1000, 5), [], 'leased');
      await s.finishDelivery({ id: d.id, attempts: 1, status: 'pending', nextAttemptAt: 5_000, lastError: 'HTTP 500', lastStatus: 500, deliveredAt: null });
      assert.deepEqual(await s.claimDueDeliveries(4_000, 1000, 5), []);
      const [again] = await s.claimDueDeliveries(5_000, 1000, 5);
      assert.equal(again?.attempts, 1);
      await s.finishDelivery({ id: d.id, attempts: 2, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 5_001 });
      assert.equal((await s.listDeliveries('d'))[0]?.status, 'delivered');
      await s.close();
    });

    test('deliveries handed over at commit: inserted leased, with their ids; claimable once the lease ends', async () => {
      const s = await backend.open();
      await s.createTask(makeTask({ id: 'h', fileToken: 'fh', nextRunAt: 0 }));
      await s.claimDue('A', 1, 1000, 1);
      const owed: NewDelivery[] = [{ taskId: 'h', url: 'u1', body: 'b1', createdAt: 10 }, { taskId: 'h', url: 'u2', body: 'b2', createdAt: 10 }];
      assert.equal(await s.commitStep('A', { taskId: 'h', patch: { nextRunAt: null }, deliveries: owed, deliveriesLeasedUntil: 1_000 }), true);
      const listed = await s.listDeliveries('h');
      assert.deepEqual(owed.map((d) => d.id), listed.map((d) => d.id), 'the store set the ids of the rows it inserted');
      assert.deepEqual(await s.claimDueDeliveries(500, 1000, 5), [], 'held by the committing process');
      assert.deepEqual((await s.claimDueDeliveries(1_001, 1000, 5)).map((d) => d.url).sort(), ['u1', 'u2'], 'its process died: claimed by another');
      await s.close();
    });

    test('keys: stored hashed, revocable by id or prefix', async () => {
      const s = await backend.open();
      await s.insertKey({ id: 'k1', tenantId: 't1', hash: 'h1', prefix: 'sk-abc', name: '', source: 'cli', createdAt: 1, revokedAt: null });
      assert.equal((await s.findKeyByHash('h1'))?.tenantId, 't1');
      assert.equal(await s.revokeKey('sk-abc', 2), 1);
      assert.equal(await s.findKeyByHash('h1'), undefined);
      assert.equal(await s.revokeKey('k1', 3), 0, 'already revoked');
      await s.close();
    });
  });
}
