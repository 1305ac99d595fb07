import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { SERVER_BACKENDS } from './pg.js';
import { type ServerProcess, startCallbackReceiver, startServer, waitFor } from './server.js';
import { SIM_KEY, startTestSim } from './sim.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-cancel-e2e';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const WORKFLOW = {
  '3': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}' } },
  '9': { class_type: 'VHS_VideoCombine', inputs: { frame_rate: 24, filename_prefix: 'reelay' } },
};

/** The upstreams whose cancel Reelay calls, each behind its own public model; kie has none. */
const UPSTREAMS: { model: string; type: string; upstreamModel: string; outcome: string }[] = [
  { model: 'sim-fal', type: 'fal', upstreamModel: 'fal-ai/veo3.1/fast', outcome: 'upstream_canceled' },
  { model: 'sim-replicate', type: 'replicate', upstreamModel: 'google/veo-3.1-fast', outcome: 'upstream_canceled' },
  { model: 'sim-openai', type: 'openai', upstreamModel: 'sora-2', outcome: 'upstream_canceled' },
  { model: 'sim-comfyui', type: 'comfyui', upstreamModel: 'workflow', outcome: 'upstream_canceled' },
  { model: 'sim-gemini', type: 'gemini', upstreamModel: 'veo-3.1-fast-generate-preview', outcome: 'upstream_canceled' },
  { model: 'sim-vertex', type: 'vertex', upstreamModel: 'veo-3.1-fast-generate-001', outcome: 'upstream_canceled' },
  { model: 'sim-kie', type: 'kie', upstreamModel: 'veo3_fast', outcome: 'upstream_uncancelable' },
];

const backends = SERVER_BACKENDS;

