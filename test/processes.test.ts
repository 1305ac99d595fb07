import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { freshDatabase, pgSkipReason } from './pg.js';
import { type ServerProcess, startServer, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/**
 * The promises that hold across processes sharing one PostgreSQL database, seen from outside:
 * two API processes and an engine process (`serve --role`), keys made with the CLI.
 */
describe('processes sharing one PostgreSQL database', { skip: pgSkipReason() }, async () => {
  const url = (await freshDatabase())!;
  const env = { REELAY_DATABASE_URL: url, REELAY_DATA_DIR: tmpDir(), REELAY_RENDER_DELAY_MS: '60000' };
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  const made = cli('keys', 'create', '--name', 'shared');
  assert.equal(made.status, 0, made.stderr);
  const key = made.stdout.trim();
  // Three processes migrating and starting at once.
  const started = await Promise.all([startServer({ ...env, REELAY_ROLE: 'api' }), startServer({ ...env, REELAY_ROLE: 'api' }), startServer({ ...env, REELAY_ROLE: 'engine' })]);
  const [a, b, engine] = started as [ServerProcess, ServerProcess, ServerProcess];
  after(() => Promise.all(started.map((s) => s.stop())));
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  /** The task as the OpenAI door shows it: its id and status. */
  const video = async (s: ServerProcess, id: string) => {
    const v = (await (await fetch(`${s.url}/v1/videos/${id}`, { headers })).json()) as { id: string; status: string };
    return { id: v.id, status: v.status };
  };
  const record = async (s: ServerProcess, id: string) => (await (await fetch(`${s.url}/api/v1/veo/record-info?taskId=${id}`, { headers })).json()) as { code: number; data: { successFlag: number } | null };

  test('each process says its role; an engine process serves no API', async () => {
    for (const [s, role] of [[a, 'api'], [b, 'api'], [engine, 'engine']] as const) {
      const ready = await fetch(`${s.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { ok: true, role, draining: false, database: { ok: true }, storage: { ok: true } });
    }
    assert.equal((await fetch(`${engine.url}/api/v1/veo/record-info?taskId=x`, { headers })).status, 404);
  });

  test('a task created through one API process is read through the other, as it changes (no stale cache)', async () => {
    // The engine is paused, so the task waits queued until it is let go.
    engine.child.kill('SIGSTOP');
    try {
      const created = (await (await fetch(`${a.url}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a slow lighthouse' }) })).json()) as { code: number; data: { taskId: string } };
      assert.equal(created.code, 200);
      const id = created.data.taskId;
      assert.equal((await record(b, id)).code, 200, 'the other process knows it at once');
      // Read through the OpenAI door (a kie task is any door's, for the same key): its status
      // tells queued from running, where kie's successFlag is 0 for both.
      for (const s of [a, b]) assert.deepEqual(await video(s, id), { id, status: 'queued' });
      engine.child.kill('SIGCONT');
      // The engine takes it (the local renderer holds it "running" for a minute). Whichever API
      // process shows the change first, the other shows it on its next read; one answering from
      // a cache would stay "queued".
      const first = await waitFor(async () => {
        for (const s of [a, b]) if ((await video(s, id)).status === 'in_progress') return s;
        return undefined;
      }, 30_000, 50).catch(() => assert.fail('neither API process shows the engine taking the task'));
      const other = first === a ? b : a;
      assert.deepEqual(await video(other, id), { id, status: 'in_progress' }, 'both API processes read the task fresh');
      const [x, y] = await Promise.all([record(a, id), record(b, id)]);
      assert.deepEqual(x, y);
    } finally {
      engine.child.kill('SIGCONT');
    }
  });

  test('a key revoked with the CLI stops working on every process within a second', async () => {
    assert.equal((await record(a, 'none')).code, 404, 'a live key reaches the task lookup');
    const revoked = cli('keys', 'revoke', key.slice(0, 10));
    assert.equal(revoked.status, 0, revoked.stderr);
    const at = Date.now();
    await waitFor(async () => ((await record(a, 'none')).code === 401 && (await record(b, 'none')).code === 401 ? true : undefined), 10_000, 50);
    const took = Date.now() - at;
    assert.ok(took < 2_500, `refused everywhere after ${took} ms`);
  });
});
