import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { binaries, makePng } from '../../test/media.js';
import { SIM_KEY, simDeps, simProvider, startTestSim } from '../../test/sim.js';
import { tmpDir } from '../../test/tmp.js';
import { makeTask } from '../../test/fixtures.js';
import { run } from '../media/ffmpeg.js';
import { probe } from '../media/probe.js';
import { buildSim } from '../sim/server.js';
import type { ProviderType } from './config.js';
import { GeminiProvider } from './google/gemini.js';
import { VertexProvider } from './google/vertex.js';
import { ComfyUIProvider, fill } from './comfyui/index.js';
import { FalProvider } from './fal/index.js';
import { KieProvider } from './kie/index.js';
import { ReplicateProvider } from './replicate/index.js';
import { OpenAIVideosProvider } from './openai/index.js';
import { KkiaiProvider } from './kkiai/index.js';
import { PermanentError, type PollOutcome, type Provider, RateLimitedError, SafetyRejectedError, TransientError } from './port.js';

// Every adapter against the simulator: the happy path, each failure class, the status mapping.
/** A throwaway service account whose token exchange goes to the simulator. */
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const serviceAccount = (url: string, email: string) => JSON.stringify({ type: 'service_account', client_email: email, private_key: pem, token_uri: `${url}/token` });
const vertexOptions = (over: Record<string, unknown> = {}) => ({ options: { project: 'demo-project', location: 'us-central1', ...over } });

/** A text-to-video workflow in ComfyUI's API format, with Reelay's placeholders. */
const WORKFLOW = {
  '3': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}', clip: ['4', 1] } },
  '5': { class_type: 'EmptyHunyuanLatentVideo', inputs: { width: '{{width}}', height: '{{height}}', length: '{{frames}}', batch_size: 1 } },
  '6': { class_type: 'KSampler', inputs: { seed: '{{seed}}', steps: 20, positive: ['3', 0], latent_image: ['5', 0] } },
  '9': { class_type: 'VHS_VideoCombine', inputs: { frame_rate: 24, filename_prefix: 'reelay', images: ['6', 0] } },
};
const IMAGE_WORKFLOW = { ...WORKFLOW, '10': { class_type: 'LoadImage', inputs: { image: '{{image}}' } } };

const ADAPTERS: { type: ProviderType; model: string; make: (url: string, over?: Record<string, unknown>, key?: string) => Provider }[] = [
  { type: 'openai', model: 'sora-2', make: (url, over, key) => new OpenAIVideosProvider(simProvider('openai', url, over, key), simDeps) },
  { type: 'replicate', model: 'google/veo-3.1-fast', make: (url, over, key) => new ReplicateProvider(simProvider('replicate', url, over, key), simDeps) },
  { type: 'fal', model: 'fal-ai/veo3.1/fast', make: (url, over, key) => new FalProvider(simProvider('fal', `${url}/fal`, over, key), simDeps) },
  { type: 'comfyui', model: 'workflow', make: (url, over, key) => new ComfyUIProvider(simProvider('comfyui', url, { options: { workflow: WORKFLOW, imageWorkflow: IMAGE_WORKFLOW }, ...over }, key), simDeps) },
  { type: 'gemini', model: 'veo-3.1-fast-generate-preview', make: (url, over, key) => new GeminiProvider(simProvider('gemini', url, over, key), simDeps) },
  { type: 'vertex', model: 'veo-3.1-fast-generate-001', make: (url, over, key) => new VertexProvider(simProvider('vertex', url, { ...vertexOptions(), ...over }, serviceAccount(url, key ?? SIM_KEY)), simDeps) },
  { type: 'kkiai', model: 'veo3.1-fast', make: (url, over, key) => new KkiaiProvider(simProvider('kkiai', url, over, key), simDeps) },
  { type: 'kie', model: 'veo3_fast', make: (url, over, key) => new KieProvider(simProvider('kie', url, over, key), simDeps) },
];

