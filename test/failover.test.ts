import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { downloadAndProbe } from './media.js';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, freePort, startServer, track, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-failover-e2e';
const SIM_KEY = 'sk-upstream-secret-1234';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

/** Where the server keeps its tasks: the SQLite file in its data folder, or a database of its own. */
const backends = SERVER_BACKENDS;

/**
 * Failover end to end: `reelay sim` plays the upstreams (a kkiai-style reseller and kie.ai), a
 * real Reelay process routes `veo3.1-fast` / `veo3_fast` to the reseller first and the local
 * renderer second. A task the reseller fails after accepting completes locally under its id.
 */
for (const backend of backends) {
  describe(`failover end to end (${backend.name}; real processes: reelay sim and reelay serve)`, { skip: backend.skip }, () => {
    let sim: ChildProcess;
    let simUrl: string;
    let srv: ServerProcess;
    let work: string;

    before(async () => {
      work = tmpDir();
      const simPort = await freePort();
      sim = track(spawn(process.execPath, [CLI, 'sim', '--port', String(simPort), '--duration', '500', '--video-seconds', '2', '--keys', SIM_KEY, '--dir', join(work, 'sim')], { stdio: ['ignore', 'pipe', 'inherit'] }));
      let out = '';
      sim.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      // It makes its sample videos before it listens: seconds when idle, far longer on a busy machine.
      await waitFor(async () => (out.includes('listening') ? true : undefined), 120_000, 50);
      simUrl = `http://127.0.0.1:${simPort}`;
      const upstream = { baseUrl: simUrl, apiKeyEnv: 'SIM_KEY', typicalSeconds: 0.5, pollMaxSeconds: 1, timeoutSeconds: 3 };
      writeFileSync(join(work, 'reelay.json'), JSON.stringify({
        providers: {
          reseller: { type: 'kkiai', ...upstream },
          kie: { type: 'kie', ...upstream },
          // Polled first after a minute, but kie calls back: the callback makes the poll come at once.
          'kie-callbacks': { type: 'kie', ...upstream, typicalSeconds: 60, options: { callbacks: true } },
        },
        models: [
          { match: ['veo3.1-fast', 'veo3_fast'], routes: [{ provider: 'reseller' }, { provider: 'local' }] },
          { match: 'veo3', routes: [{ provider: 'kie' }, { provider: 'local' }] },
          { match: 'veo3_lite', routes: [{ provider: 'kie-callbacks' }] },
        ],
      }));
      srv = await startServer({
        ...(await backend.env()),
        REELAY_DATA_DIR: work,
        REELAY_API_KEYS: KEY,
        REELAY_CONFIG: join(work, 'reelay.json'),
        SIM_KEY,
        REELAY_ERROR_SLEEP_MS: '200',
        REELAY_METRICS: 'on',
        LOG_LEVEL: 'info',
      });
    });
    after(async () => {
      await srv?.stop();
      if (sim && sim.exitCode === null) {
        sim.kill('SIGTERM');
        await once(sim, 'exit');
      }
    });

    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const kkiaiCreate = async (body: object) => (await (await fetch(`${srv.url}/v1/video/create`, { method: 'POST', headers, body: JSON.stringify(body) })).json()) as { id: string };
    const kkiaiQuery = async (id: string) => (await (await fetch(`${srv.url}/v1/video/query?id=${encodeURIComponent(id)}`, { headers })).json()) as any;
    const kieRecord = async (id: string) => ((await (await fetch(`${srv.url}/api/v1/veo/record-info?taskId=${encodeURIComponent(id)}`, { headers })).json()) as any).data;
    const kieCreate = async (body: object) => ((await (await fetch(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify(body) })).json()) as any).data.taskId as string;
    const finished = (id: string) => waitFor(async () => {
      const q = await kkiaiQuery(id);
      return ['completed', 'failed', 'video_generation_failed'].includes(q.status) ? q : undefined;
    }, 90_000, 200);

    test('a healthy upstream makes the video: it is the simulator\'s file, no fallback', async () => {
      const { id } = await kkiaiCreate({ model: 'veo3.1-fast', prompt: 'a calm lake at dawn' });
      const q = await finished(id);
      assert.equal(q.status, 'completed');
      assert.equal(q.detail.fallback, false);
      const p = await downloadAndProbe(q.video_url, work, 'healthy.mp4');
      assert.equal(p.video?.codec, 'h264');
      assert.ok(p.durationMs < 3000, `the simulator's 2 s sample, got ${p.durationMs} ms`);
      assert.equal((await kieRecord(id)).fallbackFlag, false);
    });

    test('the upstream fails after accepting: the same task completes on the local renderer, every dialect says fallback', async () => {
      const { id } = await kkiaiCreate({ model: 'veo3.1-fast', prompt: '[sim:fail] a storm over the sea' });
      const q = await finished(id);
      assert.equal(q.id, id);
      assert.equal(q.status, 'completed');
      assert.equal(q.detail.fallback, true);
      assert.match(q.detail.error_message, /upstream generation error/, 'the upstream failure stays visible');
      const p = await downloadAndProbe(q.video_url, work, 'fallback.mp4');
      assert.ok(p.durationMs > 7000, `the local renderer's 8 s video, got ${p.durationMs} ms`);
      const rec = await kieRecord(id);
      assert.equal(rec.successFlag, 1);
      assert.equal(rec.fallbackFlag, true);
      assert.deepEqual(rec.response.resultUrls, [q.video_url]);
    });

    test('kie upstream refuses at create (reCAPTCHA): failover before acceptance', async () => {
      const id = await kieCreate({ prompt: '[sim:recaptcha] a red kite', model: 'veo3' });
      await waitFor(async () => ((await kieRecord(id)).successFlag !== 0 ? true : undefined), 90_000, 200);
      const rec = await kieRecord(id);
      assert.equal(rec.successFlag, 1);
      assert.equal(rec.fallbackFlag, true);
    });

    test('kie callbacks (options.callbacks): the upstream calls back and the task finishes long before its first poll', async () => {
      const started = Date.now();
      const id = await kieCreate({ prompt: 'a quiet harbour', model: 'veo3_lite' });
      await waitFor(async () => ((await kieRecord(id)).successFlag !== 0 ? true : undefined), 30_000, 100);
      assert.equal((await kieRecord(id)).successFlag, 1);
      assert.ok(Date.now() - started < 20_000, `finished in ${Date.now() - started} ms; the first poll was due after ~60 s`);
      const bad = await fetch(`${srv.url}/upstream-callbacks/kie-callbacks/not-the-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { taskId: 'x' } }) });
      assert.equal(bad.status, 404, 'a wrong token is refused');
    });

    test('a safety rejection upstream is not resubmitted: kie errorCode 400, kkiai video_generation_failed', async () => {
      const { id } = await kkiaiCreate({ model: 'veo3.1-fast', prompt: '[sim:safety] something the upstream refuses' });
      const q = await finished(id);
      assert.equal(q.status, 'video_generation_failed');
      assert.match(q.detail.video_generation_error, /unsafe/);
      const rec = await kieRecord(id);
      assert.equal(rec.successFlag, 3);
      assert.equal(rec.errorCode, 400);
    });

    test('/metrics (REELAY_METRICS=on): step lateness and upstream jobs in flight, in Prometheus text', async () => {
      const res = await fetch(`${srv.url}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /reelay_engine_step_lateness_seconds_bucket\{le="1",step="poll"\} \d+/);
      assert.match(text, /reelay_upstream_jobs_in_flight\{provider="reseller"\} 0/);
      assert.match(text, /reelay_process_resident_memory_bytes \d+/);
    });

    test('the upstream key never appears in the logs', () => {
      assert.ok(srv.output().length > 0);
      assert.ok(!srv.output().includes(SIM_KEY));
    });
  });
}
