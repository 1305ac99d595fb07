import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import pg from 'pg';
import { makeTask } from '../../test/fixtures.js';
import { freshDatabase, pgControl, pgSkipReason, startCluster, stopCluster } from '../../test/pg.js';
import { tmpDir } from '../../test/tmp.js';
import type { Attempt, Task } from '../core/task.js';
import { InsufficientCreditsError, type KeyClaim, KeyLostError, type KeyRef, type NewDelivery, type Store } from './port.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/index.js';
import { migrations } from './postgres/migrate.js';
import { openSqliteStore } from './sqlite/index.js';

/**
 * The store contract: every guarantee of `port.ts`, run against each backend. PostgreSQL runs in
 * the cluster `scripts/run-tests.mjs` starts, each test in a database of its own.
 */
interface Backend {
  name: string;
  singleWriter: boolean;
  skip: string | false;
  /** `n` migrated stores on one new, empty database, closed after the test: `n` processes sharing it. */
  open(t: TestContext, n: number): Promise<Store[]>;
}

async function pgUrl(): Promise<string> {
  const url = await freshDatabase();
  if (!url) throw new Error('no PostgreSQL cluster'); // the describe block is skipped then
  return url;
}

/** A PostgreSQL store on `url`, closed after the test. */
function pgStore(t: TestContext, url: string, opts?: PostgresStoreOptions): Store {
  const s = openPostgresStore(url, opts);
  t.after(() => s.close());
  return s;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    singleWriter: true,
    skip: false,
    // One process owns a SQLite file: n "processes" are the one store, n times.
    async open(t, n) {
      const s = openSqliteStore(join(tmpDir(), `store-${Math.random().toString(36).slice(2)}.sqlite`));
      t.after(() => s.close());
      return Array.from({ length: n }, () => s);
    },
  },
  {
    name: 'postgres',
    singleWriter: false,
    skip: pgSkipReason(),
    // Each store has its own pool: the calls of n stores run at once on n connections.
    async open(t, n) {
      const url = await pgUrl();
      const stores = Array.from({ length: n }, () => pgStore(t, url));
      await stores[0]!.migrate();
      return stores;
    },
  },
];

const attempt = (taskId: string, over: Partial<Attempt> = {}): Attempt => ({
  taskId, n: 0, step: 'submit', provider: 'local', upstreamId: 'up1', startedAt: 1, endedAt: 2, outcome: 'submitted', error: null, ...over,
});
const artifact = (taskId: string, kind: string, path = `/${kind}`) => ({
  taskId, kind, path, contentType: 'video/mp4', bytes: 3, width: 1280, height: 720, durationMs: 8000, codec: 'h264', createdAt: 1,
});