for (const adapter of ADAPTERS) {
  describe(`${adapter.type} adapter against the simulator`, async () => {
    const sim = await startTestSim({ durationMs: 300 });
    const provider = adapter.make(sim.url);
    const dir = tmpDir();
    const submit = (prompt: string, p = provider) =>
      p.submit({ submissionId: 'x#1', task: makeTask({}, { prompt }), model: adapter.model, prompt, inputs: [] });
    const rejects = async (prompt: string, type: new (...a: never[]) => Error, message?: RegExp) => {
      const err = await submit(prompt).then(() => undefined, (e: Error) => e);
      assert.ok(err instanceof type, `${prompt}: expected ${type.name}, got ${err?.name}: ${err?.message}`);
      if (message) assert.match(err.message, message);
      return err;
    };
    const settle = async (id: string): Promise<PollOutcome> => {
      for (let i = 0; i < 100; i++) {
        const o = await provider.poll(id);
        if (o.status !== 'running') return o;
        await new Promise((r) => setTimeout(r, 50));
      }
      return provider.poll(id);
    };

    test('happy path: accepted, running, succeeded; the video downloads and probes as H.264', async () => {
      const { upstreamId } = await submit('a lighthouse at dusk');
      assert.ok(upstreamId);
      assert.equal((await provider.poll(upstreamId)).status, 'running');
      const done = await settle(upstreamId);
      assert.equal(done.status, 'succeeded');
      const file = join(dir, `${adapter.type}.mp4`);
      await provider.fetchResult(upstreamId, file, done.status === 'succeeded' ? done : undefined);
      const p = await probe(binaries.ffprobe, file);
      assert.equal(p.video?.codec, 'h264');
      assert.equal(p.video?.width, 1280);
    });

    test('refusals at create: 5xx, timeout, malformed JSON and reCAPTCHA are transient; 429 is rate limited', async () => {
      await rejects('[sim:5xx] p', TransientError, /500|Server Error|Internal Error/);
      await rejects('[sim:timeout] p', TransientError, /timed out/);
      await rejects('[sim:malformed] p', TransientError, /not (kie )?JSON/);
      const captcha = await rejects('[sim:recaptcha] p', TransientError, /reCAPTCHA/);
      assert.ok(!(captcha instanceof SafetyRejectedError));
      const limited = (await rejects('[sim:429] p', RateLimitedError)) as RateLimitedError;
      assert.equal(limited.retryAfterMs, 2000);
    });

    test('a scripted fault can hit only the first tries: [sim:5xx*1] fails once, then is accepted', async () => {
      await rejects('[sim:5xx*1] once', TransientError);
      assert.ok((await submit('[sim:5xx*1] once')).upstreamId);
    });

    test('a bad key is transient (our account, not the request): another route may work', async () => {
      const wrong = adapter.make(sim.url, {}, 'sk-wrong');
      const err = await submit('p', wrong).then(() => undefined, (e: Error) => e);
      assert.ok(err instanceof TransientError, String(err));
      assert.ok(!err.message.includes('sk-wrong') && !err.message.includes(SIM_KEY), 'no key in the message');
    });

    test('after acceptance: safety rejection, generation failure, lost task, stall', async () => {
      const safety = await settle((await submit('[sim:safety] p')).upstreamId);
      assert.equal(safety.status, 'failed');
      assert.ok(safety.status === 'failed' && safety.error instanceof SafetyRejectedError, safety.status === 'failed' ? safety.error.message : '');
      const failed = await settle((await submit('[sim:fail] p')).upstreamId);
      assert.ok(failed.status === 'failed' && failed.error instanceof TransientError && !(failed.error instanceof SafetyRejectedError));
      const lost = await provider.poll((await submit('[sim:lost] p')).upstreamId);
      assert.ok(lost.status === 'failed' && /lost/.test(lost.error.message));
      const stalled = (await submit('[sim:stall] p')).upstreamId;
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await provider.poll(stalled)).status, 'running');
    });

    test('cancel reaches the upstream where it has one', { skip: !provider.cancel && 'no cancel in this API' }, async () => {
      const { upstreamId } = await submit('[sim:stall] to be cancelled');
      await provider.cancel!(upstreamId);
      const after = await provider.poll(upstreamId);
      assert.equal(after.status, 'failed');
    });

    test('a failing status request throws (the job is fine and is polled again)', async () => {
      const { upstreamId } = await submit('[sim:poll-5xx*1] p');
      await assert.rejects(provider.poll(upstreamId), TransientError);
      assert.equal((await settle(upstreamId)).status, 'succeeded');
    });
  });
}

