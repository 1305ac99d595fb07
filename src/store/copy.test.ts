import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeTask } from '../../test/fixtures.js';
import { freshDatabase, pgSkipReason } from '../../test/pg.js';
import { tmpDir } from '../../test/tmp.js';
import { copySqliteToPostgres } from './copy.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

test('an embedded SQLite database moves into PostgreSQL whole: tasks, keys, attempts, artifacts and callbacks owed', { skip: pgSkipReason() }, async (t) => {
  const file = join(tmpDir(), 'reelay.sqlite');
  const from = openSqliteStore(file);
  await from.insertKey({ id: 'k1', tenantId: 'ten', hash: 'h1', prefix: 'sk-one', name: 'main', source: 'cli', createdAt: 5, revokedAt: null });
  await from.insertKey({ id: 'k2', tenantId: 'ten', hash: 'h2', prefix: 'sk-two', name: '', source: 'env', createdAt: 6, revokedAt: 9 });
  const done = makeTask({ id: 'done', tenantId: 'ten', fileToken: 'fdone', nextRunAt: 0, fallback: true });
  await from.createTask(done);
  await from.claimDue('E', 1, 60_000, 1);
  await from.commitStep('E', {
    taskId: 'done',
    patch: { state: 'succeeded', nextRunAt: null, completedAt: 50, progress: 100 },
    attempt: { taskId: 'done', n: 0, step: 'poll', provider: 'kie', upstreamId: 'j1', startedAt: 40, endedAt: 41, outcome: 'succeeded', error: null },
    artifacts: [{ taskId: 'done', kind: 'video', path: '/data/results/fd/fdone-video.mp4', contentType: 'video/mp4', bytes: 123, width: 1280, height: 720, durationMs: 8000, codec: 'h264', createdAt: 42 }],
    deliveries: [{ taskId: 'done', url: 'https://cb.example/x', body: '{"code":200}', createdAt: 43 }, { taskId: 'done', endpointId: 'we_1', url: 'https://rx.example/all', body: '{"type":"video.completed"}', createdAt: 43 }],
    events: [{ taskId: 'done', at: 44, kind: 'state', actor: 'engine', from: 'queued', to: 'succeeded', detail: { reason: 'the video of kie is stored' } }],
  });
  await from.createEndpoint({ id: 'we_1', tenantId: 'ten', url: 'https://rx.example/all', events: ['video.completed'], createdAt: 30, disabledAt: null, disabledReason: null });
  // A task canceled while the gateway ran: its cancel step is still owed after the move.
  await from.createTask(makeTask({ id: 'stop', tenantId: 'ten', fileToken: 'fstop', state: 'generating', upstreamId: 'j3', nextRunAt: 60 }));
  await from.cancelTask('ten', 'stop', 65, { deleteAfter: true });
  // A task an engine held when the gateway stopped: it is copied free, due at its time.
  await from.createTask(makeTask({ id: 'running', tenantId: 'ten', fileToken: 'frun', state: 'generating', upstreamId: 'j2', nextRunAt: 70 }), { owner: 'E', until: 10_000 });
  // A tenant's signing secret and an answered idempotency key: a copied gateway signs and replays as before.
  assert.deepEqual(await from.webhookSecrets('ten', 44, 'whsec_copied'), ['whsec_copied']);
  const ref = { tenantId: 'ten', scope: 'kie.generate', key: 'order-1', token: 'tk' };
  const far = Date.now() + 86_400_000;
  assert.equal((await from.takeKey({ ...ref, fingerprint: 'fp', now: 44, heldUntil: far, expiresAt: far })).kind, 'new');
  const answer = { status: 200, body: '{"code":200,"data":{"taskId":"done"}}', taskId: 'done' };
  assert.equal(await from.answerKey({ ref, answer }), true);
  // A metered tenant: its balance, and a task's reservation in the ledger.
  await from.addCredits('ten', 500, 46, 'first');
  await from.createTask(makeTask({ id: 'paid', tenantId: 'ten', fileToken: 'fpaid', nextRunAt: 5000, charge: { credits: 80, perSecond: 10, item: 'video' } }));
  const before = { stop: await from.getTask('ten', 'stop'), events: [...(await from.listEvents('done')), ...(await from.listEvents('stop'))], endpoints: await from.listEndpoints(), done: await from.getTask('ten', 'done'), running: await from.getTask('ten', 'running'), attempts: await from.listAttempts('done'), artifacts: await from.listArtifacts('done'), deliveries: await from.listDeliveries('done'), keys: await from.listKeys(), paid: await from.getTask('ten', 'paid'), account: await from.creditAccount('ten'), ledger: await from.listLedger('ten', { limit: 10 }) };
  await from.close();

  const url = (await freshDatabase())!;
  assert.deepEqual(await copySqliteToPostgres(file, url), { api_keys: 2, tasks: 4, attempts: 1, artifacts: 1, deliveries: 2, idempotency_keys: 1, webhook_secrets: 1, task_events: 3, webhook_endpoints: 1, credit_accounts: 1, credit_ledger: 2 });
  const to = openPostgresStore(url);
  t.after(() => to.close());
  assert.deepEqual(await to.getTask('ten', 'done'), before.done);
  assert.deepEqual(await to.getTask('ten', 'stop'), before.stop);
  assert.deepEqual([before.stop?.state, before.stop?.cancelOutcome, before.stop?.deleteRequested], ['canceled', 'pending', true]);
  assert.deepEqual([...(await to.listEvents('done')), ...(await to.listEvents('stop'))], before.events);
  assert.deepEqual(await to.listEndpoints(), before.endpoints);
  assert.deepEqual(await to.getTask('ten', 'running'), before.running);
  assert.deepEqual(await to.listAttempts('done'), before.attempts);
  assert.deepEqual(await to.listArtifacts('done'), before.artifacts);
  assert.deepEqual(await to.listDeliveries('done'), before.deliveries);
  assert.deepEqual(await to.listKeys(), before.keys);
  assert.equal((await to.findKeyByHash('h1'))?.tenantId, 'ten');
  assert.deepEqual(await to.getTask('ten', 'paid'), before.paid);
  assert.deepEqual(await to.creditAccount('ten'), before.account);
  assert.deepEqual(await to.listLedger('ten', { limit: 10 }), before.ledger);
  await to.addCredits('ten', 1, 90, null);
  assert.equal((await to.listLedger('ten', { limit: 1 }))[0]!.id, before.ledger[0]!.id + 1, 'the ledger goes on after the copied entries');
  assert.deepEqual(await to.webhookSecrets('ten', 45, 'whsec_not_this'), ['whsec_copied']);
  assert.deepEqual(await to.takeKey({ ...ref, token: 'tk2', fingerprint: 'fp', now: Date.now(), heldUntil: far, expiresAt: far }), { kind: 'replay', answer });
  assert.deepEqual((await to.claimDue('F', 100, 1000, 5)).map((x) => x.id), ['stop', 'running'], 'not leased any more; the cancel step is due');
  // New callbacks are numbered after the copied ones.
  await to.createTask(makeTask({ id: 'new', tenantId: 'ten', fileToken: 'fnew', nextRunAt: 0 }), { owner: 'F', until: 10_000 });
  const owed = [{ taskId: 'new', url: 'https://cb.example/y', body: '{}', createdAt: 60 }];
  assert.equal(await to.commitStep('F', { taskId: 'new', patch: { nextRunAt: null }, deliveries: owed }), true);
  assert.ok((await to.listDeliveries('new'))[0]!.id > before.deliveries[0]!.id);
  // A second copy would merge two histories: refused, nothing written.
  await assert.rejects(copySqliteToPostgres(file, url), /already holds 5 task\(s\)/);
});