for (const backend of backends) {
  const open = async (t: TestContext) => (await backend.open(t, 1))[0]!;

  describe(`store contract: ${backend.name}`, { skip: backend.skip }, () => {
    test('create is idempotent on the id and reads are per tenant', async (t) => {
      const s = await open(t);
      const t1 = makeTask({ id: 'a1', tenantId: 't1', fileToken: 'f1' });
      assert.equal(await s.createTask(t1), true);
      assert.equal(await s.createTask({ ...t1, model: 'other' }), false);
      assert.equal((await s.getTask('t1', 'a1'))?.model, 'veo3.1-fast');
      assert.equal(await s.getTask('t2', 'a1'), undefined, "another tenant's task is absent");
      assert.deepEqual(await s.getTask('t1', 'a1'), t1, 'round-trips every field');
    });

    test('idempotency keys: taken once, answered with the task in one transaction, replayed, let go, taken over, expired', async (t) => {
      const [a, b] = await backend.open(t, 2);
      const now = 5_000_000;
      const claim = (token: string, over: Partial<KeyClaim> = {}): KeyClaim =>
        ({ tenantId: 't1', scope: 'kie.generate', key: 'k1', token, fingerprint: 'fp1', now, heldUntil: now + 120_000, expiresAt: now + 86_400_000, ...over });
      const ref = (token: string, over: Partial<KeyRef> = {}): KeyRef => ({ tenantId: 't1', scope: 'kie.generate', key: 'k1', token, ...over });
      // 50 takes at once from two processes: one holds the key, the others see it busy.
      const takes = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a! : b!).takeKey(claim(`tok${i}`))));
      const winners = takes.flatMap((s, i) => (s.kind === 'new' ? [i] : []));
      assert.equal(winners.length, 1, JSON.stringify(takes));
      assert.ok(takes.every((s) => s.kind === 'new' || s.kind === 'busy'));
      const holder = `tok${winners[0]}`;
      assert.deepEqual(await a!.takeKey(claim('x', { fingerprint: 'other' })), { kind: 'mismatch' }, 'another request with the key');
      // The same key at another endpoint, or of another tenant, is another key.
      assert.equal((await a!.takeKey(claim('y', { scope: 'kie.extend' }))).kind, 'new');
      assert.equal((await a!.takeKey(claim('z', { tenantId: 't2' }))).kind, 'new');
      // A create by a request that does not hold the key stores nothing.
      const task = makeTask({ id: 'i1', tenantId: 't1', fileToken: 'fi1' });
      const answer = { status: 200, body: '{"code":200,"msg":"success","data":{"taskId":"i1"}}', taskId: 'i1' };
      await assert.rejects(b!.createTask(task, undefined, { ref: ref('not-the-holder'), answer }), KeyLostError);
      assert.equal(await a!.getTask('t1', 'i1'), undefined, 'no task without its key');
      assert.equal(await b!.createTask(task, undefined, { ref: ref(holder), answer }), true);
      assert.deepEqual(await a!.getTask('t1', 'i1'), task);
      assert.deepEqual(await a!.takeKey(claim('again')), { kind: 'replay', answer });
      assert.deepEqual(await a!.takeKey(claim('again', { fingerprint: 'other' })), { kind: 'mismatch' });
      // An answered key is not let go, nor answered again.
      await a!.dropKey(ref(holder));
      assert.equal(await a!.answerKey({ ref: ref(holder), answer: { ...answer, body: 'x' } }), false);
      assert.deepEqual(await b!.takeKey(claim('again')), { kind: 'replay', answer });
      // A request that stored nothing lets go of its key: the next one starts anew.
      await a!.dropKey(ref('y', { scope: 'kie.extend' }));
      assert.equal((await b!.takeKey(claim('y2', { scope: 'kie.extend' }))).kind, 'new');
      // A hold that ran out without an answer is taken over, and the old holder can no longer answer.
      assert.equal((await b!.takeKey(claim('late', { scope: 'kie.extend', now: now + 120_001 }))).kind, 'new');
      assert.equal(await a!.answerKey({ ref: ref('y2', { scope: 'kie.extend' }), answer }), false);
      assert.equal(await a!.answerKey({ ref: ref('late', { scope: 'kie.extend' }), answer: { ...answer, taskId: null } }), true);
      assert.deepEqual(await a!.takeKey(claim('q', { scope: 'kie.extend' })), { kind: 'replay', answer: { ...answer, taskId: null } });
      // Past its time a key is forgotten: taken anew, even with another request, and purged.
      assert.equal((await a!.takeKey(claim('new-day', { fingerprint: 'other', now: now + 86_400_000 }))).kind, 'new');
      assert.equal(await a!.purgeKeys(now + 86_400_000 - 1), 0);
      assert.equal(await a!.purgeKeys(now + 2 * 86_400_000), 3, 'the three keys left, all past their time');
      assert.equal((await b!.takeKey(claim('after-purge', { scope: 'kie.extend' }))).kind, 'new');
    });

    test('webhook secrets: one first secret however many ask at once; a rotation overlaps, then the old one retires', async (t) => {
      const [a, b] = await backend.open(t, 2);
      const now = 7_000_000;
      const firsts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a! : b!).webhookSecrets('t1', now, `whsec_s${i}`)));
      const one = firsts[0]![0]!;
      assert.ok(firsts.every((f) => f.length === 1 && f[0] === one), JSON.stringify(firsts));
      assert.deepEqual(await a!.webhookSecrets('t2', now, 'whsec_other'), ['whsec_other'], "another tenant's own");
      assert.deepEqual(await b!.rotateWebhookSecret('t1', 'whsec_new', now + 1, 1000), ['whsec_new', one]);
      assert.deepEqual(await a!.webhookSecrets('t1', now + 1000, 'whsec_unused'), ['whsec_new', one], 'within the overlap');
      assert.deepEqual(await a!.webhookSecrets('t1', now + 1001, 'whsec_unused'), ['whsec_new'], 'after it');
      // A second rotation within the first's overlap: the oldest keeps its earlier end.
      assert.deepEqual(await a!.rotateWebhookSecret('t2', 'whsec_o2', now + 1, 5000), ['whsec_o2', 'whsec_other']);
      assert.deepEqual(await a!.rotateWebhookSecret('t2', 'whsec_o3', now + 2, 100_000), ['whsec_o3', 'whsec_o2', 'whsec_other']);
      assert.deepEqual(await b!.webhookSecrets('t2', now + 5001, 'x'), ['whsec_o3', 'whsec_o2']);
      await a!.createTask(makeTask({ id: 'w1', tenantId: 't9', fileToken: 'fw1' }));
      assert.equal(await b!.tenantOfTask('w1'), 't9');
      assert.equal(await b!.tenantOfTask('nope'), undefined);
    });

    test('a read sees every change, whichever process made it: reads made at once, read again, after a commit, a delete', async (t) => {
      const [a, b] = await backend.open(t, 2);
      const now = 3_000_000;
      const ids = Array.from({ length: 30 }, (_, i) => `r${i}`);
      for (const id of ids) await b!.createTask(makeTask({ id, tenantId: id === 'r1' ? 't_b' : 't_a', fileToken: `f${id}`, nextRunAt: now }));
      // Read at once, twice over (the second time from whatever the first kept), and by the wrong tenant.
      const asks = [...ids, ...ids].map((id) => a!.getTask('t_a', id));
      const got = await Promise.all(asks);
      assert.deepEqual(got.map((x) => x?.id), [...ids, ...ids].map((id) => (id === 'r1' ? undefined : id)));
      assert.equal(await a!.getTask('t_b', 'r0'), undefined, "another tenant's task, after it was read");
      assert.equal((await a!.getTask('t_b', 'r1'))?.id, 'r1');
      // The other process changes tasks; every read after each change sees it.
      assert.equal((await b!.claimDue('B', now, 60_000, 30)).length, 30);
      for (let p = 1; p <= 5; p++) {
        const keep = p < 5;
        assert.equal(await b!.commitStep('B', { taskId: 'r0', patch: { state: 'generating', progress: p * 10, updatedAt: now + p }, keepLease: keep }), true);
        const [r0, r2] = await Promise.all([a!.getTask('t_a', 'r0'), a!.getTask('t_a', 'r2')]);
        assert.deepEqual([r0?.state, r0?.progress, r0?.updatedAt], ['generating', p * 10, now + p], `after change ${p}`);
        assert.equal(r2?.state, 'queued', 'an unchanged task');
      }
      // A task ended and deleted by the other process is gone for this one.
      assert.equal(await b!.commitStep('B', { taskId: 'r2', patch: { state: 'failed', completedAt: now, nextRunAt: null } }), true);
      assert.equal((await a!.getTask('t_a', 'r2'))?.state, 'failed');
      assert.equal(await b!.deleteTask('t_a', 'r2'), true);
      assert.equal(await a!.getTask('t_a', 'r2'), undefined);
      assert.equal((await a!.getTask('t_a', 'r3'))?.state, 'queued');
    });

    test('creates made at once: each id is created once, by the first to ask, and every field round-trips', async (t) => {
      const s = await open(t);
      const tasks = Array.from({ length: 60 }, (_, i) => makeTask({ id: `k${i % 40}`, tenantId: `t${i % 3}`, fileToken: `fk${i}`, model: `m${i}`, request: { prompt: `p${i}`, z: 1, a: 2 } }));
      const created = await Promise.all(tasks.map((x, i) => s.createTask(x, i % 2 ? { owner: 'E', until: Date.now() + 60_000 } : undefined)));
      assert.deepEqual(created, tasks.map((_, i) => i < 40));
      for (const x of tasks.slice(0, 40)) assert.deepEqual(await s.getTask(x.tenantId, x.id), x);
    });

    test('the create body keeps its key order; JSON fields and nulls round-trip', async (t) => {
      const s = await open(t);
      const request = { prompt: 'p', model: 'm', aspect_ratio: '16:9', nested: { z: 1, a: [1, 'x', null] } };
      const images = [{ url: 'https://img.example/a.png', status: 'completed' as const, mediaId: 'm1' }];
      const full = makeTask({ id: 'j', fileToken: 'fj', request, images, lastError: 'e', lastErrorKind: 'upstream', failureStage: 'generation', callbackUrl: 'https://cb.example', completedAt: 9, nextRunAt: null, resultUrl: 'https://r.example/v.mp4' }, { images: ['https://img.example/a.png'], mode: 'frames', watermark: 'w', frame: { width: 1024, height: 1792 } });
      await s.createTask(full);
      const got = await s.getTask('t_a', 'j');
      assert.deepEqual(got, full);
      assert.deepEqual(Object.keys(got!.request), ['prompt', 'model', 'aspect_ratio', 'nested']);
    });

    test('claim hands a due task to exactly one owner until the lease expires', async (t) => {
      const s = await open(t);
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
    });

    test('eight claimers at once over 200 due tasks claim each exactly once', async (t) => {
      const stores = await backend.open(t, 8);
      const now = 1_000_000;
      await Promise.all(Array.from({ length: 200 }, (_, i) => stores[0]!.createTask(makeTask({ id: `m${i}`, fileToken: `fm${i}`, nextRunAt: now - i }))));
      const claimed = await Promise.all(
        stores.map(async (s, k) => {
          const mine: string[] = [];
          for (;;) {
            const got = await s.claimDue(`E${k}`, now, 60_000, 7);
            if (got.length === 0) return mine;
            mine.push(...got.map((t) => t.id));
          }
        }),
      );
      const all = claimed.flat();
      assert.equal(all.length, 200, 'every claim together took 200 tasks');
      assert.equal(new Set(all).size, 200, 'none twice');
      assert.deepEqual(await stores[0]!.claimDue('late', now, 60_000, 10), []);
    });

    test('each lane claims its own tasks: steps those without a result URL, fetch those with one', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'step', fileToken: 'f1', state: 'generating', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'dl', fileToken: 'f2', state: 'generating', nextRunAt: 10, resultUrl: 'https://up.example/v.mp4' }));
      assert.deepEqual((await s.claimDue('A', 20, 100, 5)).map((x) => x.id), ['step']);
      assert.deepEqual((await s.claimDue('A', 20, 100, 5, 'fetch')).map((x) => x.id), ['dl']);
      assert.deepEqual((await s.claimDue('B', 200, 100, 5, 'fetch')).map((x) => x.id), ['dl'], 'an expired lease, in its lane');
      assert.deepEqual((await s.claimDue('B', 200, 100, 5, 'steps')).map((x) => x.id), ['step']);
    });

    test('commit is fenced by the lease and applies everything together', async (t) => {
      const s = await open(t);
      const now = 2_000_000;
      await s.createTask(makeTask({ id: 'f', fileToken: 'ff', nextRunAt: now }));
      const [claimed] = await s.claimDue('A', now, 1000, 1);
      assert.ok(claimed);
      const commit = {
        taskId: 'f',
        patch: { state: 'generating' as const, upstreamId: 'up1', attemptCount: 1, nextRunAt: now + 500, updatedAt: now },
        attempt: attempt('f', { startedAt: now, endedAt: now }),
        artifacts: [{ taskId: 'f', kind: 'input_0', path: '/x', contentType: 'image/png', bytes: 3, width: null, height: null, durationMs: null, codec: null, createdAt: now }],
        deliveries: [{ taskId: 'f', url: 'https://cb.example/x', body: '{}', createdAt: now }],
      };
      assert.equal(await s.commitStep('B', commit), false, 'a non-owner cannot commit');
      assert.equal((await s.getTask('t_a', 'f'))?.state, 'queued');
      assert.deepEqual([await s.listAttempts('f'), await s.listArtifacts('f'), await s.listDeliveries('f')], [[], [], []], 'a refused commit writes nothing');
      assert.equal(await s.commitStep('A', commit), true);
      const after = await s.getTask('t_a', 'f');
      assert.equal(after?.state, 'generating');
      assert.equal(after?.upstreamId, 'up1');
      assert.equal((await s.listAttempts('f'))[0]?.n, 1);
      assert.deepEqual(await s.listArtifacts('f'), commit.artifacts);
      assert.equal((await s.listDeliveries('f')).length, 1);
      assert.equal(await s.commitStep('A', commit), false, 'the lease was released by the commit');
      assert.equal((await s.listAttempts('f')).length, 1);
      // The next attempt gets the next number.
      const [t2] = await s.claimDue('A', now + 600, 1000, 1);
      assert.ok(t2);
      await s.commitStep('A', { taskId: 'f', patch: { nextRunAt: null }, attempt: { ...commit.attempt, outcome: 'retry', error: 'boom' } });
      assert.deepEqual((await s.listAttempts('f')).map((a) => [a.n, a.outcome, a.error]), [[1, 'submitted', null], [2, 'retry', 'boom']]);
    });

    test('commits made at once each get their own answer: fences, attempts, artifacts and delivery ids', async (t) => {
      const s = await open(t);
      const now = 2_500_000;
      const ids = Array.from({ length: 90 }, (_, i) => `g${i}`);
      for (const id of ids) await s.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now }));
      assert.equal((await s.claimDue('A', now, 60_000, 100)).length, 90);
      // Every third commit comes from an engine that holds no lease; every commit of g0 is there
      // twice (the second, after the first released the lease, is refused).
      const commits = ids.map((id, i) => ({
        owner: i % 3 === 2 ? 'B' : 'A',
        c: {
          taskId: id,
          patch: { state: 'generating' as const, upstreamId: `up-${id}`, nextRunAt: now + 500 },
          attempt: attempt(id, { startedAt: now, endedAt: now }),
          artifacts: [{ taskId: id, kind: 'input_0', path: `/${id}`, contentType: 'image/png', bytes: i, width: null, height: null, durationMs: null, codec: null, createdAt: now }],
          deliveries: [{ taskId: id, url: `https://cb.example/${id}/1`, body: '{}', createdAt: now }, { taskId: id, url: `https://cb.example/${id}/2`, body: '{}', createdAt: now }] as NewDelivery[],
        },
      }));
      const twice = { ...commits[0]!, c: { ...commits[0]!.c, deliveries: [{ taskId: 'g0', url: 'https://cb.example/g0/again', body: '{}', createdAt: now }] } };
      const answers = await Promise.all([...commits, twice].map((x) => s.commitStep(x.owner, x.c)));
      assert.deepEqual(answers.slice(0, 90), commits.map((x) => x.owner === 'A'));
      assert.equal(answers[90], false, "a task's second commit, after the first released its lease");
      for (const [i, x] of commits.entries()) {
        const task = await s.getTask('t_a', x.c.taskId);
        const owed = await s.listDeliveries(x.c.taskId);
        if (x.owner === 'B') {
          assert.equal(task?.state, 'queued');
          assert.deepEqual([await s.listAttempts(x.c.taskId), await s.listArtifacts(x.c.taskId), owed], [[], [], []]);
          continue;
        }
        assert.deepEqual([task?.state, task?.upstreamId], ['generating', `up-${x.c.taskId}`]);
        assert.deepEqual((await s.listAttempts(x.c.taskId)).map((a) => a.n), [1]);
        assert.equal((await s.listArtifacts(x.c.taskId))[0]?.bytes, i);
        // The ids the commit handed back are those of its own deliveries, in order.
        assert.deepEqual(owed.map((d) => [d.id, d.url]), x.c.deliveries.map((d) => [d.id, d.url]));
      }
    });

    test('commits that only patch the task, made at once: each fenced, each its own values and lease, a rendition owed keeps its task due', async (t) => {
      const s = await open(t);
      const now = 2_700_000;
      const ids = Array.from({ length: 60 }, (_, i) => `p${String(i).padStart(2, '0')}`);
      for (const [i, id] of ids.entries()) {
        // Every tenth is a succeeded task with a 1080p rendition owed.
        const owed = i % 10 === 0;
        await s.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now, ...(owed ? { state: 'succeeded' as const, completedAt: 5, hdState: 'pending' as const } : {}) }));
      }
      assert.equal((await s.claimDue('A', now, 60_000, 100)).length, 60);
      // Three lease modes, each a shape of its own; every fourth from an engine without the lease.
      const commitOf = (id: string, i: number) => {
        const patch = i % 10 === 0 ? { nextRunAt: null, updatedAt: now + i } : { progress: i, nextRunAt: now + 1_000 + i, updatedAt: now + i };
        const lease = i % 3 === 0 ? { keepLease: true } : i % 3 === 1 ? { keepLeaseUntil: now + 90_000 } : {};
        return { owner: i % 4 === 3 ? 'B' : 'A', c: { taskId: id, patch, ...lease } };
      };
      const commits = ids.map(commitOf);
      // A task's second commit, asked at once: it waits for the first (which kept the lease).
      const again = { owner: 'A', c: { taskId: 'p01', patch: { progress: 99, nextRunAt: now + 5_000, updatedAt: now + 100 }, keepLease: true } };
      const answers = await Promise.all([...commits, again].map((x) => s.commitStep(x.owner, x.c)));
      assert.deepEqual(answers.slice(0, 60), commits.map((x) => x.owner === 'A'));
      assert.equal(answers[60], true, 'p01 kept its lease (keepLeaseUntil), so its second commit applies after the first');
      for (const [i, x] of commits.entries()) {
        const task = (await s.getTask('t_a', x.c.taskId))!;
        if (x.owner === 'B') {
          assert.deepEqual([task.progress, task.nextRunAt], [0, now], `${x.c.taskId}: refused, unchanged`);
          continue;
        }
        if (i === 1) {
          assert.deepEqual([task.progress, task.nextRunAt, task.updatedAt], [99, now + 5_000, now + 100]);
        } else if (i % 10 === 0) {
          assert.equal(task.nextRunAt, 0, `${x.c.taskId}: a rendition owed keeps a succeeded task due`);
          assert.equal(task.updatedAt, now + i);
        } else {
          assert.deepEqual([task.progress, task.nextRunAt, task.updatedAt], [i, now + 1_000 + i, now + i], x.c.taskId);
        }
      }
      // The leases: kept as they were (to now + 60 s), kept to a new end (now + 90 s), or released.
      // Two seconds on, everything is due again, and another engine can take only the released ones.
      const taken = (await s.claimDue('C', now + 2_000, 60_000, 100)).map((x) => x.id).sort();
      assert.deepEqual(taken, commits.filter((x, i) => x.owner === 'A' && i % 3 === 2).map((x) => x.c.taskId).sort());
    });

    test('attempts are numbered 1, 2, … per task, also when commits of the task land at once', async (t) => {
      const stores = await backend.open(t, 4);
      await stores[0]!.createTask(makeTask({ id: 'n', fileToken: 'fn', nextRunAt: 0 }));
      await stores[0]!.claimDue('A', 1, 60_000, 1);
      const ok = await Promise.all(stores.map((s, i) => s.commitStep('A', { taskId: 'n', patch: { progress: i }, keepLease: true, attempt: attempt('n', { step: 'poll', outcome: 'retry' }) })));
      assert.deepEqual(ok, [true, true, true, true]);
      assert.deepEqual((await stores[0]!.listAttempts('n')).map((a) => a.n), [1, 2, 3, 4]);
    });

    test("a commit's artifact replaces the task's artifact of the same kind", async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'r', fileToken: 'fr', nextRunAt: 0 }));
      await s.claimDue('A', 1, 60_000, 1);
      await s.commitStep('A', { taskId: 'r', patch: {}, keepLease: true, artifacts: [artifact('r', 'video', '/v1'), artifact('r', 'input_0')] });
      await s.commitStep('A', { taskId: 'r', patch: {}, keepLease: true, artifacts: [artifact('r', 'video', '/v2'), artifact('r', 'video_hd', '/h1'), artifact('r', 'video_hd', '/h2')] });
      assert.deepEqual((await s.listArtifacts('r')).map((a) => [a.kind, a.path]), [['input_0', '/input_0'], ['video', '/v2'], ['video_hd', '/h2']]);
      assert.deepEqual((await s.listArtifacts('r'))[1], artifact('r', 'video', '/v2'), 'every field replaced');
    });

    test('a commit with keepLeaseUntil keeps the task with its owner for the next step', async (t) => {
      const s = await open(t);
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
    });

    test("a task created leased (handed to the engine of the creating process) is nobody else's until the lease ends", async (t) => {
      const s = await open(t);
      assert.equal(await s.createTask(makeTask({ id: 'n', fileToken: 'fn', nextRunAt: 10 }), { owner: 'A', until: 1_000 }), true);
      assert.equal(await s.createTask(makeTask({ id: 'n', fileToken: 'fn', nextRunAt: 10 }), { owner: 'B', until: 9_000 }), false, 'a second create changes no lease');
      assert.deepEqual(await s.claimDue('B', 500, 100, 5), [], 'leased to A from its insert');
      assert.equal(await s.commitStep('A', { taskId: 'n', patch: { nextRunAt: 600 }, keepLease: true }), true, 'A runs it without a claim');
      assert.equal((await s.claimDue('B', 1_001, 100, 5))[0]?.id, 'n', 'A died: claimable once the lease ends');
    });

    test('a heartbeat extends only the leases its owner holds', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'h', fileToken: 'fh', nextRunAt: 0 }));
      await s.claimDue('A', 10, 100, 1);
      assert.deepEqual(await s.extendLeases('B', ['h'], 10_000), []);
      assert.deepEqual(await s.extendLeases('A', ['h'], 10_000), ['h']);
      assert.deepEqual(await s.claimDue('B', 5_000, 100, 1), [], 'extended lease holds');
    });

    test('extendLeases returns the ids the owner still holds, in the order asked', async (t) => {
      const s = await open(t);
      for (const [i, id] of ['h1', 'h2', 'h3'].entries()) await s.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: i }));
      await s.claimDue('A', 10, 100, 2);
      await s.claimDue('B', 10, 100, 1);
      assert.deepEqual(await s.extendLeases('A', ['gone', 'h3', 'h2', 'h1'], 10_000), ['h2', 'h1']);
      assert.deepEqual(await s.extendLeases('A', [], 10_000), []);
      assert.deepEqual((await s.claimDue('C', 5_000, 100, 5)).map((x) => x.id), ['h3'], "A's extended leases hold; B's ended");
    });

    test("releaseLeases frees the owner's tasks, claimable at their own time; others' leases stay", async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'r1', fileToken: 'f1', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'r2', fileToken: 'f2', nextRunAt: 50 }));
      assert.equal((await s.claimDue('A', 60, 10_000, 5)).length, 2);
      await s.createTask(makeTask({ id: 'r3', fileToken: 'f3', nextRunAt: 10 }));
      assert.equal((await s.claimDue('B', 60, 10_000, 5))[0]?.id, 'r3');
      await s.releaseLeases('A', ['r1', 'r2', 'r3']);
      await s.releaseLeases('A', []);
      assert.deepEqual((await s.claimDue('C', 20, 10_000, 5)).map((x) => x.id), ['r1'], 'r2 is due at 50');
      assert.deepEqual((await s.claimDue('C', 50, 10_000, 5)).map((x) => x.id), ['r2']);
      assert.equal(await s.commitStep('B', { taskId: 'r3', patch: { nextRunAt: null } }), true, "B's lease was not A's to give up");
    });

    test('wakeByUpstream makes a waiting task due now', async (t) => {
      const s = await open(t);
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
    });

    test('wakeByUpstream leaves a task due sooner, an ended task, and the same id at another provider', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'soon', fileToken: 'f1', state: 'generating', upstreamId: 'u1', nextRunAt: 500 }));
      await s.createTask(makeTask({ id: 'done', fileToken: 'f2', state: 'succeeded', upstreamId: 'u2', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'kie', fileToken: 'f3', state: 'generating', provider: 'kie', upstreamId: 'u1', nextRunAt: 50_000 }));
      await s.wakeByUpstream('local', 'u1', 1_000);
      await s.wakeByUpstream('local', 'u2', 1_000);
      const at = async (id: string) => (await s.getTask('t_a', id))?.nextRunAt;
      assert.deepEqual([await at('soon'), await at('done'), await at('kie')], [500, null, 50_000]);
    });

    test('countInFlight counts generating tasks with an upstream job, per provider; routing fields round-trip', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'f1', fileToken: 'f1', state: 'generating', provider: 'kie', upstreamId: 'a', routeIndex: 1, submittedAt: 77, fallback: true }));
      await s.createTask(makeTask({ id: 'f2', fileToken: 'f2', state: 'generating', provider: 'kie', upstreamId: 'b' }));
      await s.createTask(makeTask({ id: 'f3', fileToken: 'f3', state: 'generating', provider: 'fal', upstreamId: null }));
      await s.createTask(makeTask({ id: 'f4', fileToken: 'f4', state: 'succeeded', provider: 'fal', upstreamId: 'c' }));
      assert.deepEqual(await s.countInFlight(), { kie: 2 });
      const got = await s.getTask('t_a', 'f1');
      assert.deepEqual([got?.routeIndex, got?.submittedAt, got?.fallback], [1, 77, true]);
    });

    test('requestHd only applies to succeeded tasks and makes them due', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating' }));
      assert.equal((await s.requestHd('t_a', 'ok', 100))?.hdState, 'pending');
      assert.equal((await s.getTask('t_a', 'ok'))?.nextRunAt, 100);
      assert.equal((await s.requestHd('t_a', 'run', 100))?.hdState, 'none');
      assert.equal(await s.requestHd('t_other', 'ok', 100), undefined);
    });

    test('requestUhd keeps its callback URL, and leaves a pending or stored rendition alone', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating' }));
      const first = await s.requestUhd('t_a', 'ok', 100, 'https://cb.example/4k');
      assert.deepEqual([first?.asked, first?.task.uhdState, first?.task.uhdCallbackUrl, first?.task.nextRunAt], [true, 'pending', 'https://cb.example/4k', 100]);
      const second = await s.requestUhd('t_a', 'ok', 200, null);
      assert.deepEqual([second?.asked, second?.task.uhdCallbackUrl], [false, 'https://cb.example/4k'], 'a second ask changes nothing, and says so');
      const running = await s.requestUhd('t_a', 'run', 100, null);
      assert.deepEqual([running?.asked, running?.task.uhdState], [false, 'none']);
      assert.equal(await s.requestUhd('t_other', 'ok', 100, null), undefined);
    });

    test('cancelTask: canceled at once, its lease taken (a running step cannot commit), due for the step that stops its work; an ended task is left as it ended', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating', upstreamId: 'up-1', provider: 'p', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'wait', fileToken: 'fw', state: 'generating', upstreamId: 'up-2', provider: 'p', resultUrl: 'https://up.example/v.mp4', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'new', fileToken: 'fn', state: 'queued', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'done', fileToken: 'fd', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      const [held] = await s.claimDue('E', 20, 60_000, 1);
      assert.equal(held?.id, 'run');
      const r = await s.cancelTask('t_a', 'run', 30);
      assert.equal(r?.canceled, true);
      assert.deepEqual([r?.task.state, r?.task.cancelOutcome, r?.task.completedAt, r?.task.lastErrorKind, r?.task.failureStage, r?.task.upstreamId], ['canceled', 'pending', 30, 'canceled', 'generation', 'up-1']);
      assert.equal(await s.commitStep('E', { taskId: 'run', patch: { state: 'succeeded', nextRunAt: null, updatedAt: 40 } }), false, 'the step that held the lease cannot commit');
      assert.equal((await s.getTask('t_a', 'run'))?.state, 'canceled');
      // A finished job waiting for its download leaves the fetch lane; its stage says the video was made.
      const w = await s.cancelTask('t_a', 'wait', 30);
      assert.deepEqual([w?.task.resultUrl, w?.task.failureStage], [null, 'upsample']);
      assert.equal((await s.cancelTask('t_a', 'new', 30))?.task.failureStage, 'input');
      const due = await s.claimDue('F', 50, 10_000, 10);
      assert.deepEqual(due.map((x) => x.id).sort(), ['new', 'run', 'wait'], 'each is due at once, in the steps lane, for another engine too');
      assert.deepEqual(await s.claimDue('F', 50, 10_000, 10, 'fetch'), []);
      // Again: nothing changes, and it says so. An ended task stays as it ended.
      const again = await s.cancelTask('t_a', 'run', 60);
      assert.deepEqual([again?.canceled, again?.task.state, again?.task.completedAt], [false, 'canceled', 30]);
      const late = await s.cancelTask('t_a', 'done', 60);
      assert.deepEqual([late?.canceled, late?.task.state, late?.task.cancelOutcome], [false, 'succeeded', null]);
      assert.equal(await s.cancelTask('t_other', 'new', 60), undefined, 'another tenant has no such task');
      assert.equal(await s.cancelTask('t_a', 'nope', 60), undefined);
    });

    test('a canceled task whose work is not stopped yet is neither deleted nor expired; deleteAfter marks it, and once stopped it goes', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'run', fileToken: 'fr', state: 'generating', upstreamId: 'up-1', nextRunAt: 10 }));
      await s.cancelTask('t_a', 'run', 20);
      assert.equal(await s.deleteTask('t_a', 'run'), false, 'its work is still to be stopped');
      assert.deepEqual((await s.listExpiring(1_000_000, 10)).map((x) => x.id), [], 'not expired before it is stopped');
      const marked = await s.cancelTask('t_a', 'run', 30, { deleteAfter: true });
      assert.deepEqual([marked?.canceled, marked?.task.deleteRequested], [false, true]);
      const [claimed] = await s.claimDue('E', 40, 10_000, 10);
      assert.equal(await s.commitStep('E', { taskId: claimed!.id, patch: { progress: 50, updatedAt: 45 } }), false, 'a step of the task before its cancel cannot commit');
      assert.ok(await s.commitStep('E', { taskId: claimed!.id, ofCanceled: true, patch: { cancelOutcome: 'upstream_canceled', nextRunAt: null, updatedAt: 50 } }));
      assert.equal((await s.getTask('t_a', 'run'))?.cancelOutcome, 'upstream_canceled');
      assert.deepEqual((await s.listExpiring(1_000_000, 10)).map((x) => x.id), ['run'], 'a stopped cancel expires like any ended task');
      assert.ok(await s.deleteTask('t_a', 'run'));
      assert.equal(await s.getTask('t_a', 'run'), undefined);
    });

    test('of a cancel and a commit of success at once, exactly one wins, and the task says which', async (t) => {
      const [a, b] = await backend.open(t, 2);
      for (let i = 0; i < 20; i++) await a!.createTask(makeTask({ id: `r${i}`, fileToken: `f${i}`, state: 'generating', upstreamId: `u${i}`, nextRunAt: 10 }));
      const claimed = await a!.claimDue('E', 20, 60_000, 20);
      assert.equal(claimed.length, 20);
      const results = await Promise.all(claimed.map(async (task) => {
        const [committed, canceled] = await Promise.all([
          a!.commitStep('E', { taskId: task.id, patch: { state: 'succeeded', completedAt: 30, nextRunAt: null, updatedAt: 30 } }),
          b!.cancelTask('t_a', task.id, 30),
        ]);
        const now = (await a!.getTask('t_a', task.id))!;
        return { committed, canceled: canceled!.canceled, state: now.state };
      }));
      for (const r of results) {
        assert.notEqual(r.committed, r.canceled, JSON.stringify(r));
        assert.equal(r.state, r.committed ? 'succeeded' : 'canceled');
      }
    });

    test('the audit trail: a commit\'s events, a cancel, each callback try and the expiry are appended in order, and go with the task', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'a1', fileToken: 'fa', state: 'queued', nextRunAt: 10 }));
      const [claimed] = await s.claimDue('E', 20, 10_000, 1);
      const event = (to: Task['state'], at: number) => ({ taskId: 'a1', at, kind: 'state' as const, actor: 'engine' as const, from: claimed!.state, to, detail: { reason: `to ${to}` } });
      assert.equal(await s.commitStep('F', { taskId: 'a1', patch: { state: 'generating', updatedAt: 25 }, events: [event('generating', 25)] }), false);
      assert.ok(await s.commitStep('E', {
        taskId: 'a1',
        patch: { state: 'generating', upstreamId: 'u1', nextRunAt: 30, updatedAt: 30 },
        keepLeaseUntil: 10_000,
        events: [event('generating', 30)],
        deliveries: [{ taskId: 'a1', url: 'https://cb.example/x', body: '{}', createdAt: 30 }],
      }));
      const r = await s.cancelTask('t_a', 'a1', 40);
      assert.equal(r?.canceled, true);
      const [d] = await s.listDeliveries('a1');
      await s.finishDelivery({ id: d!.id, at: 50, ms: 12, attempts: 1, status: 'pending', nextAttemptAt: 60, lastError: 'receiver answered HTTP 503', lastStatus: 503, deliveredAt: null });
      await s.finishDelivery({ id: d!.id, at: 70, ms: 8, attempts: 2, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 70 });
      const [again] = await s.claimDue('E', 80, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: again!.id, ofCanceled: true, patch: { cancelOutcome: 'not_submitted', nextRunAt: null, updatedAt: 80 } }));
      await s.markExpired(['a1'], 90);
      const events = await s.listEvents('a1');
      assert.deepEqual(events.map((e) => [e.at, e.kind, e.actor, e.from, e.to]), [
        [30, 'state', 'engine', 'queued', 'generating'],
        [40, 'state', 'api', 'generating', 'canceled'],
        [50, 'delivery', 'deliverer', null, null],
        [70, 'delivery', 'deliverer', null, null],
        [90, 'state', 'sweeper', 'canceled', 'expired'],
      ]);
      assert.deepEqual(events[0]!.detail, { reason: 'to generating' });
      assert.deepEqual(events[1]!.detail, { reason: 'canceled by the client' });
      assert.deepEqual(events[2]!.detail, { delivery: d!.id, try: 1, status: 503, error: 'receiver answered HTTP 503', outcome: 'pending', ms: 12 });
      assert.deepEqual(events[3]!.detail, { delivery: d!.id, try: 2, status: 200, error: null, outcome: 'delivered', ms: 8 });
      assert.ok(events.every((e, i) => i === 0 || e.id > events[i - 1]!.id), 'ids increase');
      // A resend: due at once, the same delivery; unknown ones are not found.
      const resent = await s.resendDelivery('a1', d!.id, 100);
      assert.deepEqual([resent?.status, resent?.attempts, resent?.deliveredAt], ['pending', 2, null]);
      assert.deepEqual((await s.claimDueDeliveries(100, 1000, 10)).map((x) => x.id), [d!.id]);
      assert.equal(await s.resendDelivery('other-task', d!.id, 100), undefined);
      assert.ok(await s.purgeTombstones(1_000_000) >= 1);
      assert.deepEqual(await s.listEvents('a1'), [], 'the trail goes with the task');
    });

    test('listTasks with a filter: only matching tasks, by state (any of), model, provider, dialect and creation time, with the cursor', async (t) => {
      const s = await open(t);
      const rows = [
        { id: 'f1', state: 'succeeded', model: 'veo3', provider: 'fal', dialect: 'kie', createdAt: 1000 },
        { id: 'f2', state: 'failed', model: 'veo3', provider: 'local', dialect: 'openai', createdAt: 2000 },
        { id: 'f3', state: 'succeeded', model: 'sora-2', provider: 'fal', dialect: 'openai', createdAt: 3000 },
        { id: 'f4', state: 'generating', model: 'veo3', provider: 'fal', dialect: 'kie', createdAt: 4000 },
        { id: 'f5', state: 'succeeded', model: 'veo3', provider: 'fal', dialect: 'kie', createdAt: 5000 },
      ] as const;
      for (const r of rows) await s.createTask(makeTask({ ...r, fileToken: `t${r.id}`, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'other', tenantId: 't_b', fileToken: 'to', state: 'succeeded', model: 'veo3', createdAt: 1500 }));
      const ids = async (filter: object, more: object = {}) => (await s.listTasks('t_a', { limit: 10, order: 'asc', filter, ...more }))?.map((x) => x.id);
      assert.deepEqual(await ids({ states: ['succeeded'] }), ['f1', 'f3', 'f5']);
      assert.deepEqual(await ids({ states: ['failed', 'generating'] }), ['f2', 'f4']);
      assert.deepEqual(await ids({ model: 'veo3', provider: 'fal' }), ['f1', 'f4', 'f5']);
      assert.deepEqual(await ids({ dialect: 'openai' }), ['f2', 'f3']);
      assert.deepEqual(await ids({ createdFrom: 2000, createdTo: 4000 }), ['f2', 'f3', 'f4']);
      assert.deepEqual(await ids({ model: 'nope' }), []);
      assert.deepEqual(await ids({ states: ['succeeded'], model: 'veo3' }, { order: 'desc', limit: 1 }), ['f5']);
      assert.deepEqual(await ids({ states: ['succeeded'], model: 'veo3' }, { order: 'desc', after: 'f5' }), ['f1']);
      assert.deepEqual(await ids({ states: ['succeeded'] }, { after: 'f2' }), ['f3', 'f5'], 'a cursor need not match the filter');
      assert.equal(await ids({ states: ['succeeded'] }, { after: 'other' }), undefined, "another tenant's task is no cursor");
    });

    test('webhook endpoints: per tenant, listed oldest first, deleted by their tenant only, disabled once; a delivery names its endpoint', async (t) => {
      const s = await open(t);
      const e = (id: string, tenantId: string, at: number) => ({ id, tenantId, url: `https://rx.example/${id}`, events: ['video.completed', 'video.canceled'], createdAt: at, disabledAt: null, disabledReason: null });
      await s.createEndpoint(e('we_2', 't_a', 20));
      await s.createEndpoint(e('we_1', 't_a', 10));
      await s.createEndpoint(e('we_b', 't_b', 15));
      assert.deepEqual((await s.listEndpoints('t_a')).map((x) => x.id), ['we_1', 'we_2']);
      assert.deepEqual((await s.listEndpoints()).map((x) => x.id), ['we_1', 'we_b', 'we_2']);
      assert.deepEqual((await s.listEndpoints('t_a'))[0], e('we_1', 't_a', 10));
      assert.equal(await s.deleteEndpoint('t_b', 'we_1'), false, "another tenant's endpoint");
      assert.equal(await s.deleteEndpoint('t_a', 'we_2'), true);
      await s.disableEndpoint('we_1', 30, 'receiver answered HTTP 410 Gone');
      await s.disableEndpoint('we_1', 40, 'again');
      const [disabled] = await s.listEndpoints('t_a');
      assert.deepEqual([disabled?.disabledAt, disabled?.disabledReason], [30, 'receiver answered HTTP 410 Gone']);
      await s.createTask(makeTask({ id: 'd1', fileToken: 'fd', state: 'generating', nextRunAt: 10 }));
      await s.claimDue('E', 20, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'd1', patch: { state: 'succeeded', nextRunAt: null, updatedAt: 30 }, deliveries: [
        { taskId: 'd1', url: 'https://cb.example/own', body: '{}', createdAt: 30 },
        { taskId: 'd1', endpointId: 'we_1', url: 'https://rx.example/we_1', body: '{"type":"video.completed"}', createdAt: 30 },
      ] }));
      assert.deepEqual((await s.listDeliveries('d1')).map((d) => [d.url, d.endpointId]), [['https://cb.example/own', null], ['https://rx.example/we_1', 'we_1']]);
      assert.deepEqual((await s.claimDueDeliveries(40, 1000, 10)).map((d) => d.endpointId), [null], 'we_1 is disabled: what it is owed is not sent');
    });

    test('disabling an endpoint fails what is still owed to it, with an entry in the audit trail; other deliveries are untouched', async (t) => {
      const s = await open(t);
      await s.createEndpoint({ id: 'we_g', tenantId: 't_a', url: 'https://rx.example/gone', events: ['video.completed'], createdAt: 10, disabledAt: null, disabledReason: null });
      await s.createTask(makeTask({ id: 'g1', fileToken: 'fg', state: 'generating', nextRunAt: 10 }));
      await s.claimDue('E', 20, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'g1', patch: { state: 'succeeded', nextRunAt: null, updatedAt: 30 }, deliveries: [
        { taskId: 'g1', url: 'https://cb.example/own', body: '{}', createdAt: 30 },
        { taskId: 'g1', endpointId: 'we_g', url: 'https://rx.example/gone', body: '{"type":"video.completed"}', createdAt: 30 },
      ] }));
      const before = (await s.listEvents('g1')).filter((e) => e.kind === 'delivery').length;
      await s.disableEndpoint('we_g', 40, 'receiver answered HTTP 410 Gone');
      const byUrl = new Map((await s.listDeliveries('g1')).map((d) => [d.url, d]));
      assert.deepEqual([byUrl.get('https://rx.example/gone')?.status, byUrl.get('https://rx.example/gone')?.nextAttemptAt], ['failed', null]);
      assert.match(byUrl.get('https://rx.example/gone')?.lastError ?? '', /endpoint was disabled/);
      assert.equal(byUrl.get('https://cb.example/own')?.status, 'pending', "the task's own callback is still owed");
      assert.deepEqual((await s.claimDueDeliveries(50, 1000, 10)).map((d) => d.url), ['https://cb.example/own']);
      const dropped = (await s.listEvents('g1')).filter((e) => e.kind === 'delivery');
      assert.equal(dropped.length, before + 1);
      assert.deepEqual([dropped.at(-1)?.at, dropped.at(-1)?.detail?.outcome], [40, 'failed']);
      await s.disableEndpoint('we_g', 60, 'again');
      assert.equal((await s.listEvents('g1')).filter((e) => e.kind === 'delivery').length, before + 1, 'disabled once');
      // Owed afterwards by a commit that had not heard of the disable: not sent either.
      await s.createTask(makeTask({ id: 'g2', fileToken: 'fg2', state: 'generating', nextRunAt: 10 }));
      await s.claimDue('E', 70, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'g2', patch: { state: 'succeeded', nextRunAt: null }, deliveries: [{ taskId: 'g2', endpointId: 'we_g', url: 'https://rx.example/gone', body: '{}', createdAt: 80 }] }));
      assert.deepEqual((await s.claimDueDeliveries(90, 1000, 10)).map((d) => d.url), [], 'not claimed');
      const [late] = await s.listDeliveries('g2');
      assert.deepEqual([late?.status, late?.lastError], ['failed', 'not sent: the endpoint was disabled']);
      assert.deepEqual((await s.listEvents('g2')).filter((e) => e.kind === 'delivery').map((e) => e.detail?.outcome), ['failed']);
    });

    test('credits: the first top-up opens an account; a metered create reserves in its own transaction; too few credits store nothing', async (t) => {
      const s = await open(t);
      const charge = (credits: number) => ({ credits, perSecond: credits / 8, item: 'video' as const });
      assert.equal(await s.creditAccount('t_a'), undefined, 'not metered before its first top-up');
      await assert.rejects(s.createTask(makeTask({ id: 'm0', fileToken: 'fm0', charge: charge(1) })), (e: unknown) => e instanceof InsufficientCreditsError && e.balance === 0, 'no account: nothing to reserve from');
      assert.deepEqual(await s.addCredits('t_a', 100, 10, 'first'), { tenantId: 't_a', balance: 100, createdAt: 10, updatedAt: 10 });
      assert.equal(await s.createTask(makeTask({ id: 'm1', fileToken: 'fm1', createdAt: 20, charge: charge(40) })), true);
      assert.deepEqual((await s.getTask('t_a', 'm1'))?.charge, charge(40));
      assert.equal((await s.creditAccount('t_a'))?.balance, 60);
      await assert.rejects(s.createTask(makeTask({ id: 'm2', fileToken: 'fm2', charge: charge(70) })), (e: unknown) => e instanceof InsufficientCreditsError && e.needed === 70 && e.balance === 60);
      assert.equal(await s.getTask('t_a', 'm2'), undefined, 'refused: no task');
      // Refused with an idempotency key: neither the task nor the key's answer is stored.
      const ref = { tenantId: 't_a', scope: 'kie.generate', key: 'k-credits', token: 'tok' };
      assert.equal((await s.takeKey({ ...ref, fingerprint: 'f', now: 30, heldUntil: 60_000, expiresAt: 90_000 })).kind, 'new');
      await assert.rejects(s.createTask(makeTask({ id: 'm3', fileToken: 'fm3', charge: charge(70) }), undefined, { ref, answer: { status: 200, body: '{}', taskId: 'm3' } }), InsufficientCreditsError);
      assert.equal(await s.getTask('t_a', 'm3'), undefined);
      assert.equal((await s.takeKey({ ...ref, token: 'tok2', fingerprint: 'f', now: 31, heldUntil: 60_000, expiresAt: 90_000 })).kind, 'busy', 'the key is still held, unanswered');
      assert.equal((await s.creditAccount('t_a'))?.balance, 60);
      assert.equal(await s.createTask(makeTask({ id: 'm1', fileToken: 'fm1', charge: charge(40) })), false, 'an id that exists reserves nothing');
      assert.equal((await s.creditAccount('t_a'))?.balance, 60);
      // The ledger, newest first, and the reservation in the task's audit trail.
      assert.deepEqual((await s.listLedger('t_a', { limit: 10 })).map((e) => [e.kind, e.amount, e.taskId, e.item, e.note]), [['reserve', -40, 'm1', 'video', null], ['topup', 100, null, null, 'first']]);
      const reserved = (await s.listEvents('m1')).filter((e) => e.kind === 'ledger');
      assert.deepEqual(reserved.map((e) => [e.at, e.actor, e.detail]), [[20, 'api', { entry: 'reserve', item: 'video', amount: -40, balance: 60 }]]);
      // A negative top-up takes credits away, never below 0, and the entry says what it took.
      assert.equal((await s.addCredits('t_a', -1000, 40, 'taken back')).balance, 0);
      const [newest, ...older] = await s.listLedger('t_a', { limit: 10 });
      assert.deepEqual([newest?.kind, newest?.amount], ['topup', -60]);
      assert.deepEqual((await s.listLedger('t_a', { limit: 10, before: newest!.id })).map((e) => e.id), older.map((e) => e.id));
      assert.deepEqual((await s.listLedger('t_a', { limit: 10, taskId: 'm1' })).map((e) => e.kind), ['reserve']);
      assert.deepEqual(await s.listLedger('t_b', { limit: 10 }), [], "another tenant's ledger");
    });

    test('credits: a close goes with its commit, once; a second close, or a commit fenced out, changes no balance', async (t) => {
      const s = await open(t);
      await s.addCredits('t_a', 100, 10, null);
      for (const id of ['c1', 'c2', 'c3']) await s.createTask(makeTask({ id, fileToken: `f${id}`, state: 'generating', nextRunAt: 10, charge: { credits: 20, perSecond: 2.5, item: 'video' } }));
      assert.equal((await s.creditAccount('t_a'))?.balance, 40);
      await s.claimDue('E', 20, 10_000, 3);
      const close = (taskId: string, kind: 'settle' | 'refund', amount: number, charged: number) => ({ tenantId: 't_a', taskId, item: 'video', kind, amount, charged, at: 30, reason: kind === 'settle' ? 'succeeded' : 'upstream' });
      assert.equal(await s.commitStep('X', { taskId: 'c3', patch: { state: 'failed', nextRunAt: null }, close: close('c3', 'refund', 20, 0) }), false);
      assert.equal((await s.creditAccount('t_a'))?.balance, 40, 'fenced out: no refund');
      // Two closes of one tenant at once (one statement could update its balance only once).
      const [a, b] = await Promise.all([
        s.commitStep('E', { taskId: 'c1', patch: { progress: 50, nextRunAt: 30 }, close: close('c1', 'settle', 5, 15) }),
        s.commitStep('E', { taskId: 'c2', patch: { state: 'failed', nextRunAt: null }, close: close('c2', 'refund', 20, 0) }),
      ]);
      assert.deepEqual([a, b], [true, true]);
      assert.equal((await s.creditAccount('t_a'))?.balance, 65);
      // c1 again, with another close: the commit applies, its close is refused.
      assert.equal((await s.claimDue('E', 40, 10_000, 3)).map((x) => x.id).join(), 'c1');
      // (The whole of a success's commit: its video, its attempt, its callback, its events and the close.)
      const video = { taskId: 'c1', kind: 'video', path: 'x/c1.mp4', contentType: 'video/mp4', bytes: 9, width: 1280, height: 720, durationMs: 8000, codec: 'h264', createdAt: 40 };
      assert.equal(await s.commitStep('E', {
        taskId: 'c1', patch: { state: 'succeeded', nextRunAt: null }, close: close('c1', 'refund', 20, 0), artifacts: [video],
        attempt: { taskId: 'c1', n: 0, step: 'poll', provider: 'local', upstreamId: null, startedAt: 40, endedAt: 41, outcome: 'succeeded', error: null },
        deliveries: [{ taskId: 'c1', url: 'https://cb.example/c1', body: '{}', createdAt: 41 }],
        events: [{ taskId: 'c1', at: 41, kind: 'state', actor: 'engine', from: 'generating', to: 'succeeded', detail: null }],
      }), true);
      assert.equal((await s.listArtifacts('c1')).length, 1);
      assert.equal((await s.getTask('t_a', 'c1'))?.state, 'succeeded');
      assert.equal((await s.creditAccount('t_a'))?.balance, 65, 'closed once');
      assert.deepEqual((await s.listLedger('t_a', { limit: 10, taskId: 'c1' })).map((e) => [e.kind, e.amount, e.charged]), [['settle', 5, 15], ['reserve', -20, null]]);
      // The reserve, then the one close; the close's balance is after whichever of c1 and c2 went first.
      const logged = (await s.listEvents('c1')).filter((e) => e.kind === 'ledger').map((e) => e.detail!);
      assert.deepEqual(logged.map(({ balance: _b, ...d }) => d), [{ entry: 'reserve', item: 'video', amount: -20 }, { entry: 'settle', item: 'video', amount: 5, charged: 15, reason: 'succeeded' }]);
      assert.equal(logged[0]!.balance, 80);
      assert.ok([45, 65].includes(logged[1]!.balance as number), String(logged[1]!.balance));
    });

    test('admitTenant: a tenant\'s tasks start while fewer than the limit are under way; one let through stays so; an end frees a place; many at once take no more', async (t) => {
      const [a, b] = await backend.open(t, 2);
      for (const id of ['q1', 'q2', 'q3', 'q4']) await a!.createTask(makeTask({ id, fileToken: `f${id}` }));
      await a!.createTask(makeTask({ id: 'run', fileToken: 'frun', state: 'generating', upstreamId: 'j', nextRunAt: 10 }));
      await a!.createTask(makeTask({ id: 'other', tenantId: 't_b', fileToken: 'fother' }));
      // Under way: the running task, then each one let through.
      assert.deepEqual([await a!.admitTenant('t_a', 'q1', 3), await a!.admitTenant('t_a', 'q2', 3), await a!.admitTenant('t_a', 'q3', 3)], [true, true, false]);
      assert.equal(await a!.admitTenant('t_a', 'q1', 3), true, 'let through before: again');
      assert.equal(await a!.admitTenant('t_b', 'other', 1), true, "another tenant's count");
      await a!.claimDue('E', 20, 10_000, 1);
      assert.ok(await a!.commitStep('E', { taskId: 'run', patch: { state: 'failed', nextRunAt: null } }));
      assert.deepEqual([await a!.admitTenant('t_a', 'q4', 3), await a!.admitTenant('t_a', 'q3', 3), await a!.admitTenant('t_a', 'q4', 3)], [false, true, false], 'the end made a place, for the oldest waiting');
      // Ten at once through two stores (two processes on PostgreSQL): four places, the four oldest.
      const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
      for (const [i, id] of ids.entries()) await a!.createTask(makeTask({ id, tenantId: 't_c', fileToken: `f${id}`, createdAt: 1000 + i }));
      const let_ = await Promise.all([...ids].reverse().map((id, i) => (i % 2 ? a! : b!).admitTenant('t_c', id, 4).then((ok) => [id, ok] as const)));
      assert.deepEqual(let_.filter(([, ok]) => ok).map(([id]) => id).sort(), ['r0', 'r1', 'r2', 'r3']);
    });

    test('a deleted task\'s deliveries still owed are kept, name its tenant, and go once done; its finished ones go with it', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'gone', fileToken: 'fgone', state: 'generating', nextRunAt: 10 }));
      await s.claimDue('E', 20, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'gone', patch: { state: 'succeeded', nextRunAt: null }, deliveries: [
        { taskId: 'gone', url: 'https://cb.example/a', body: '{"a":1}', createdAt: 30 },
        { taskId: 'gone', url: 'https://cb.example/b', body: '{"b":1}', createdAt: 30 },
      ] }));
      const [a, b] = await s.claimDueDeliveries(40, 1000, 10);
      assert.deepEqual([a?.tenantId, b?.tenantId], ['t_a', 't_a']);
      await s.finishDelivery({ id: a!.id, attempts: 1, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 41 });
      await s.finishDelivery({ id: b!.id, attempts: 1, status: 'pending', nextAttemptAt: 50, lastError: 'HTTP 503', lastStatus: 503, deliveredAt: null });
      assert.equal(await s.deleteTask('t_a', 'gone'), true);
      assert.deepEqual((await s.listDeliveries('gone')).map((d) => [d.url, d.status]), [['https://cb.example/b', 'pending']], 'only what it still owes');
      const [again] = await s.claimDueDeliveries(60, 1000, 10);
      assert.deepEqual([again?.id, again?.tenantId, again?.body], [b!.id, 't_a', '{"b":1}']);
      await s.finishDelivery({ id: b!.id, attempts: 2, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 61 });
      assert.deepEqual(await s.listDeliveries('gone'), [], 'done: gone too');
      assert.deepEqual(await s.listEvents('gone'), [], 'no audit trail is left behind for a deleted task');
      // One owed to an endpoint that is then disabled goes too, not left failed for good.
      await s.createEndpoint({ id: 'we_x', tenantId: 't_a', url: 'https://rx.example/x', events: ['video.completed'], createdAt: 1, disabledAt: null, disabledReason: null });
      await s.createTask(makeTask({ id: 'gone2', fileToken: 'fgone2', state: 'generating', nextRunAt: 10 }));
      await s.claimDue('E', 70, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'gone2', patch: { state: 'succeeded', nextRunAt: null }, deliveries: [{ taskId: 'gone2', endpointId: 'we_x', url: 'https://rx.example/x', body: '{}', createdAt: 80 }] }));
      const [owed] = await s.claimDueDeliveries(90, 1000, 10);
      await s.finishDelivery({ id: owed!.id, attempts: 1, status: 'pending', nextAttemptAt: 95, lastError: 'HTTP 503', lastStatus: 503, deliveredAt: null });
      assert.equal(await s.deleteTask('t_a', 'gone2'), true);
      await s.disableEndpoint('we_x', 100, 'receiver answered HTTP 410 Gone');
      assert.deepEqual(await s.listDeliveries('gone2'), []);
      assert.deepEqual(await s.listEvents('gone2'), []);
    });

    test('credits: a rendition asked for after success is its own item, reserved with its ask and closed by its end; asked again after a failure, a new item', async (t) => {
      const s = await open(t);
      await s.addCredits('t_a', 100, 10, null);
      await s.createTask(makeTask({ id: 'v1', fileToken: 'fv1', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      await assert.rejects(s.requestUhd('t_a', 'v1', 20, null, 150), (e: unknown) => e instanceof InsufficientCreditsError && e.needed === 150 && e.balance === 100);
      assert.equal((await s.getTask('t_a', 'v1'))?.uhdState, 'none', 'refused: nothing asked');
      assert.equal((await s.requestUhd('t_a', 'v1', 30, null, 60))?.asked, true);
      assert.equal((await s.requestUhd('t_a', 'v1', 31, null, 60))?.asked, false, 'pending already: asked once');
      assert.equal(await s.deleteTask('t_a', 'v1'), false, 'not deleted while its rendition (and its reservation) is owed');
      assert.equal((await s.creditAccount('t_a'))?.balance, 40);
      const end = async (at: number, uhdState: 'ready' | 'failed', kind: 'settle' | 'refund') => {
        assert.equal((await s.claimDue('E', at, 10_000, 1)).length, 1);
        assert.ok(await s.commitStep('E', { taskId: 'v1', patch: { uhdState, nextRunAt: null }, close: { tenantId: 't_a', taskId: 'v1', item: 'uhd', kind, at, reason: `4k ${uhdState}` } }));
      };
      await end(40, 'failed', 'refund');
      assert.equal((await s.creditAccount('t_a'))?.balance, 100);
      assert.equal((await s.requestUhd('t_a', 'v1', 50, null, 60))?.asked, true, 'asked again after the failure');
      await end(60, 'ready', 'settle');
      assert.equal((await s.creditAccount('t_a'))?.balance, 40);
      assert.deepEqual((await s.listLedger('t_a', { limit: 10, taskId: 'v1' })).map((e) => [e.kind, e.item, e.amount, e.charged]), [
        ['settle', 'uhd:2', 0, 60], ['reserve', 'uhd:2', -60, null], ['refund', 'uhd:1', 60, 0], ['reserve', 'uhd:1', -60, null],
      ]);
      // A close with nothing open (a free rendition) changes nothing.
      assert.ok(await s.requestHd('t_a', 'v1', 70));
      await s.claimDue('E', 80, 10_000, 1);
      assert.ok(await s.commitStep('E', { taskId: 'v1', patch: { hdState: 'ready', nextRunAt: null }, close: { tenantId: 't_a', taskId: 'v1', item: 'hd', kind: 'settle', at: 80, reason: '1080p ready' } }));
      assert.equal((await s.creditAccount('t_a'))?.balance, 40);
      assert.equal((await s.listLedger('t_a', { limit: 10, taskId: 'v1' })).length, 4);
      assert.deepEqual((await s.listEvents('v1')).filter((e) => e.kind === 'ledger').map((e) => [e.detail?.entry, e.detail?.item, e.detail?.balance]), [
        ['reserve', 'uhd:1', 40], ['refund', 'uhd:1', 100], ['reserve', 'uhd:2', 40], ['settle', 'uhd:2', 40],
      ]);
    });

    test('changedTasks: a tenant\'s tasks changed since a time, oldest change first, up to the limit', async (t) => {
      const s = await open(t);
      for (const [id, at] of [['c1', 100], ['c2', 300], ['c3', 200], ['c4', 300]] as const) await s.createTask(makeTask({ id, fileToken: `f${id}`, updatedAt: at, createdAt: 1 }));
      await s.createTask(makeTask({ id: 'cb', tenantId: 't_b', fileToken: 'fcb', updatedAt: 250 }));
      assert.deepEqual((await s.changedTasks('t_a', 200, 10)).map((x) => x.id), ['c3', 'c2', 'c4']);
      assert.deepEqual((await s.changedTasks('t_a', 0, 2)).map((x) => x.id), ['c1', 'c3']);
      assert.deepEqual(await s.changedTasks('t_a', 301, 10), []);
      await s.cancelTask('t_a', 'c1', 400);
      assert.deepEqual((await s.changedTasks('t_a', 301, 10)).map((x) => [x.id, x.state]), [['c1', 'canceled']]);
    });

    test('of two requestUhd at once, exactly one asked', async (t) => {
      const [a, b] = await backend.open(t, 2);
      await a!.createTask(makeTask({ id: 'ok', fileToken: 'fo', state: 'succeeded', nextRunAt: null, completedAt: 5 }));
      const both = await Promise.all([a!.requestUhd('t_a', 'ok', 100, 'https://cb.example/a'), b!.requestUhd('t_a', 'ok', 100, 'https://cb.example/b')]);
      assert.deepEqual(both.map((r) => r?.asked).sort(), [false, true]);
      const winner = both.find((r) => r?.asked)!;
      assert.equal((await a!.getTask('t_a', 'ok'))?.uhdCallbackUrl, winner.task.uhdCallbackUrl);
      assert.deepEqual(both.map((r) => r?.task.uhdState), ['pending', 'pending'], 'both see it pending');
    });

    test("a rendition asked for while a step of the task runs is not dropped by that step's commit", async (t) => {
      const s = await open(t);
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
    });

    test('a pending rendition keeps only a succeeded task due, whether the patch or the row says pending', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'row', fileToken: 'f1', state: 'succeeded', hdState: 'pending', nextRunAt: 10, completedAt: 5 }));
      await s.createTask(makeTask({ id: 'ends', fileToken: 'f2', state: 'upsampling', nextRunAt: 10 }));
      await s.createTask(makeTask({ id: 'fails', fileToken: 'f3', state: 'upsampling', hdState: 'pending', nextRunAt: 10 }));
      assert.equal((await s.claimDue('E', 20, 10_000, 10)).length, 3);
      assert.ok(await s.commitStep('E', { taskId: 'row', patch: { nextRunAt: null, updatedAt: 30 } }));
      assert.ok(await s.commitStep('E', { taskId: 'ends', patch: { state: 'succeeded', uhdState: 'pending', nextRunAt: null } }));
      assert.ok(await s.commitStep('E', { taskId: 'fails', patch: { state: 'failed', nextRunAt: null } }));
      const at = async (id: string) => (await s.getTask('t_a', id))?.nextRunAt;
      const [row, ends, fails] = [await at('row'), await at('ends'), await at('fails')];
      assert.ok(row !== null && row! <= 30 && ends !== null && ends! <= 30, `due at once (${row}, ${ends})`);
      assert.equal(fails, null, 'a failed task is not due, whatever its rendition says');
    });

    test("listTasks pages a tenant's tasks by creation time in both orders; an unknown cursor is undefined", async (t) => {
      const s = await open(t);
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
      assert.deepEqual(await s.listTasks('t_a', { limit: 2, order: 'asc', after: 'l4' }), [], 'past the last: an empty page');
      assert.deepEqual(await s.listTasks('t_a', { limit: 2, order: 'desc', after: 'l2' }).then((p) => p?.map((x) => x.id)), ['l1', 'l0']);
      assert.equal(await s.listTasks('t_a', { limit: 2, order: 'asc', after: 'other' }), undefined, "another tenant's id is no cursor");
      assert.equal(await s.listTasks('t_a', { limit: 2, order: 'asc', after: 'nope' }), undefined);
      assert.deepEqual(await s.listTasks('t_c', { limit: 2, order: 'asc' }), []);
    });

    test("deleteTask removes an ended task with its records, never a running one or another tenant's", async (t) => {
      const s = await open(t);
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
    });

    test("deleteTask takes the task's attempts, artifacts and finished deliveries; a leased task stays, a tombstone goes", async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'd', fileToken: 'f1', nextRunAt: 0 }));
      await s.createTask(makeTask({ id: 'keep', fileToken: 'f2', nextRunAt: 0 }));
      await s.claimDue('A', 1, 60_000, 5);
      for (const id of ['d', 'keep']) {
        await s.commitStep('A', { taskId: id, patch: { state: 'succeeded', completedAt: 5, nextRunAt: null }, attempt: attempt(id), artifacts: [artifact(id, 'video')], deliveries: [{ taskId: id, url: 'u', body: 'b', createdAt: 5 }] });
      }
      assert.equal(await s.deleteTask('t_a', 'd'), true);
      assert.deepEqual([await s.listAttempts('d'), await s.listArtifacts('d'), (await s.listDeliveries('d')).map((x) => x.status)], [[], [], ['pending']], 'a callback still owed is sent all the same');
      assert.deepEqual([(await s.listAttempts('keep')).length, (await s.listArtifacts('keep')).length, (await s.listDeliveries('keep')).length], [1, 1, 1], "another task's records stay");
      await s.requestHd('t_a', 'keep', 10);
      await s.claimDue('E', 10, 60_000, 5);
      assert.equal(await s.deleteTask('t_a', 'keep'), false, 'a rendition is being made');
      await s.createTask(makeTask({ id: 'tomb', fileToken: 'f3', state: 'expired', nextRunAt: null, completedAt: 5 }));
      assert.equal(await s.deleteTask('t_a', 'tomb'), true);
    });

    test('retention: expiring, tombstones, purge', async (t) => {
      const s = await open(t);
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
    });

    test('listExpiring: ended tasks oldest first, up to the limit, a leased one left for later', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'leased', fileToken: 'f0', state: 'succeeded', completedAt: 50, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'a', fileToken: 'f1', state: 'succeeded', completedAt: 100, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'b', fileToken: 'f2', state: 'succeeded', completedAt: 200, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'c', fileToken: 'f3', state: 'failed', completedAt: 150, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'x', fileToken: 'f4', state: 'expired', completedAt: 10, nextRunAt: null }));
      await s.requestHd('t_a', 'leased', 60);
      assert.equal((await s.claimDue('E', 60, 60_000, 5))[0]?.id, 'leased');
      assert.deepEqual((await s.listExpiring(1_000, 2)).map((x) => x.id), ['a', 'c']);
      assert.deepEqual((await s.listExpiring(1_000, 10)).map((x) => x.id), ['a', 'c', 'b']);
    });

    test('markExpired empties images, drops the artifact rows and leaves running tasks alone', async (t) => {
      const s = await open(t);
      const images = [{ url: 'https://img.example/a.png', status: 'completed' as const, mediaId: 'm1' }];
      await s.createTask(makeTask({ id: 'x', fileToken: 'f1', state: 'succeeded', completedAt: 5, nextRunAt: 0, images }));
      await s.createTask(makeTask({ id: 'run', fileToken: 'f2', state: 'generating', nextRunAt: 10_000, images }));
      await s.claimDue('A', 1, 60_000, 5);
      await s.commitStep('A', { taskId: 'x', patch: { nextRunAt: null }, artifacts: [artifact('x', 'video'), artifact('x', 'input_0')] });
      await s.markExpired(['x', 'run'], 6_000);
      const x = await s.getTask('t_a', 'x');
      assert.deepEqual([x?.state, x?.images, x?.nextRunAt, x?.updatedAt], ['expired', [], null, 6_000]);
      assert.deepEqual(await s.listArtifacts('x'), []);
      const run = await s.getTask('t_a', 'run');
      assert.deepEqual([run?.state, run?.images, run?.nextRunAt], ['generating', images, 10_000]);
      await s.markExpired([], 7_000);
    });

    test('purgeTombstones takes up to 1000 old tombstones with their attempts, artifacts and deliveries', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'tomb', fileToken: 'ft', state: 'expired', completedAt: 100, nextRunAt: 0 }));
      await s.claimDue('A', 1, 60_000, 1);
      await s.commitStep('A', { taskId: 'tomb', patch: { nextRunAt: null }, attempt: attempt('tomb'), artifacts: [artifact('tomb', 'video')], deliveries: [{ taskId: 'tomb', url: 'u', body: 'b', createdAt: 5 }] });
      for (let i = 0; i < 1004; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, 1004 - i) }, (_, j) => s.createTask(makeTask({ id: `p${i + j}`, fileToken: `fp${i + j}`, state: 'expired', completedAt: 100, nextRunAt: null }))));
      }
      await s.createTask(makeTask({ id: 'young', fileToken: 'fy', state: 'expired', completedAt: 10_000, nextRunAt: null }));
      await s.createTask(makeTask({ id: 'live', fileToken: 'fl', state: 'succeeded', completedAt: 100, nextRunAt: null }));
      assert.equal(await s.purgeTombstones(1_000), 1000);
      assert.equal(await s.purgeTombstones(1_000), 5);
      assert.equal(await s.purgeTombstones(1_000), 0);
      assert.deepEqual([await s.listAttempts('tomb'), await s.listArtifacts('tomb'), await s.listDeliveries('tomb')], [[], [], []]);
      assert.ok(await s.getTask('t_a', 'young'), 'a tombstone younger than `before` stays');
      assert.ok(await s.getTask('t_a', 'live'), 'only tombstones go');
    });

    test('deliveries: claim, finish, retry schedule', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'd', fileToken: 'fd', nextRunAt: 0 }));
      await s.claimDue('A', 1, 1000, 1);
      await s.commitStep('A', { taskId: 'd', patch: { nextRunAt: null }, deliveries: [{ taskId: 'd', url: 'u', body: 'b', createdAt: 10 }] });
      const [d] = await s.claimDueDeliveries(10, 1000, 5);
      assert.ok(d);
      assert.deepEqual([d.taskId, d.url, d.body, d.createdAt, d.status, d.attempts, d.nextAttemptAt], ['d', 'u', 'b', 10, 'pending', 0, 10]);
      assert.deepEqual(await s.claimDueDeliveries(20, 1000, 5), [], 'leased');
      await s.finishDelivery({ id: d.id, attempts: 1, status: 'pending', nextAttemptAt: 5_000, lastError: 'HTTP 500', lastStatus: 500, deliveredAt: null });
      assert.deepEqual(await s.claimDueDeliveries(4_000, 1000, 5), []);
      const [again] = await s.claimDueDeliveries(5_000, 1000, 5);
      assert.deepEqual([again?.attempts, again?.lastError, again?.lastStatus, again?.nextAttemptAt], [1, 'HTTP 500', 500, 5_000]);
      await s.finishDelivery({ id: d.id, attempts: 2, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 5_001 });
      assert.deepEqual(await s.listDeliveries('d'), [{ ...d, attempts: 2, status: 'delivered', nextAttemptAt: null, lastError: null, lastStatus: 200, deliveredAt: 5_001 }]);
      assert.deepEqual(await s.claimDueDeliveries(99_999, 1000, 5), [], 'delivered: never due again');
    });

    test('deliveries are leased to one sender at a time, oldest due first; finishing frees the lease', async (t) => {
      const stores = await backend.open(t, 4);
      const s = stores[0]!;
      await s.createTask(makeTask({ id: 'd', fileToken: 'fd', nextRunAt: 0 }));
      await s.claimDue('A', 1, 1000, 1);
      const owed = Array.from({ length: 40 }, (_, i) => ({ taskId: 'd', url: `u${i}`, body: 'b', createdAt: 40 - i }));
      await s.commitStep('A', { taskId: 'd', patch: { nextRunAt: null }, deliveries: owed });
      const oldest = await s.claimDueDeliveries(100, 1000, 5);
      assert.deepEqual(oldest.map((d) => d.url).sort(), ['u35', 'u36', 'u37', 'u38', 'u39'], 'the oldest due are leased first');
      const claims = await Promise.all(stores.map((x) => x.claimDueDeliveries(100, 1000, 10)));
      const all = [...oldest, ...claims.flat()].map((d) => d.id);
      assert.equal(all.length, 40);
      assert.equal(new Set(all).size, 40, 'none went to two senders');
      const first = claims.flat().find((d) => d.url === 'u0')!;
      await s.finishDelivery({ id: first.id, attempts: 1, status: 'pending', nextAttemptAt: 200, lastError: 'HTTP 503', lastStatus: 503, deliveredAt: null });
      assert.deepEqual((await s.claimDueDeliveries(200, 1000, 50)).map((d) => d.url), ['u0'], 'due again at its time, though the lease ran to 1 100');
    });

    test('deliveries handed over at commit: inserted leased, with their ids; claimable once the lease ends', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'h', fileToken: 'fh', nextRunAt: 0 }));
      await s.claimDue('A', 1, 1000, 1);
      const owed: NewDelivery[] = [{ taskId: 'h', url: 'u1', body: 'b1', createdAt: 10 }, { taskId: 'h', url: 'u2', body: 'b2', createdAt: 10 }];
      assert.equal(await s.commitStep('A', { taskId: 'h', patch: { nextRunAt: null }, deliveries: owed, deliveriesLeasedUntil: 1_000 }), true);
      const listed = await s.listDeliveries('h');
      assert.deepEqual(owed.map((d) => d.id), listed.map((d) => d.id), 'the store set the ids of the rows it inserted');
      assert.deepEqual(listed.map((d) => d.url), ['u1', 'u2'], 'in the order they were owed');
      assert.deepEqual(await s.claimDueDeliveries(500, 1000, 5), [], 'held by the committing process');
      assert.deepEqual((await s.claimDueDeliveries(1_001, 1000, 5)).map((d) => d.url).sort(), ['u1', 'u2'], 'its process died: claimed by another');
    });

    test('keys: stored hashed, revocable by id or prefix', async (t) => {
      const s = await open(t);
      await s.insertKey({ id: 'k1', tenantId: 't1', hash: 'h1', prefix: 'sk-abc', name: '', source: 'cli', createdAt: 1, revokedAt: null });
      assert.equal((await s.findKeyByHash('h1'))?.tenantId, 't1');
      assert.equal(await s.revokeKey('sk-abc', 2), 1);
      assert.equal(await s.findKeyByHash('h1'), undefined);
      assert.equal(await s.revokeKey('k1', 3), 0, 'already revoked');
    });

    test('keys: listed oldest first with the revoked ones; a revoked env key inserted again is live, a cli key is not', async (t) => {
      const s = await open(t);
      const key = (id: string, hash: string, source: 'env' | 'cli' | 'auto', createdAt: number, prefix = `sk-${id}`) => ({ id, tenantId: 't1', hash, prefix, name: id, source, createdAt, revokedAt: null });
      await s.insertKey(key('k2', 'h2', 'cli', 2));
      await s.insertKey(key('k1', 'h1', 'env', 2));
      await s.insertKey(key('k0', 'h0', 'auto', 1));
      await s.insertKey(key('s1', 'hs1', 'cli', 3, 'sk-shared'));
      await s.insertKey(key('s2', 'hs2', 'cli', 3, 'sk-shared'));
      assert.equal(await s.revokeKey('sk-shared', 4), 2, 'every key of the prefix');
      assert.equal(await s.revokeKey('k1', 5), 1);
      assert.equal(await s.revokeKey('k2', 5), 1);
      assert.equal(await s.revokeKey('nothing', 5), 0);
      const listed = await s.listKeys();
      assert.deepEqual(listed.map((k) => [k.id, k.revokedAt]), [['k0', null], ['k1', 5], ['k2', 5], ['s1', 4], ['s2', 4]]);
      assert.deepEqual(listed[0], key('k0', 'h0', 'auto', 1));
      await s.insertKey({ ...key('k1', 'h1', 'env', 9), name: 'renamed' });
      await s.insertKey(key('k2', 'h2', 'cli', 9));
      assert.deepEqual(await s.findKeyByHash('h1'), { ...key('k1', 'h1', 'env', 2) }, 'live again, and otherwise as it was');
      assert.equal(await s.findKeyByHash('h2'), undefined, 'a cli key stays revoked');
    });

    test('times with a fraction of a millisecond (a spread poll delay) are taken, as whole milliseconds', async (t) => {
      const s = await open(t);
      await s.createTask(makeTask({ id: 'fr', fileToken: 'ffr', nextRunAt: 10.4 }), { owner: 'A', until: 20.7 });
      assert.equal(await s.commitStep('A', { taskId: 'fr', patch: { nextRunAt: 1_000.6, updatedAt: 30.2 }, keepLeaseUntil: 2_000.5 }), true);
      assert.deepEqual(await s.claimDue('B', 1_999.2, 100.5, 5), [], 'still leased');
      const [got] = await s.claimDue('B', 2_002.3, 100.5, 5);
      assert.equal(Math.round(got!.nextRunAt!), 1_001);
      assert.deepEqual(await s.extendLeases('B', ['fr'], 5_000.9), ['fr']);
    });

    test('migrate is idempotent; capabilities say who writes', async (t) => {
      const s = await open(t);
      assert.equal(await s.migrate(), 0, 'nothing left to apply');
      assert.equal(s.capabilities.singleWriter, backend.singleWriter);
    });
  });
}