describe('google: an extension sends the source video up (Gemini and Vertex)', async () => {
  const sim = await startTestSim({ durationMs: 100 });
  const dir = tmpDir();
  const source = join(dir, 'source.mp4');
  await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=320x180:r=24:d=2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', source]);

  for (const adapter of ADAPTERS.filter((a) => a.type === 'gemini' || a.type === 'vertex')) {
    test(`${adapter.type}: the result is the 2 s source followed by the 1 s new part`, async () => {
      const p = adapter.make(sim.url);
      assert.equal(p.extends, true);
      const task = makeTask({}, { prompt: 'and then', video: 'task:src' });
      const { upstreamId } = await p.submit({ submissionId: 'x#1', task, model: adapter.model, prompt: 'and then', inputs: [], source: { path: source, contentType: 'video/mp4', url: 'task:src' } });
      let done: PollOutcome = { status: 'running' };
      for (let i = 0; i < 200 && done.status === 'running'; i++, await new Promise((r) => setTimeout(r, 50))) done = await p.poll(upstreamId);
      assert.equal(done.status, 'succeeded', JSON.stringify(done));
      const file = join(dir, `${adapter.type}-extended.mp4`);
      await p.fetchResult(upstreamId, file, done.status === 'succeeded' ? done : undefined);
      const got = await probe(binaries.ffprobe, file);
      assert.equal(got.video?.width, 1280);
      assert.ok(Math.abs((got.video?.durationMs ?? 0) - 3000) < 200, `duration ${got.video?.durationMs}`);
    });
  }

  test('the simulator refuses a malformed extension input with Google\'s error; the other providers do not extend', async () => {
    const predict = (video: unknown) =>
      fetch(`${sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning`, { method: 'POST', headers: { 'x-goog-api-key': SIM_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ instances: [{ prompt: 'p', video }] }) });
    for (const [video, msg] of [[{ bytesBase64Encoded: 'AAAA', mimeType: 'video/mp4' }, /Unknown name "bytesBase64Encoded"/], [{ encodedVideo: 'not base64!' }, /Base64 decoding failed/], [{ encodedVideo: 'AAAAAAAA' }, /not an MP4/], [{ uri: `${sim.url}/v1beta/files/0000:download` }, /no finished video/]] as const) {
      const res = await predict(video);
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { code: number; status: string; message: string } };
      assert.equal(body.error.status, 'INVALID_ARGUMENT');
      assert.match(body.error.message, msg);
    }
    for (const adapter of ADAPTERS.filter((a) => a.type !== 'gemini' && a.type !== 'vertex' && a.type !== 'openai' && a.type !== 'kie')) assert.equal(adapter.make(sim.url).extends, undefined, adapter.type);
  });
});

