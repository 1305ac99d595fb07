import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { callbackUrl } from '../src/providers/callbacks.js';
import { parseRouting } from '../src/routing/config.js';
import { peer } from './peer.js';
import { freshDatabase, pgSkipReason } from './pg.js';
import { type ServerProcess, freePort, startServer, waitFor } from './server.js';
import { SIM_KEY, startTestSim } from './sim.js';
import { tmpDir } from './tmp.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
/** How long the simulated kie job takes. */
const JOB_MS = 2_000;
/** When the first poll is due without a callback (the provider's `typicalSeconds`). */
const FIRST_POLL_MS = 60_000;

/**
 * A wake-up reaches the engine that holds the task, wherever it arrives: kie calls back an API
 * process, and the engine process that submitted the job (and holds the task in memory until its
 * first poll, a minute later) polls at once, told through PostgreSQL.
 */
describe('a kie callback reaching an API process wakes the engine process holding the task', { skip: pgSkipReason() }, async () => {
  const sim = await startTestSim();
  const apiPort = await freePort();
  const api = `http://127.0.0.1:${apiPort}`;
  const work = tmpDir();
  const routing = {
    providers: { kie: { type: 'kie', baseUrl: sim.url, apiKeyEnv: 'SIM_KEY', typicalSeconds: FIRST_POLL_MS / 1000, timeoutSeconds: 10, options: { callbacks: true } } },
    models: [{ match: 'veo3_fast', routes: [{ provider: 'kie' }] }],
  };
  writeFileSync(join(work, 'reelay.json'), JSON.stringify(routing));
  // The load balancer in front of the API processes: the public URL every process gives out, so
  // kie calls it back. It passes the callback on to the API process and keeps the answer.
  const answers: { status: number; body: string }[] = [];
  const balancer = await peer();
  after(() => balancer.close());
  const callbackPath = new URL(callbackUrl(balancer.url, parseRouting(routing, { SIM_KEY }).providers.get('kie')!)!).pathname;
  balancer.routes[callbackPath] = (req, res, body) =>
    void fetch(`${api}${req.url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
      async (r) => {
        const text = await r.text();
        answers.push({ status: r.status, body: text });
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(text);
      },
      () => res.writeHead(502).end(),
    );

  const env = {
    REELAY_DATABASE_URL: (await freshDatabase())!,
    REELAY_DATA_DIR: join(work, 'data'),
    REELAY_CONFIG: join(work, 'reelay.json'),
    REELAY_PUBLIC_URL: balancer.url,
    REELAY_METRICS: 'on',
    SIM_KEY,
  };
  const made = spawnSync(process.execPath, [CLI, 'keys', 'create', '--name', 'wake'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(made.status, 0, made.stderr);
  const headers = { authorization: `Bearer ${made.stdout.trim()}`, 'content-type': 'application/json' };
  const started = await Promise.allSettled([startServer({ ...env, REELAY_ROLE: 'api' }, apiPort), startServer({ ...env, REELAY_ROLE: 'engine' })]);
  after(() => Promise.all(started.map((s) => s.status === 'fulfilled' && s.value.stop())));
  const [apiProcess, engine] = started.map((s) => (s.status === 'fulfilled' ? s.value : assert.fail(String(s.reason)))) as [ServerProcess, ServerProcess];
  const record = async (id: string) => (await (await fetch(`${api}/api/v1/veo/record-info?taskId=${id}`, { headers })).json()) as { code: number; data: { successFlag: number } | null };
  /** `reelay_engine_steps_total` of one process, by step. */
  const steps = async (s: ServerProcess) => {
    const text = await (await fetch(`${s.url}/metrics`)).text();
    return Object.fromEntries([...text.matchAll(/^reelay_engine_steps_total\{step="(\w+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  };

  test('the task succeeds seconds after the job ends, polled by the engine process, not a minute later', async () => {
    const prompt = `a lighthouse woken by its upstream [sim:takes=${JOB_MS}]`;
    const created = (await (await fetch(`${api}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify({ prompt, model: 'veo3_fast' }) })).json()) as { code: number; data: { taskId: string } };
    assert.equal(created.code, 200);
    const at = Date.now();
    // Waited for less than the poll schedule: a task that succeeds only on its scheduled poll
    // times out here.
    await waitFor(async () => ((await record(created.data.taskId)).data?.successFlag === 1 ? true : undefined), FIRST_POLL_MS - 15_000, 100).catch(() =>
      assert.fail(`not succeeded ${Date.now() - at} ms after its create: the callback did not wake the engine (job ${JOB_MS} ms, first poll due after ${FIRST_POLL_MS} ms)`),
    );
    const took = Date.now() - at;
    assert.ok(took < 15_000, `succeeded ${took} ms after its create; the job took ${JOB_MS} ms and the first poll was due after ${FIRST_POLL_MS} ms`);

    const job = [...sim.jobs.all()].find((j) => j.prompt === prompt);
    assert.ok(job, 'the simulator took the job');
    // kie called the public URL back once, for this job, and the API process behind it took it.
    const called = balancer.received.filter((r) => r.path === callbackPath);
    assert.equal(called.length, 1);
    assert.equal((JSON.parse(called[0]!.body) as { data: { taskId: string } }).data.taskId, job.id);
    assert.deepEqual(answers.map((a) => ({ status: a.status, body: JSON.parse(a.body) as unknown })), [{ status: 200, body: { code: 200, msg: 'success' } }]);
    // The engine process polled (and submitted); the API process ran no step at all.
    const ran = await steps(engine);
    assert.ok((ran.submit ?? 0) >= 1 && (ran.poll ?? 0) >= 1, `engine steps: ${JSON.stringify(ran)}`);
    assert.deepEqual(await steps(apiProcess), {});
  });
});