test('reelay migrate and reelay copy-to-postgres, as a user runs them', { skip: pgSkipReason() }, async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const data = tmpDir();
  const seed = openSqliteStore(join(data, 'reelay.sqlite'));
  await seed.createTask(makeTask({ id: 'one', tenantId: 'ten', fileToken: 'fone' }));
  await seed.close();
  const url = (await freshDatabase())!;
  const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, REELAY_DATA_DIR: data, ...env }, encoding: 'utf8', timeout: 60_000 });
  const first = run(['migrate'], { REELAY_DATABASE_URL: url });
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /applied \d+ migration\(s\) to the postgres database/);
  assert.match(run(['migrate'], { REELAY_DATABASE_URL: url }).stdout, /the postgres database is up to date/);
  const copied = run(['copy-to-postgres', '--to', url]);
  assert.equal(copied.status, 0, copied.stderr);
  assert.match(copied.stdout, /copied 0 api_keys, 1 tasks, 0 attempts, 0 artifacts, 0 deliveries/);
  const again = run(['copy-to-postgres'], { REELAY_DATABASE_URL: url });
  assert.deepEqual([again.status, /already holds 1 task/.test(again.stderr)], [1, true]);
  const nowhere = run(['copy-to-postgres']);
  assert.equal(nowhere.status, 2);
});