describe('openai: an extension sends the source video up as a file (POST /v1/videos/extensions)', async () => {
  const sim = await startTestSim({ durationMs: 100 });
  const dir = tmpDir();
  const source = join(dir, 'source.mp4');
  await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=320x180:r=24:d=2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', source]);
  const provider = new OpenAIVideosProvider(simProvider('openai', sim.url), simDeps);
  const extend = (prompt: string, path = source, durationSeconds = 8) =>
    provider.submit({ submissionId: 'x#1', task: makeTask({}, { prompt, video: 'task:src', durationSeconds }), model: 'sora-2', prompt, inputs: [], source: { path, contentType: 'video/mp4', url: 'task:src' } });

  test('the request carries the source MP4; the result is the 2 s source followed by the 1 s new part, as H.264', async () => {
    assert.equal(provider.extends, true);
    const { upstreamId } = await extend('and then');
    assert.match(upstreamId, /^video_[0-9a-f]{32}$/);
    // What the upstream received: the fields as strings and the source as a file part of its size.
    assert.deepEqual(sim.jobs.get(upstreamId)?.request, { prompt: 'and then', seconds: '8', model: 'sora-2', video: { file: 'source.mp4', type: 'video/mp4', size: statSync(source).size } });
    let done: PollOutcome = { status: 'running' };
    for (let i = 0; i < 200 && done.status === 'running'; i++, await new Promise((r) => setTimeout(r, 50))) done = await provider.poll(upstreamId);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    // The video object reports the stitched total: the 2 s source and the 8 s asked for.
    const video = (await (await fetch(`${sim.url}/v1/videos/${upstreamId}`, { headers: { authorization: `Bearer ${SIM_KEY}` } })).json()) as { seconds: string; status: string };
    assert.deepEqual([video.status, video.seconds], ['completed', '10']);
    const file = join(dir, 'openai-extended.mp4');
    await provider.fetchResult(upstreamId, file, done.status === 'succeeded' ? done : undefined);
    const got = await probe(binaries.ffprobe, file);
    assert.equal(got.video?.codec, 'h264');
    assert.equal(got.video?.width, 1280);
    assert.ok(Math.abs((got.video?.durationMs ?? 0) - 3000) < 200, `duration ${got.video?.durationMs}`);
  });

  test('the new part\'s length is sent as the nearest extension length OpenAI takes (4 to 20 in steps of 4)', async () => {
    for (const [asked, sent] of [[6, '8'], [4, '4'], [20, '20'], [30, '20']] as const) {
      const { upstreamId } = await extend(`asked ${asked}`, source, asked);
      assert.equal((sim.jobs.get(upstreamId)?.request as { seconds?: string }).seconds, sent, `asked ${asked}`);
    }
  });

  test('errors map like a create\'s: a refused source is permanent, 5xx transient, 429 rate limited', async () => {
    const png = await makePng(dir, 'not-a-video.png', 64, 36);
    const refused = await extend('p', png).then(() => undefined, (e: Error) => e);
    assert.ok(refused instanceof PermanentError && /extensions answered 400.*not an MP4/.test(refused.message), String(refused));
    await assert.rejects(extend('[sim:5xx] p'), TransientError);
    const limited = await extend('[sim:429] p').then(() => undefined, (e: Error) => e);
    assert.ok(limited instanceof RateLimitedError && limited.retryAfterMs === 2000, String(limited));
  });

  test('the simulator refuses a malformed extension with OpenAI\'s error envelope', async () => {
    const mp4 = readFileSync(source);
    const post = (parts: Record<string, string | Blob>) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(parts)) form.append(k, v);
      return fetch(`${sim.url}/v1/videos/extensions`, { method: 'POST', headers: { authorization: `Bearer ${SIM_KEY}` }, body: form });
    };
    const junk = join(dir, 'junk.mp4');
    writeFileSync(junk, Buffer.alloc(64));
    for (const [parts, param] of [
      [{ prompt: 'p', seconds: '8' }, 'video'],
      [{ prompt: 'p', seconds: '8', video: new Blob([readFileSync(junk)], { type: 'video/mp4' }) }, 'video'],
      [{ seconds: '8', video: new Blob([mp4], { type: 'video/mp4' }) }, 'prompt'],
      [{ prompt: 'p', seconds: '6', video: new Blob([mp4], { type: 'video/mp4' }) }, 'seconds'],
    ] as const) {
      const res = await post(parts);
      assert.equal(res.status, 400, param);
      const body = (await res.json()) as { error: { type: string; param: string | null; message: string } };
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(body.error.param, param);
    }
  });
});