describe('store contract: postgres only', { skip: pgSkipReason() }, () => {
  const sql = async <R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<R>(text)).rows;
    } finally {
      await c.end();
    }
  };

  test('opening does not migrate; migrate applies every migration, then nothing', async (t) => {
    const s = pgStore(t, await pgUrl());
    await assert.rejects(s.getTask('t_a', 'x'), /relation "tasks" does not exist/);
    assert.equal(await s.migrate(), migrations().length);
    assert.equal(await s.migrate(), 0);
    assert.equal(await s.getTask('t_a', 'x'), undefined);
  });

  test('ten processes migrating at once apply each migration once, and none fails', async (t) => {
    const url = await pgUrl();
    const stores = Array.from({ length: 10 }, () => pgStore(t, url, { max: 2 }));
    const counts = await Promise.all(stores.map((s) => s.migrate()));
    assert.equal(counts.reduce((a, b) => a + b, 0), migrations().length);
    assert.deepEqual(await sql(url, `SELECT count(*)::int AS n FROM pg_class WHERE relname = 'reelay_migrations'`), [{ n: 1 }]);
    assert.deepEqual((await sql<{ version: number }>(url, 'SELECT version FROM reelay_migrations ORDER BY version')).map((r) => r.version), migrations().map((m) => m.version));
  });

  test("times are moved onto the database's clock: an engine whose clock runs ahead cannot take a lease early", async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const ahead = () => Date.now() + 30_000;
    const b = pgStore(t, url, { clock: ahead });
    const now = Date.now();
    await a.createTask(makeTask({ id: 'c', fileToken: 'fc', nextRunAt: now }));
    assert.equal((await a.claimDue('A', now, 10_000, 5))[0]?.id, 'c');
    // By B's clock A's lease (to A's now + 10 s) ended 20 s ago; on the database's it has not.
    assert.deepEqual(await b.claimDue('B', ahead(), 10_000, 5), [], "A's lease holds");
    assert.equal(await b.commitStep('B', { taskId: 'c', patch: { state: 'failed', nextRunAt: null } }), false, 'the fence refuses B');
    // A schedule written by B is read back on each caller's clock.
    await b.createTask(makeTask({ id: 'd', fileToken: 'fd', nextRunAt: ahead() + 5_000 }));
    const byA = (await a.getTask('t_a', 'd'))!.nextRunAt!;
    const byB = (await b.getTask('t_a', 'd'))!.nextRunAt!;
    assert.ok(Math.abs(byA - (Date.now() + 5_000)) < 2_000, `due in 5 s by A's clock (${byA - Date.now()} ms)`);
    assert.ok(Math.abs(byB - (ahead() + 5_000)) < 2_000, `due in 5 s by B's clock (${byB - ahead()} ms)`);
    assert.deepEqual(await a.claimDue('A', Date.now(), 1_000, 5), [], 'not due yet, for A either');
  });

  test('a statement past statement_timeout rejects with a message that says so, and the store goes on', async (t) => {
    const url = await pgUrl();
    const s = pgStore(t, url, { statementTimeoutMs: 300 });
    await s.migrate();
    await s.createTask(makeTask({ id: 'x', fileToken: 'fx', nextRunAt: 0 }));
    await s.claimDue('A', 1, 60_000, 1);
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    t.after(() => locker.end());
    await locker.query('BEGIN');
    await locker.query(`SELECT id FROM tasks WHERE id = 'x' FOR UPDATE`);
    const started = Date.now();
    await assert.rejects(s.commitStep('A', { taskId: 'x', patch: { nextRunAt: 5 }, keepLease: true }), /statement_timeout \(300 ms\)/);
    assert.ok(Date.now() - started < 5_000, 'no hang');
    await locker.query('ROLLBACK');
    assert.equal(await s.commitStep('A', { taskId: 'x', patch: { nextRunAt: 5 }, keepLease: true }), true);
  });

  test('a read is checked against the row as stored: a change made outside the store, one rolled back, one within a millisecond', async (t) => {
    const url = await pgUrl();
    const s = pgStore(t, url);
    await s.migrate();
    await s.createTask(makeTask({ id: 'm', fileToken: 'fm', progress: 0, updatedAt: 5 }));
    assert.equal((await s.getTask('t_a', 'm'))?.progress, 0);
    // Written by hand, updated_at untouched: only the row's version says it changed.
    await sql(url, `UPDATE tasks SET progress = 40 WHERE id = 'm'`);
    assert.deepEqual([(await s.getTask('t_a', 'm'))?.progress, (await s.getTask('t_a', 'm'))?.updatedAt], [40, 5]);
    await sql(url, `BEGIN; UPDATE tasks SET progress = 99 WHERE id = 'm'; ROLLBACK`);
    assert.equal((await s.getTask('t_a', 'm'))?.progress, 40, 'a change rolled back is not seen');
    for (const p of [41, 42, 43]) {
      await sql(url, `UPDATE tasks SET progress = ${p} WHERE id = 'm'`);
      assert.equal((await s.getTask('t_a', 'm'))?.progress, p);
    }
    // Moved to another tenant by hand: the read checks the tenant of the row as it is now.
    await sql(url, `UPDATE tasks SET tenant_id = 't_z' WHERE id = 'm'`);
    assert.equal(await s.getTask('t_a', 'm'), undefined);
    assert.equal((await s.getTask('t_z', 'm'))?.progress, 43);
  });

  test("bigint columns read as numbers through the store's pool only, not the pg module's parsers", async (t) => {
    const s = pgStore(t, await pgUrl());
    await s.migrate();
    await s.createTask(makeTask({ id: 'b', fileToken: 'fb' }));
    assert.equal(typeof (await s.getTask('t_a', 'b'))?.createdAt, 'number');
    assert.equal(pg.types.getTypeParser(20)('9007199254740993'), '9007199254740993');
  });

  test('admission is global: maxInFlight counts every engine\'s jobs and slots, a slot ends with the commit or the lease', async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const b = pgStore(t, url);
    const now = Date.now();
    // One job already runs at kie; two tasks wait, one leased to each engine.
    await a.createTask(makeTask({ id: 'live', fileToken: 'fl', state: 'generating', provider: 'kie', upstreamId: 'j0', nextRunAt: now + 60_000 }), { owner: 'A', until: now + 60_000 });
    await a.createTask(makeTask({ id: 'ta', fileToken: 'fa', nextRunAt: now }), { owner: 'A', until: now + 10_000 });
    await a.createTask(makeTask({ id: 'tb', fileToken: 'fb', nextRunAt: now }), { owner: 'B', until: now + 10_000 });
    await a.createTask(makeTask({ id: 'tc', fileToken: 'fc', nextRunAt: now }), { owner: 'B', until: now + 10_000 });
    const ask = (s: Store, taskId: string, owner: string) => s.admitSubmission!({ provider: 'kie', taskId, owner, maxInFlight: 2, now: Date.now() });
    assert.deepEqual(await ask(a, 'ta', 'A'), { ok: true }, 'the second of two slots');
    const full = await ask(b, 'tb', 'B');
    assert.deepEqual([full.ok, !full.ok && full.why], [false, 'kie has 2 jobs running (maxInFlight)'], 'the other engine sees the slot');
    // A's submission was accepted: its commit turns the slot into a job; still full.
    assert.equal(await a.commitStep('A', { taskId: 'ta', patch: { state: 'generating', upstreamId: 'j1', provider: 'kie', nextRunAt: now + 5_000 } }), true);
    assert.equal((await ask(b, 'tb', 'B')).ok, false);
    // A job ends: a slot is free, and only one of two engines asking at once gets it.
    assert.equal(await a.commitStep('A', { taskId: 'live', patch: { state: 'succeeded', nextRunAt: null } }), true);
    const both = await Promise.all([ask(b, 'tb', 'B'), ask(a, 'tc', 'B')]);
    assert.deepEqual(both.map((x) => x.ok).sort(), [false, true]);
    // A refused submission's commit gives its slot back.
    const winner = both[0]!.ok ? 'tb' : 'tc';
    const loser = winner === 'tb' ? 'tc' : 'tb';
    assert.equal(await b.commitStep('B', { taskId: winner, patch: { nextRunAt: now + 1_000 }, keepLease: true }), true);
    assert.deepEqual(await ask(b, loser, 'B'), { ok: true });
    // Full again (one job, one slot); the slot of an engine that died ends with its lease (to now + 10 s).
    assert.equal((await ask(b, winner, 'B')).ok, false);
    const later = await b.admitSubmission!({ provider: 'kie', taskId: winner, owner: 'B', maxInFlight: 2, now: now + 11_000 });
    assert.deepEqual(later, { ok: true });
    // A task this engine does not hold gets no slot.
    const notMine = await b.admitSubmission!({ provider: 'other', taskId: 'ta', owner: 'B', maxInFlight: 5, now: Date.now() });
    assert.deepEqual([notMine.ok, !notMine.ok && notMine.why], [false, 'the task is no longer leased to this engine']);
  });

  test('a claim that takes over a task left mid-submit records an interrupted attempt, once; a finished submit leaves none', async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const b = pgStore(t, url);
    const now = Date.now();
    for (const id of ['left', 'done', 'asked']) await a.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now - 1000 }));
    assert.equal((await a.claimDue('A', now, 1_000, 10)).length, 3);
    const ask = (taskId: string) => a.admitSubmission!({ provider: 'kie', taskId, owner: 'A', maxInFlight: 5, now: Date.now() });
    // `left`: let through, then its engine stops before the commit. `done`: let through and
    // committed (the job recorded). `asked`: not let through (no slot), then its engine stops.
    assert.deepEqual([await ask('left'), await ask('done')], [{ ok: true }, { ok: true }]);
    await a.commitStep('A', { taskId: 'done', patch: { state: 'generating', provider: 'kie', upstreamId: 'j1', nextRunAt: now - 500 }, attempt: attempt('done', { provider: 'kie', upstreamId: 'j1' }), keepLease: true });
    // B takes all three over once A's leases end.
    const taken = await b.claimDue('B', now + 2_000, 60_000, 10);
    assert.deepEqual(taken.map((x) => x.id).sort(), ['asked', 'done', 'left']);
    const outcomes = async (id: string) => (await b.listAttempts(id)).map((x) => [x.n, x.step, x.provider, x.upstreamId, x.outcome]);
    assert.deepEqual(await outcomes('left'), [[1, 'submit', 'kie', null, 'interrupted']]);
    assert.match((await b.listAttempts('left'))[0]!.error!, /while submitting to kie: the upstream may hold a job that was never recorded/);
    assert.deepEqual(await outcomes('done'), [[1, 'submit', 'kie', 'j1', 'submitted']]);
    assert.deepEqual(await outcomes('asked'), []);
    // The mark is gone with the record: B's own submit is counted, and a later claim adds nothing.
    assert.deepEqual(await b.admitSubmission!({ provider: 'kie', taskId: 'left', owner: 'B', maxInFlight: 2, now: Date.now() }), { ok: true });
    assert.equal(await b.commitStep('B', { taskId: 'left', patch: { state: 'generating', provider: 'kie', upstreamId: 'j2', nextRunAt: now }, attempt: attempt('left', { provider: 'kie', upstreamId: 'j2' }) }), true);
    assert.equal((await a.claimDue('A', now + 3_000, 1_000, 10)).some((x) => x.id === 'left'), true);
    assert.deepEqual(await outcomes('left'), [[1, 'submit', 'kie', null, 'interrupted'], [2, 'submit', 'kie', 'j2', 'submitted']]);
  });

  test('admission one ask at a time, within a second: never a slot too many, and a slot freed is seen at once near the limit', async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const b = pgStore(t, url);
    const now = Date.now();
    const ids = Array.from({ length: 12 }, (_, i) => `q${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) await a.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now }), { owner: i % 2 ? 'B' : 'A', until: now + 60_000 });
    const ask = (id: string, i: number) => (i % 2 ? b : a).admitSubmission!({ provider: 'p', taskId: id, owner: i % 2 ? 'B' : 'A', maxInFlight: 10, now });
    const answers: boolean[] = [];
    for (const [i, id] of ids.entries()) answers.push((await ask(id, i)).ok);
    assert.deepEqual(answers, ids.map((_, i) => i < 10), 'ten slots, then full, asked one by one from two engines');
    // The first five become jobs, and one of them ends: one slot is free, and the next ask sees it.
    for (const [i, id] of ids.slice(0, 5).entries()) {
      assert.equal(await (i % 2 ? b : a).commitStep(i % 2 ? 'B' : 'A', { taskId: id, patch: { state: 'generating', provider: 'p', upstreamId: `j${i}`, nextRunAt: now + 5_000 }, keepLease: true }), true);
    }
    assert.equal(await a.commitStep('A', { taskId: 'q00', patch: { state: 'succeeded', nextRunAt: null } }), true);
    assert.deepEqual([(await ask('q10', 10)).ok, (await ask('q11', 11)).ok], [true, false]);
  });

  test('admission keeps one submission rate across engines (a token bucket of one second)', async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const b = pgStore(t, url);
    const now = Date.now();
    for (const id of ['r1', 'r2', 'r3']) await a.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now }), { owner: 'E', until: now + 60_000 });
    const ask = (s: Store, taskId: string, at: number) => s.admitSubmission!({ provider: 'fal', taskId, owner: 'E', maxInFlight: 100, ratePerSecond: 2, now: at });
    assert.equal((await ask(a, 'r1', now)).ok, true);
    assert.equal((await ask(b, 'r2', now)).ok, true);
    const third = await ask(a, 'r3', now);
    assert.deepEqual([third.ok, !third.ok && third.waitMs], [false, 500], 'two a second: the next token in half a second');
    assert.equal((await ask(b, 'r3', now + 500)).ok, true, 'half a second later');
  });

  test('asks made at once by two engines get exactly the free slots and tokens, first asked first served', async (t) => {
    const url = await pgUrl();
    const a = pgStore(t, url);
    await a.migrate();
    const b = pgStore(t, url);
    const now = Date.now();
    const ids = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) await a.createTask(makeTask({ id, fileToken: `f${id}`, nextRunAt: now }), { owner: i % 2 ? 'B' : 'A', until: now + 60_000 });
    // 40 asks in one turn, 20 per engine, for 25 slots: one batch per engine, serialised by the lock.
    const ask = (s: Store, taskId: string, owner: string) => s.admitSubmission!({ provider: 'kling', taskId, owner, maxInFlight: 25, now });
    const answers = await Promise.all(ids.map((id, i) => (i % 2 ? ask(b, id, 'B') : ask(a, id, 'A'))));
    const granted = ids.filter((_, i) => answers[i]!.ok);
    assert.equal(granted.length, 25);
    // Each engine's asks are served in the order made: of its own, a refused one never comes before a granted one.
    for (const parity of [0, 1]) {
      const mine = answers.filter((_, i) => i % 2 === parity).map((x) => x.ok);
      assert.deepEqual(mine, [...mine].sort((x, y) => Number(y) - Number(x)));
    }
    for (const x of answers) if (!x.ok) assert.deepEqual(x, { ok: false, waitMs: 500, why: 'kling has 25 jobs running (maxInFlight)' });
    // Tokens: 3 a second, 5 asking at once: 3 pass, the other two hear when the next token comes.
    const r = ids.slice(25, 30).map((id) => a.admitSubmission!({ provider: 'runway', taskId: id, owner: ids.indexOf(id) % 2 ? 'B' : 'A', maxInFlight: 100, ratePerSecond: 3, now }));
    const rated = await Promise.all(r);
    assert.equal(rated.filter((x) => x.ok).length, 3);
    for (const x of rated) if (!x.ok) assert.deepEqual(x, { ok: false, waitMs: 334, why: 'runway is at 3 submissions per second (ratePerSecond)' });
  });

  test('signals reach the other processes, not the sender, and the listener comes back after a database restart', { timeout: 60_000 }, async (t) => {
    // Its own server, as it restarts it: the run's is shared with other test files.
    const cluster = startCluster();
    t.after(() => stopCluster(cluster));
    const url = cluster.url;
    const a = pgStore(t, url);
    const b = pgStore(t, url);
    await a.migrate();
    const heard: { at: string; s: unknown }[] = [];
    const offA = a.onSignal!((s) => heard.push({ at: 'a', s }));
    const offB = b.onSignal!((s) => heard.push({ at: 'b', s }));
    t.after(() => (offA(), offB()));
    const hear = async (n: number) => {
      for (let i = 0; i < 200 && heard.length < n; i++) await new Promise((r) => setTimeout(r, 25));
      return heard.splice(0);
    };
    // The listening connection opens in the background; signal until it hears.
    for (let i = 0; i < 40 && heard.length === 0; i++) {
      a.signal!({ kind: 'upstream', provider: 'kie', upstreamId: 'j9' });
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual((await hear(1)).slice(0, 1), [{ at: 'b', s: { kind: 'upstream', provider: 'kie', upstreamId: 'j9' } }], 'B heard A, A did not hear itself');
    await new Promise((r) => setTimeout(r, 200));
    heard.splice(0);
    b.signal!({ kind: 'due' });
    assert.deepEqual(await hear(1), [{ at: 'a', s: { kind: 'due' } }]);
    // Many `due` signals in a burst are sent as two: one at once, one after the quiet time.
    for (let i = 0; i < 20; i++) b.signal!({ kind: 'due' });
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(heard.splice(0).length <= 2, 'debounced');
    await pgControl('restart', 'fast', cluster);
    heard.splice(0);
    for (let i = 0; i < 100 && heard.length === 0; i++) {
      b.signal!({ kind: 'upstream', provider: 'kie', upstreamId: 'after' });
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual((await hear(1))[0], { at: 'a', s: { kind: 'upstream', provider: 'kie', upstreamId: 'after' } }, 'heard after the restart');
  });
});