for (const backend of backends) {
  describe(`cancel against a real server (${backend.name})`, { skip: backend.skip }, async () => {
    // Upstream jobs run a minute: long enough to be canceled while they run.
    const sim = await startTestSim({ durationMs: 60_000 });
    let srv: ServerProcess;
    let work: string;
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const native = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${srv.url}/reelay/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
    };
    const create = async (body: Record<string, unknown>) => {
      const res = await native('POST', '/tasks', body);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.id as string;
    };
    const until = async (id: string, ok: (t: any) => boolean, ms = 30_000) => {
      let last: unknown;
      try {
        return await waitFor(async () => {
          const t = (last = (await native('GET', `/tasks/${id}`)).body);
          return ok(t) ? t : undefined;
        }, ms, 50);
      } catch (e) {
        throw new Error(`${(e as Error).message}: task ${id} is ${JSON.stringify(last)}`);
      }
    };

    before(async () => {
      work = tmpDir();
      const common = { baseUrl: sim.url, apiKeyEnv: 'SIM_KEY', typicalSeconds: 0.2, pollMaxSeconds: 1 };
      const providers = Object.fromEntries(UPSTREAMS.map((u) => [u.type, {
        type: u.type,
        ...common,
        ...(u.type === 'fal' ? { baseUrl: `${sim.url}/fal` } : {}),
        ...(u.type === 'comfyui' ? { options: { workflow: WORKFLOW } } : {}),
        ...(u.type === 'vertex' ? { apiKeyEnv: 'SIM_VERTEX', options: { project: 'demo-project', location: 'us-central1' } } : {}),
      }]));
      // The kie and OpenAI doors' own model names go to the fal simulator, whose jobs run on.
      const models = [
        ...UPSTREAMS.map((u) => ({ match: u.model, routes: [{ provider: u.type, model: u.upstreamModel }] })),
        { match: ['veo3_fast', 'sora-2'], routes: [{ provider: 'fal', model: 'fal-ai/veo3.1/fast' }] },
      ];
      const config = join(work, 'routing.json');
      writeFileSync(config, JSON.stringify({ providers, models }));
      const vertexKey = JSON.stringify({ type: 'service_account', client_email: SIM_KEY, private_key: pem, token_uri: `${sim.url}/token` });
      srv = await startServer({
        ...(await backend.env()),
        REELAY_DATA_DIR: work,
        REELAY_API_KEYS: KEY,
        REELAY_CONFIG: config,
        SIM_KEY,
        SIM_VERTEX: vertexKey,
        REELAY_URL_ALLOWLIST: '127.0.0.1',
      });
    });
    after(async () => {
      await srv?.stop();
    });

    test('every upstream that has a cancel gets it, for the job it runs; kie, which has none, is said to be uncancelable', async () => {
      await Promise.all(UPSTREAMS.map(async (u) => {
        const prompt = `to be canceled on ${u.type} (${backend.name})`;
        const id = await create({ model: u.model, prompt });
        await until(id, (t) => t.state === 'generating' && t.provider === u.type);
        const job = await waitFor(async () => [...sim.jobs.all()].find((j) => j.prompt.includes(prompt)), 10_000, 20);
        const canceled = await native('POST', `/tasks/${id}/cancel`);
        assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
        assert.deepEqual([canceled.body.state, canceled.body.cancel_outcome], ['canceled', 'pending']);
        const done = await until(id, (t) => t.cancel_outcome !== 'pending');
        assert.equal(done.cancel_outcome, u.outcome, u.type);
        assert.equal(done.state, 'canceled');
        assert.deepEqual(done.error, { kind: 'canceled', stage: 'generation', message: 'Canceled by the client' });
        assert.equal(job.cancelled === true, u.outcome === 'upstream_canceled', `${u.type}: the simulated job saw the cancel`);
      }));
    });

    test('the local renderer kills its ffmpeg: the process is gone, no video is left, nothing is logged as rendered', async () => {
      const id = await create({ model: 'veo3.1-fast', prompt: 'a long 4k render to stop', resolution: '4k', seconds: 8 });
      const renders = join(work, 'renders');
      const pidFile = await waitFor(async () => readdirSync(renders).find((f) => f.endsWith('.pid')), 30_000, 20);
      const pid = Number(readFileSync(join(renders, pidFile), 'utf8'));
      assert.ok(pid > 0 && alive(pid), 'ffmpeg runs');
      const res = await native('POST', `/tasks/${id}/cancel`);
      assert.equal(res.status, 200);
      const done = await until(id, (t) => t.cancel_outcome !== 'pending');
      assert.equal(done.cancel_outcome, 'upstream_canceled');
      // The outcome is recorded once the ffmpeg is gone and the job's files with it.
      assert.ok(!alive(pid), 'ffmpeg is gone');
      const job = pidFile.slice(0, -'.pid'.length);
      assert.deepEqual(readdirSync(renders).filter((f) => f.startsWith(job)), [], 'the job left no file');
      const log = join(renders, 'renders.log');
      assert.ok(!existsSync(log) || !readFileSync(log, 'utf8').includes(id), 'not logged as rendered');
      assert.equal(done.outputs.video, null);
    });

    test('OpenAI: the SDK deletes a video being made; it is gone from every door once its work is stopped', async () => {
      const client = new OpenAI({ apiKey: KEY, baseURL: `${srv.url}/v1`, maxRetries: 0 });
      const video = await client.videos.create({ model: 'sora-2', prompt: 'deleted while it is made' });
      await until(video.id, (t) => t.state === 'generating');
      const deleted = await client.videos.delete(video.id);
      assert.deepEqual(deleted, { id: video.id, object: 'video.deleted', deleted: true });
      await assert.rejects(client.videos.retrieve(video.id), OpenAI.NotFoundError);
      await waitFor(async () => ((await native('GET', `/tasks/${video.id}`)).status === 404 ? true : undefined), 15_000, 50);
      const job = [...sim.jobs.all()].find((j) => j.prompt.includes('deleted while it is made'));
      assert.equal(job?.cancelled, true, 'its upstream job was canceled');
    });

    test('Gemini: operations/{id}:cancel ends the operation with code 1 CANCELLED', async () => {
      const g = { 'x-goog-api-key': KEY, 'content-type': 'application/json' };
      const created = await fetch(`${srv.url}/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning`, { method: 'POST', headers: g, body: JSON.stringify({ instances: [{ prompt: 'a gemini cancel' }] }) });
      const { name } = (await created.json()) as { name: string };
      const res = await fetch(`${srv.url}/v1beta/${name}:cancel`, { method: 'POST', headers: g, body: '{}' });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      const op = await waitFor(async () => {
        const o = (await (await fetch(`${srv.url}/v1beta/${name}`, { headers: g })).json()) as { done?: boolean; error?: unknown };
        return o.done ? o : undefined;
      }, 10_000, 50);
      assert.deepEqual(op, { name, done: true, error: { code: 1, message: 'Operation was cancelled.' } });
      const unknown = await fetch(`${srv.url}/v1beta/models/veo-3.1-fast-generate-preview/operations/nope:cancel`, { method: 'POST', headers: g, body: '{}' });
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as { error: { status: string } }).error.status, 'NOT_FOUND');
    });

    test('kie: a canceled task reads successFlag 2 and its callBackUrl gets a code 400 callback', async () => {
      const receiver = await startCallbackReceiver();
      try {
        const res = await fetch(`${srv.url}/api/v1/veo/generate`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a kie task to cancel', model: 'veo3_fast', callBackUrl: receiver.url }) });
        const taskId = ((await res.json()) as { data: { taskId: string } }).data.taskId;
        await until(taskId, (t) => t.state === 'generating');
        assert.equal((await native('POST', `/tasks/${taskId}/cancel`)).status, 200);
        const bodies = await waitFor(async () => receiver.byTask.get(taskId), 15_000, 50);
        assert.deepEqual(JSON.parse(bodies[0]!), { code: 400, msg: 'The task was canceled by the client.', data: { taskId, fallbackFlag: false } });
        const record = (await (await fetch(`${srv.url}/api/v1/veo/record-info?taskId=${taskId}`, { headers })).json()) as { data: { successFlag: number; errorCode: number } };
        assert.deepEqual([record.data.successFlag, record.data.errorCode], [2, 400]);
        // Its delivery log, and a resend: the same body again, one more try.
        const listed = await waitFor(async () => {
          const d = (await native('GET', `/tasks/${taskId}/deliveries`)).body.data;
          return d[0]?.status === 'delivered' ? d : undefined;
        }, 10_000, 50);
        assert.deepEqual([listed.length, listed[0].url, listed[0].attempts, listed[0].last_status, listed[0].webhook_id], [1, receiver.url, 1, 200, `msg_${taskId}_${listed[0].id}`]);
        const resent = await native('POST', `/tasks/${taskId}/deliveries/${listed[0].id}/resend`);
        assert.deepEqual([resent.status, resent.body.status], [200, 'pending']);
        const twice = await waitFor(async () => (receiver.byTask.get(taskId)!.length === 2 ? receiver.byTask.get(taskId) : undefined), 10_000, 50);
        assert.equal(twice[1], twice[0]);
        // The audit trail: created, submitted, the submit attempt, the cancel by the API, the
        // cancel attempt that reached the upstream, then each callback try.
        const events = await waitFor(async () => {
          const e = (await native('GET', `/tasks/${taskId}/events`)).body.data as any[];
          return e.filter((x) => x.kind === 'delivery').length === 2 ? e : undefined;
        }, 10_000, 50);
        const upstream = events.filter((e) => e.kind === 'upstream');
        assert.deepEqual(upstream[0] && [upstream[0].detail.method, upstream[0].detail.status, upstream[0].detail.provider], ['POST', 200, 'fal'], JSON.stringify(upstream[0]));
        assert.match(upstream[0].detail.request, /a kie task to cancel/);
        assert.match(upstream[0].detail.response, /request_id/);
        assert.ok(upstream.some((e) => e.detail.method === 'PUT' && /\/cancel$/.test(e.detail.url)), 'the upstream cancel is there');
        assert.ok(!JSON.stringify(events).includes(SIM_KEY), 'no upstream key anywhere in the trail');
        assert.deepEqual(events.filter((e) => e.kind !== 'upstream').map((e) => [e.kind, e.actor, e.from, e.to, e.detail?.step ?? e.detail?.outcome ?? null]), [
          ['created', 'api', null, 'queued', null],
          ['attempt', 'engine', null, null, 'submit'],
          ['state', 'engine', 'queued', 'generating', null],
          ['state', 'api', 'generating', 'canceled', null],
          ['attempt', 'engine', null, null, 'cancel'],
          ['delivery', 'deliverer', null, null, 'delivered'],
          ['delivery', 'deliverer', null, null, 'delivered'],
        ]);
        const own = events.filter((e) => e.kind !== 'upstream');
        assert.match(own[2].detail.reason, /^submitted to fal as /);
        assert.equal(own[4].detail.error, 'upstream_canceled');
        assert.ok(events.every((e, i) => i === 0 || Date.parse(e.at) >= Date.parse(events[i - 1].at)), 'in time order');
      } finally {
        await receiver.close();
      }
    });

    test('a cancel that comes after the end: 409 problem+json, and the task stays succeeded', async () => {
      const id = await create({ model: 'veo3.1-fast', prompt: 'done before the cancel', seconds: 4 });
      await until(id, (t) => t.state === 'succeeded', 60_000);
      const res = await native('POST', `/tasks/${id}/cancel`);
      assert.equal(res.status, 409);
      assert.match(res.type ?? '', /^application\/problem\+json/);
      assert.equal(res.body.code, 'conflict');
      assert.match(res.body.detail, /had already succeeded; it was not canceled/);
      assert.equal(res.body.task.state, 'succeeded');
      assert.ok(res.body.task.outputs.video);
      assert.equal((await native('GET', `/tasks/${id}`)).body.state, 'succeeded');
      const missing = await native('POST', '/tasks/task_00000000000000000000000000000000/cancel');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'not_found');
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