describe('kie: an extension continues a video kie made (POST /api/v1/veo/extend with its taskId)', async () => {
  // A simulator of its own, to log the paths the provider called.
  const { app, jobs } = await buildSim({ durationMs: 100, faults: {}, retryAfterSeconds: 2, hangMs: 3000, videoSeconds: 1, dir: join(tmpdir(), 'reelay-test-sim-samples'), binaries, keys: [SIM_KEY] });
  const requests: string[] = [];
  app.addHook('onRequest', async (req) => void requests.push(`${req.method} ${req.url.split('?')[0]}`));
  await app.listen({ port: 0, host: '127.0.0.1' });
  after(() => app.close());
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const dir = tmpDir();
  const provider = new KieProvider(simProvider('kie', url), simDeps);
  // kie never sees the stored copy: it continues its own job.
  const source = { path: join(dir, 'source.mp4'), contentType: 'video/mp4', url: 'task:src' };
  const generate = (prompt: string) => provider.submit({ submissionId: 'x#1', task: makeTask({}, { prompt }), model: 'veo3_fast', prompt, inputs: [] });
  const extend = (prompt: string, videoJob: { provider: string; upstreamId: string } | undefined, model = 'veo3_fast', seed = 12345, p: Provider = provider) =>
    p.submit({ submissionId: 'x#1', task: makeTask({}, { prompt, video: 'task:src', seed, ...(videoJob ? { videoJob } : {}) }), model, prompt, inputs: [], source });
  const settle = async (id: string): Promise<PollOutcome> => {
    let done: PollOutcome = { status: 'running' };
    for (let i = 0; i < 400 && done.status === 'running'; i++, await new Promise((r) => setTimeout(r, 50))) done = await provider.poll(id);
    return done;
  };
  const fetched = async (id: string, done: PollOutcome, name: string) => {
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    const file = join(dir, name);
    await provider.fetchResult(id, file, done.status === 'succeeded' ? done : undefined);
    return probe(binaries.ffprobe, file);
  };
  const first = (await generate('a lighthouse at dusk')).upstreamId;
  const firstVideo = await fetched(first, await settle(first), 'first.mp4');
  const mine = { provider: 'sim', upstreamId: first };

  test('the extend names the first job\'s taskId; the result is its video followed by the new part, as H.264', async () => {
    assert.equal(provider.extends, 'own');
    requests.length = 0;
    const { upstreamId } = await extend('and then the storm', mine, 'veo3');
    assert.notEqual(upstreamId, first);
    assert.deepEqual(requests, ['POST /api/v1/veo/extend']);
    assert.deepEqual(jobs.get(upstreamId)?.request, { taskId: first, prompt: 'and then the storm', model: 'quality', seeds: 12345 });
    const done = await settle(upstreamId);
    assert.ok(requests.slice(1).every((r) => r === 'GET /api/v1/veo/record-info'), requests.join(', '));
    // record-info names the joined video in fullResultUrls (and resultUrls); the provider takes it.
    const info = (await (await fetch(`${url}/api/v1/veo/record-info?taskId=${upstreamId}`, { headers: { authorization: `Bearer ${SIM_KEY}` } })).json()) as { data: { response: { fullResultUrls: string[]; resultUrls: string[] } } };
    assert.equal(done.status === 'succeeded' && done.resultUrl, info.data.response.fullResultUrls[0]);
    assert.deepEqual(info.data.response.resultUrls, info.data.response.fullResultUrls);
    const got = await fetched(upstreamId, done, 'extended.mp4');
    assert.equal(got.video?.codec, 'h264');
    assert.equal(got.video?.width, 1280);
    const want = (firstVideo.video?.durationMs ?? 0) + 1000;
    assert.ok(Math.abs((got.video?.durationMs ?? 0) - want) < 200, `duration ${got.video?.durationMs}, want about ${want}`);
  });

  test('the route\'s model maps to extend\'s words; a seed outside 10000–99999 is not sent; callBackUrl as generate sends it', async () => {
    for (const [model, sent] of [['veo3_lite', 'lite'], ['veo3_fast', 'fast'], ['other-model', 'fast']] as const) {
      const { upstreamId } = await extend(`model ${model}`, mine, model, 7);
      assert.deepEqual(jobs.get(upstreamId)?.request, { taskId: first, prompt: `model ${model}`, model: sent }, model);
    }
    const calling = new KieProvider(simProvider('kie', url, { options: { callbacks: true } }), { ...simDeps, publicUrl: 'http://127.0.0.1:9' });
    const { upstreamId } = await extend('calls back', mine, 'veo3_fast', 12345, calling);
    assert.match(String((jobs.get(upstreamId)?.request as { callBackUrl?: unknown }).callBackUrl), /^http:\/\/127\.0\.0\.1:9\/upstream-callbacks\/sim\//);
  });

  test('a videoJob naming another provider (or none) is permanent and sends nothing', async () => {
    requests.length = 0;
    for (const job of [{ provider: 'kie-other', upstreamId: first }, undefined]) {
      const err = await extend('p', job).then(() => undefined, (e: Error) => e);
      assert.ok(err instanceof PermanentError && /extends only the videos it made/.test(err.message), String(err));
    }
    assert.deepEqual(requests, []);
  });

  test('kie\'s refusals map as generate\'s: unknown taskId (404) and an unfinished source (422) are permanent, 5xx transient, 429 rate limited', async () => {
    const unknown = await extend('p', { provider: 'sim', upstreamId: 'veo_task_nope' }).then(() => undefined, (e: Error) => e);
    assert.ok(unknown instanceof PermanentError && /extend answered code 404/.test(unknown.message), String(unknown));
    const running = (await generate('[sim:stall] still going')).upstreamId;
    const early = await extend('p', { provider: 'sim', upstreamId: running }).then(() => undefined, (e: Error) => e);
    assert.ok(early instanceof PermanentError && /code 422.*not success/.test(early.message), String(early));
    await assert.rejects(extend('[sim:5xx] p', mine), TransientError);
    const limited = await extend('[sim:429] p', mine).then(() => undefined, (e: Error) => e);
    assert.ok(limited instanceof RateLimitedError && limited.retryAfterMs === 2000, String(limited));
    const failed = await settle((await extend('[sim:fail] p', mine)).upstreamId);
    assert.ok(failed.status === 'failed' && failed.error instanceof TransientError, JSON.stringify(failed));
  });

  test('the simulator refuses a malformed extend in kie\'s envelope', async () => {
    const post = async (body: unknown) => (await (await fetch(`${url}/api/v1/veo/extend`, { method: 'POST', headers: { authorization: `Bearer ${SIM_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { code: number; msg: string };
    assert.equal((await post({ taskId: first })).code, 422);
    assert.equal((await post({ prompt: 'p' })).code, 422);
    assert.equal((await post({ taskId: first, prompt: 'p', model: 'veo3' })).code, 422);
    assert.equal((await post({ taskId: 'veo_task_nope', prompt: 'p' })).code, 404);
  });
});

describe('vertex specifics', async () => {
  const sim = await startTestSim({ durationMs: 100 });
  const dir = tmpDir();
  const submitTo = (p: Provider) => p.submit({ submissionId: 'x#1', task: makeTask({ id: 'task-1' }, { prompt: 'p' }), model: 'veo-3.1-generate-001', prompt: 'p', inputs: [] });

  test('results in a bucket (options.storageUri) are read through the storage API with the token', async () => {
    const p = new VertexProvider(simProvider('vertex', sim.url, vertexOptions({ storageUri: 'gs://my-bucket/reelay', storageBaseUrl: sim.url }), serviceAccount(sim.url, SIM_KEY)), simDeps);
    const { upstreamId } = await submitTo(p);
    let done: PollOutcome = { status: 'running' };
    for (let i = 0; i < 50 && done.status === 'running'; i++, await new Promise((r) => setTimeout(r, 50))) done = await p.poll(upstreamId);
    assert.equal(done.status, 'succeeded');
    assert.match(done.status === 'succeeded' ? done.resultUrl ?? '' : '', /\/storage\/v1\/b\/my-bucket\/o\/reelay%2Ftask-1%2F[0-9a-f]+\.mp4\?alt=media$/);
    const file = join(dir, 'gcs.mp4');
    await p.fetchResult(upstreamId, file, done.status === 'succeeded' ? done : undefined);
    assert.equal((await probe(binaries.ffprobe, file)).video?.codec, 'h264');
  });

  test('a bad configuration is a clear error at start', () => {
    assert.throws(() => new VertexProvider(simProvider('vertex', sim.url, {}, serviceAccount(sim.url, SIM_KEY)), simDeps), /needs options.project/);
    assert.throws(() => new VertexProvider(simProvider('vertex', sim.url, vertexOptions(), '{"client_email": 1}'), simDeps), /needs client_email and private_key/);
  });
});

describe('openai specifics', async () => {
  const sim = await startTestSim({ durationMs: 100 });
  const dir = tmpDir();

  test('with an input image the create is multipart (input_reference as a file); cancel deletes the video', async () => {
    const p = new OpenAIVideosProvider(simProvider('openai', sim.url), simDeps);
    const png = await makePng(dir, 'ref.png', 64, 36);
    const { upstreamId } = await p.submit({ submissionId: 'x#1', task: makeTask({}, { prompt: 'p', images: ['https://img.example/ref.png'], mode: 'frames' }), model: 'sora-2', prompt: 'p', inputs: [{ path: png, contentType: 'image/png', url: 'https://img.example/ref.png' }] });
    assert.match(upstreamId, /^video_[0-9a-f]{32}$/);
    await p.cancel(upstreamId);
    const after = await p.poll(upstreamId);
    assert.equal(after.status, 'failed');
  });
});

describe('comfyui specifics', async () => {
  const sim = await startTestSim({ durationMs: 100 });
  const dir = tmpDir();

  test('placeholders: whole values keep their type, parts are replaced in text', () => {
    assert.deepEqual(fill({ a: '{{seed}}', b: 'seed {{seed}} of {{prompt}}', c: ['{{width}}'], d: '{{unknown}}' }, { seed: 7, prompt: 'p', width: 1280 }), { a: 7, b: 'seed 7 of p', c: [1280], d: '{{unknown}}' });
  });

  test('an input image is uploaded and its name fills {{image}}; a rejected workflow is transient', async () => {
    const p = new ComfyUIProvider(simProvider('comfyui', sim.url, { options: { workflow: WORKFLOW, imageWorkflow: IMAGE_WORKFLOW } }), simDeps);
    const png = await makePng(dir, 'in.png', 64, 36);
    const task = makeTask({}, { prompt: 'p', images: ['https://img.example/in.png'], mode: 'frames' });
    const { upstreamId } = await p.submit({ submissionId: 'x#1', task, model: 'workflow', prompt: 'p', inputs: [{ path: png, contentType: 'image/png', url: 'https://img.example/in.png' }] });
    assert.ok(upstreamId);
    // Without the upload, LoadImage names a file the server does not have.
    const broken = new ComfyUIProvider(simProvider('comfyui', sim.url, { options: { workflow: IMAGE_WORKFLOW } }), simDeps);
    await assert.rejects(broken.submit({ submissionId: 'x#1', task: makeTask(), model: 'workflow', prompt: 'p', inputs: [] }), (e: Error) => e instanceof TransientError && /rejected.*value_not_in_list/.test(e.message));
  });

  test('a comfyui provider without a workflow is a configuration error', () => {
    assert.throws(() => new ComfyUIProvider(simProvider('comfyui', sim.url), simDeps), /needs options.workflowFile/);
  });
});

test('a cancel the upstream refuses (500) rejects, so the engine tries again; a 404 (the job is gone) is done', async () => {
  const { createServer } = await import('node:http');
  let status = 500;
  const server = createServer((_req, res) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(status === 200 ? '{"queue_running":[],"queue_pending":[]}' : '{"error":"down"}');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  for (const adapter of ADAPTERS) {
    const p = adapter.make(adapter.type === 'fal' ? `${url}/fal` : url);
    if (!p.cancel || adapter.type === 'gemini' || adapter.type === 'vertex') continue;
    status = 500;
    await assert.rejects(p.cancel('fal-ai/veo3.1/fast|0d6c1e7f-9e9a-4a8f-8a3b-3f2a1b0c9d8e'), TransientError, adapter.type);
    status = 404;
    await p.cancel('fal-ai/veo3.1/fast|0d6c1e7f-9e9a-4a8f-8a3b-3f2a1b0c9d8e');
  }
});
