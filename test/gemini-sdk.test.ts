import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ApiError, type GenerateVideosOperation, type GenerateVideosParameters, GoogleGenAI, VideoGenerationReferenceType } from '@google/genai';
import { loadConfig } from '../src/config.js';
import { run } from '../src/media/ffmpeg.js';
import { probe } from '../src/media/probe.js';
import { binaries, videoShape } from './media.js';
import { Webhook } from 'standardwebhooks';
import { peer } from './peer.js';
import { type ServerProcess, freePort, sleep, startServer, track, waitFor } from './server.js';
import { tmpDir } from './tmp.js';

const KEY = 'sk-gemini-sdk-one';
const OTHER = 'sk-gemini-sdk-two';
const MODEL = 'veo-3.1-fast-generate-preview';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

type Rgb = [number, number, number];
const RED: Rgb = [200, 40, 40];
const BLUE: Rgb = [40, 60, 210];
const GREEN: Rgb = [40, 190, 60];

/**
 * The official `@google/genai` 2.32.0 client against a real Reelay process (engine and local
 * renderer): create with `models.generateVideos`, poll with `operations.getVideosOperation` until
 * done, fetch `video.uri` with the key and check the MP4. One case serves HTTPS and lets
 * `files.download` (which accepts only https URIs) write the file.
 */
describe('@google/genai against Reelay (real process, local renderer)', { concurrency: true }, () => {
  let srv: ServerProcess;
  let hooks: Awaited<ReturnType<typeof peer>>;
  let work: string;
  let ai: GoogleGenAI;
  const png: Record<string, string> = {};

  before(async () => {
    work = tmpDir();
    for (const [name, [r, g, b]] of Object.entries({ red: RED, blue: BLUE, green: GREEN })) {
      const file = join(work, `${name}.png`);
      const hex = [r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('');
      await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `color=c=0x${hex}:s=640x360`, '-frames:v', '1', file]);
      png[name] = readFileSync(file).toString('base64');
    }
    hooks = await peer({ '/veo': (_q, res) => res.writeHead(200).end('ok') });
    // The webhook receiver listens on loopback, which the URL guard lets through only when allowed.
    srv = await startServer({ REELAY_DATA_DIR: work, REELAY_API_KEYS: `${KEY},${OTHER}`, REELAY_RENDER_CONCURRENCY: '2', REELAY_ERROR_SLEEP_MS: '200', REELAY_URL_ALLOWLIST: '127.0.0.1' });
    ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: srv.url } });
  });
  after(async () => {
    await srv?.stop();
    await hooks?.close();
  });

  const image = (colour: string) => ({ imageBytes: png[colour]!, mimeType: 'image/png' });

  async function untilDone(op: GenerateVideosOperation, client = ai): Promise<GenerateVideosOperation> {
    const deadline = Date.now() + 120_000;
    while (!op.done) {
      if (Date.now() > deadline) throw new Error(`operation ${op.name} not done in time`);
      await sleep(150);
      op = await client.operations.getVideosOperation({ operation: op });
    }
    return op;
  }

  async function generate(params: GenerateVideosParameters): Promise<GenerateVideosOperation> {
    const op = await ai.models.generateVideos(params);
    assert.match(op.name ?? '', new RegExp(`^models/${params.model}/operations/[0-9a-f]{32}$`));
    return untilDone(op);
  }

  /** The MP4 behind a finished operation's first video, fetched with the key as Google's REST examples do. */
  async function video(op: GenerateVideosOperation, name: string) {
    assert.equal(op.error, undefined, JSON.stringify(op.error));
    const v = op.response?.generatedVideos?.[0]?.video;
    assert.ok(v?.uri, JSON.stringify(op));
    assert.equal(v.mimeType, 'video/mp4');
    assert.ok(v.uri.startsWith(`${srv.url}/v1beta/files/`), v.uri);
    const res = await fetch(v.uri, { headers: { 'x-goog-api-key': KEY } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    const file = join(work, name);
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    return { file, shape: videoShape(await probe(binaries.ffprobe, file)), video: v };
  }

  /** The mean colour of a video's first (or last) frame. */
  async function colour(file: string, at: 'first' | 'last'): Promise<Rgb> {
    const out = `${file}.${at}.rgb`;
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', ...(at === 'last' ? ['-sseof', '-0.2'] : []), '-i', file, '-frames:v', '1', '-vf', 'scale=1:1:flags=area', '-f', 'rawvideo', '-pix_fmt', 'rgb24', out]);
    const b = readFileSync(out);
    return [b[0]!, b[1]!, b[2]!];
  }
  const near = (got: Rgb, want: Rgb, what: string) => assert.ok(got.every((c, i) => Math.abs(c - want[i]!) < 45), `${what}: mean colour ${got}, want about ${want}`);

  test('text to video, 4 s 16:9 → 1280×720 H.264; then an extension of it (source.video) is source + 8 s', async () => {
    const op = await generate({ model: MODEL, source: { prompt: 'A lighthouse on a cliff at dusk' }, config: { numberOfVideos: 1, durationSeconds: 4, aspectRatio: '16:9', resolution: '720p' } });
    const first = await video(op, 'text.mp4');
    assert.deepEqual(first.shape, { codec: 'h264', size: '1280x720', seconds: 4 });
    // ?key= works for a plain download too.
    assert.equal((await fetch(`${first.video.uri}&key=${KEY}`)).status, 200);

    const ext = await generate({ model: MODEL, source: { prompt: 'the camera rises above the clouds', video: first.video }, config: { durationSeconds: 8 } });
    const extended = await video(ext, 'extended.mp4');
    assert.deepEqual(extended.shape, { codec: 'h264', size: '1280x720', seconds: 12 });
  });

  test('config.webhookConfig: the done Operation is POSTed to its URI, signed with the key\'s secret (standardwebhooks verifies it)', async () => {
    const op = await generate({ model: MODEL, source: { prompt: 'a harbour, with a webhook' }, config: { durationSeconds: 4, webhookConfig: { uris: [`${hooks.url}/veo`], userMetadata: { job: 7 } } } });
    const hook = await waitFor(async () => hooks.received.find((r) => r.path === '/veo'), 20_000, 50);
    const body = JSON.parse(hook.body);
    assert.equal(body.name, op.name);
    assert.equal(body.done, true);
    assert.equal(body.response.generateVideoResponse.generatedSamples[0].video.uri, op.response?.generatedVideos?.[0]?.video?.uri);
    const printed = spawnSync(process.execPath, [CLI, 'keys', 'webhook-secret', KEY.slice(0, 10)], { env: { ...process.env, REELAY_DATA_DIR: work }, encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    assert.deepEqual(new Webhook(printed.stdout.trim()).verify(hook.body, hook.headers as Record<string, string>), body);
  });

  test('image as the first frame, 9:16 → 720×1280; the first frame is the image; another key sees nothing', async () => {
    const op = await generate({ model: MODEL, source: { prompt: 'a red wall, slowly', image: image('red') }, config: { durationSeconds: 4, aspectRatio: '9:16' } });
    const v = await video(op, 'image.mp4');
    assert.deepEqual(v.shape, { codec: 'h264', size: '720x1280', seconds: 4 });
    near(await colour(v.file, 'first'), RED, 'first frame');

    // Isolation: another key can neither poll the operation nor fetch its video.
    const other = new GoogleGenAI({ apiKey: OTHER, httpOptions: { baseUrl: srv.url } });
    await assert.rejects(other.operations.getVideosOperation({ operation: op }), (e: Error) => e instanceof ApiError && e.status === 404);
    assert.equal((await fetch(v.video.uri!, { headers: { 'x-goog-api-key': OTHER } })).status, 404);
  });

  test('image + lastFrame: the video opens on the first image and closes on the last', async () => {
    const op = await generate({ model: 'veo-3.1-generate-preview', source: { prompt: 'red turns blue', image: image('red') }, config: { durationSeconds: 4, lastFrame: image('blue') } });
    const v = await video(op, 'frames.mp4');
    assert.deepEqual(v.shape, { codec: 'h264', size: '1280x720', seconds: 4 });
    near(await colour(v.file, 'first'), RED, 'first frame');
    near(await colour(v.file, 'last'), BLUE, 'last frame');
  });

  test('three reference images (8 s, as Veo requires them) → 1280×720, opening on the first', async () => {
    const referenceImages = ['green', 'red', 'blue'].map((c) => ({ image: image(c), referenceType: VideoGenerationReferenceType.ASSET }));
    const op = await generate({ model: MODEL, source: { prompt: 'three colours' }, config: { referenceImages, durationSeconds: 8 } });
    const v = await video(op, 'refs.mp4');
    assert.deepEqual(v.shape, { codec: 'h264', size: '1280x720', seconds: 8 });
    near(await colour(v.file, 'first'), GREEN, 'first frame');
  });

  test('a blocked word: done, no video, raiMediaFilteredCount 1 with the reason', async () => {
    const op = await generate({ model: MODEL, source: { prompt: 'something nsfw please' }, config: { durationSeconds: 4 } });
    assert.equal(op.error, undefined);
    assert.equal(op.response?.generatedVideos, undefined);
    assert.equal(op.response?.raiMediaFilteredCount, 1);
    assert.ok(op.response?.raiMediaFilteredReasons?.[0], JSON.stringify(op.response));
  });

  test('a wrong key is the SDK\'s ApiError 400 "API key not valid"; bad input is a 400 naming the field', async () => {
    const wrong = new GoogleGenAI({ apiKey: 'sk-not-a-key', httpOptions: { baseUrl: srv.url } });
    await assert.rejects(wrong.models.generateVideos({ model: MODEL, source: { prompt: 'p' } }), (e: Error) => e instanceof ApiError && e.status === 400 && /API key not valid/.test(e.message));
    await assert.rejects(ai.models.generateVideos({ model: MODEL, source: { prompt: 'p' }, config: { numberOfVideos: 2 } }), (e: Error) => e instanceof ApiError && e.status === 400 && /sampleCount must be 1/.test(e.message));
    await assert.rejects(ai.models.generateVideos({ model: 'gemini-2.5-flash', source: { prompt: 'p' } }), (e: Error) => e instanceof ApiError && e.status === 404 && /NOT_FOUND/.test(e.message));
  });


  test('HTTPS: REELAY_TLS_CERT/KEY, an https public URL, and files.download writes the MP4', { skip: !hasOpenssl && 'openssl is not installed: cannot make a test certificate' }, async (t) => {
    const work = tmpDir();
    const cert = join(work, 'cert.pem');
    const key = join(work, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);

    // The configuration: both files or neither, readable PEM, a matching key; https by default.
    const strayKey = join(work, 'stray.pem');
    writeFileSync(strayKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    assert.throws(() => loadConfig({ REELAY_TLS_CERT: cert }), /REELAY_TLS_CERT is set without REELAY_TLS_KEY/);
    assert.throws(() => loadConfig({ REELAY_TLS_KEY: key }), /REELAY_TLS_KEY is set without REELAY_TLS_CERT/);
    assert.throws(() => loadConfig({ REELAY_TLS_CERT: join(work, 'missing.pem'), REELAY_TLS_KEY: key }), /REELAY_TLS_CERT: cannot read .*missing\.pem: ENOENT/);
    assert.throws(() => loadConfig({ REELAY_TLS_CERT: key, REELAY_TLS_KEY: key }), /is not a PEM certificate/);
    assert.throws(() => loadConfig({ REELAY_TLS_CERT: cert, REELAY_TLS_KEY: cert }), /is not a PEM private key/);
    assert.throws(() => loadConfig({ REELAY_TLS_CERT: cert, REELAY_TLS_KEY: strayKey }), /is not the key of the certificate/);
    assert.equal(loadConfig({ REELAY_TLS_CERT: cert, REELAY_TLS_KEY: key, PORT: '8443' }).publicUrl, 'https://127.0.0.1:8443');
    const half = spawn(process.execPath, [CLI, 'serve'], { env: { ...process.env, REELAY_DATA_DIR: work, REELAY_TLS_CERT: cert }, stdio: ['ignore', 'ignore', 'pipe'] });
    let halfErr = '';
    half.stderr!.on('data', (d: Buffer) => (halfErr += d));
    assert.equal((await once(half, 'exit'))[0], 2, 'a config error stops the start with exit code 2');
    assert.match(halfErr, /REELAY_TLS_CERT is set without REELAY_TLS_KEY/);

    const port = await freePort();
    const base = `https://127.0.0.1:${port}`;
    const server = track(
      spawn(process.execPath, [CLI, 'serve'], {
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', REELAY_DATA_DIR: work, REELAY_API_KEYS: KEY, REELAY_TLS_CERT: cert, REELAY_TLS_KEY: key, REELAY_PUBLIC_URL: base },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let sdk: ChildProcess | undefined;
    // Whatever happens: the SDK child is killed, the server drains (killed if it hangs).
    t.after(async () => {
      await end(sdk, 'SIGKILL');
      await end(server, 'SIGTERM');
    });
    let out = '';
    server.stdout!.on('data', (d: Buffer) => (out += d));
    server.stderr!.on('data', (d: Buffer) => (out += d));
    const ca = readFileSync(cert);
    const healthy = () =>
      new Promise<boolean>((resolve) => {
        const req = request(`${base}/healthz`, { ca, timeout: 2000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
        req.end();
      });
    for (const deadline = Date.now() + 60_000; !(await healthy()); await sleep(100)) {
      if (server.exitCode !== null || Date.now() > deadline) assert.fail(`the HTTPS server did not start: ${out}`);
    }
    // Plain HTTP on the same port gets nowhere.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(5000) }));

    // The SDK runs in a child that trusts the test certificate (NODE_EXTRA_CA_CERTS is read at start).
    const downloadPath = join(work, 'downloaded.mp4');
    const script = `
      const { GoogleGenAI } = await import(process.env.GENAI);
      const ai = new GoogleGenAI({ apiKey: process.env.KEY, httpOptions: { baseUrl: process.env.BASE } });
      let op = await ai.models.generateVideos({ model: '${MODEL}', source: { prompt: 'a harbour at night' }, config: { durationSeconds: 4 } });
      for (const deadline = Date.now() + 90000; !op.done; ) {
        if (Date.now() > deadline) throw new Error('not done in time');
        await new Promise((r) => setTimeout(r, 150));
        op = await ai.operations.getVideosOperation({ operation: op });
      }
      const generated = op.response?.generatedVideos?.[0];
      if (!generated) throw new Error('no video: ' + JSON.stringify(op));
      await ai.files.download({ file: generated, downloadPath: process.env.OUT });
      process.stdout.write(JSON.stringify({ uri: generated.video.uri }));
    `;
    sdk = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, GENAI: import.meta.resolve('@google/genai'), KEY, BASE: base, OUT: downloadPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let sdkOut = '';
    let sdkErr = '';
    sdk.stdout!.on('data', (d: Buffer) => (sdkOut += d));
    sdk.stderr!.on('data', (d: Buffer) => (sdkErr += d));
    const exited = once(sdk, 'exit');
    const timer = setTimeout(() => sdk?.kill('SIGKILL'), 120_000);
    try {
      const [code] = await exited;
      assert.equal(code, 0, `the SDK child failed: ${sdkErr}`);
    } finally {
      clearTimeout(timer);
      await end(sdk, 'SIGKILL');
    }
    const { uri } = JSON.parse(sdkOut) as { uri: string };
    assert.match(uri, new RegExp(`^${base.replace(/[.]/g, '\\.')}/v1beta/files/[0-9a-f]{32}:download\\?alt=media$`));
    const mp4 = await probe(binaries.ffprobe, downloadPath);
    assert.deepEqual(videoShape(mp4), { codec: 'h264', size: '1280x720', seconds: 4 });
    assert.equal(readFileSync(downloadPath).subarray(4, 8).toString('latin1'), 'ftyp');
  });
});

/** Ends a child that is still running with `signal` (SIGKILL 10 s later if it has not exited). */
async function end(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
