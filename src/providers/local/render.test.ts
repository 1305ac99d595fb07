// Real renders of the local provider at the final size, and extends, checked with ffprobe.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { makeTask } from '../../../test/fixtures.js';
import { makePng } from '../../../test/media.js';
import { tmpDir } from '../../../test/tmp.js';
import type { TaskSpec } from '../../core/task.js';
import { locateBinaries, run } from '../../media/ffmpeg.js';
import { type ProbeResult, ffprobeFile } from '../../media/probe.js';
import type { SubmitInput } from '../port.js';
import { LocalProvider } from './index.js';

const binaries = locateBinaries();
const dir = tmpDir('reelay-render-');
const provider = new LocalProvider({ dir: join(dir, 'renders'), binaries, concurrency: 2, renderDelayMs: 0, blockedWords: [], log: pino({ level: 'silent' }) });
after(() => provider.close());

let n = 0;
/** Renders one task through the public methods and probes the stored copy with ffprobe. */
async function render(spec: Partial<TaskSpec>, extra: { inputs?: SubmitInput[]; source?: SubmitInput } = {}): Promise<{ file: string; probe: ProbeResult; upstreamId: string }> {
  const i = ++n;
  const task = makeTask({ id: `render-test-${i}` }, spec);
  const { upstreamId } = await provider.submit({
    submissionId: `${task.id}#1`, task, model: 'veo3', prompt: task.spec.prompt, inputs: extra.inputs ?? [], ...(extra.source ? { source: extra.source } : {}),
  });
  // Submitting again is the same job.
  assert.equal((await provider.submit({ submissionId: `${task.id}#1`, task, model: 'veo3', prompt: task.spec.prompt, inputs: extra.inputs ?? [] })).upstreamId, upstreamId);
  for (;;) {
    const p = await provider.poll(upstreamId);
    if (p.status === 'succeeded') break;
    if (p.status === 'failed') throw p.error;
    await new Promise((r) => setTimeout(r, 100));
  }
  const file = join(dir, `out-${i}.mp4`);
  await provider.fetchResult(upstreamId, file);
  return { file, probe: await ffprobeFile(binaries.ffprobe, file), upstreamId };
}

const shape = (p: ProbeResult) => ({ codec: p.video?.codec, size: `${p.video?.width}x${p.video?.height}`, audio: p.audio?.codec });
const near = (ms: number | undefined, seconds: number, slack = 0.15) => Math.abs((ms ?? 0) / 1000 - seconds) <= slack;

const W = 64;
const H = 36;
/**
 * Every frame of a video as a tiny grayscale image (W x H bytes each), in stream order. Compared as
 * a screen shows them, through RGB: the saturated backdrops hold YUV values outside RGB, which the
 * last-frame PNG (and any display) clips, so raw Y planes would differ where pictures do not.
 */
async function grayFrames(file: string, tailSeconds?: number): Promise<Buffer[]> {
  const out = join(dir, `frames-${++n}.gray`);
  await run(binaries.ffmpeg, [
    '-hide_banner', '-loglevel', 'error', '-y', ...(tailSeconds ? ['-sseof', `-${tailSeconds}`] : []), '-i', file,
    '-map', '0:v:0', '-vf', `format=rgb24,scale=${W}:${H}:flags=area,format=gray`, '-vsync', '0', '-f', 'rawvideo', out,
  ]);
  const bytes = readFileSync(out);
  const frames: Buffer[] = [];
  for (let at = 0; at + W * H <= bytes.length; at += W * H) frames.push(bytes.subarray(at, at + W * H));
  return frames;
}
/** Mean absolute difference of two gray frames, 0–255. */
function mad(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

describe('the local renderer renders at the final size (real ffmpeg)', () => {
  test('1080p text scene with a watermark: 1920x1080 H.264 + AAC, 2 s', async () => {
    const { probe } = await render({ prompt: 'a lighthouse at dusk', resolution: '1080p', upsample: true, durationSeconds: 2, watermark: 'MyBrand' });
    assert.deepEqual(shape(probe), { codec: 'h264', size: '1920x1080', audio: 'aac' });
    assert.ok(near(probe.video?.durationMs, 2), `video lasts ${probe.video?.durationMs} ms`);
  });

  test('9:16 4k text scene: 2160x3840', async () => {
    const { probe } = await render({ prompt: 'a tall tower', aspectRatio: '9:16', resolution: '4k', upsample: true, durationSeconds: 1, seed: 7 });
    assert.deepEqual(shape(probe), { codec: 'h264', size: '2160x3840', audio: 'aac' });
    assert.ok(near(probe.video?.durationMs, 1), `video lasts ${probe.video?.durationMs} ms`);
  });

  test('an exact frame (1024x1792), one image', async () => {
    const png = await makePng(dir, 'in.png', 640, 360);
    const { probe } = await render(
      { prompt: 'pan over it', mode: 'frames', images: ['https://x/in.png'], aspectRatio: '9:16', resolution: '720p', upsample: true, frame: { width: 1024, height: 1792 }, durationSeconds: 2 },
      { inputs: [{ path: png, contentType: 'image/png', url: 'https://x/in.png' }] },
    );
    assert.deepEqual(shape(probe), { codec: 'h264', size: '1024x1792', audio: 'aac' });
    assert.ok(near(probe.video?.durationMs, 2), `video lasts ${probe.video?.durationMs} ms`);
  });

  test('a frame size H.264 cannot take is refused at submit', async () => {
    const task = makeTask({ id: 'render-test-odd' }, { upsample: true, frame: { width: 1023, height: 1792 } });
    await assert.rejects(provider.submit({ submissionId: `${task.id}#1`, task, model: 'veo3', prompt: 'p', inputs: [] }), { name: 'PermanentError' });
  });
});

describe('extend: the source, then a new part from its last frame, as one video (real ffmpeg)', () => {
  let source: { file: string; probe: ProbeResult };
  before(async () => {
    source = await render({ prompt: 'a red balloon rising', durationSeconds: 2, seed: 3 });
  });

  test('2 s + 2 s: about 4 s at the source size, continuous at the join', async () => {
    const ext = await render(
      { prompt: 'the balloon drifts away', durationSeconds: 2, seed: 4, video: 'task:src' },
      { source: { path: source.file, contentType: 'video/mp4', url: 'task:src' } },
    );
    assert.deepEqual(shape(ext.probe), { codec: 'h264', size: `${source.probe.video?.width}x${source.probe.video?.height}`, audio: 'aac' });
    assert.ok(near(ext.probe.video?.durationMs, 4, 0.2), `video lasts ${ext.probe.video?.durationMs} ms`);
    assert.ok(near(ext.probe.durationMs, 4, 0.2), `file lasts ${ext.probe.durationMs} ms`);

    const srcLast = (await grayFrames(source.file, 0.5)).at(-1)!;
    const frames = await grayFrames(ext.file);
    assert.ok(Math.abs(frames.length - 96) <= 2, `${frames.length} frames`);
    const cut = 48; // 2 s at 24 fps: the first frame of the new part
    const atEnd = mad(frames[cut - 1]!, srcLast);
    const atJoin = mad(frames[cut]!, srcLast);
    const atPartEnd = mad(frames.at(-1)!, srcLast);
    assert.ok(atEnd < 2, `the source's last frame is kept (difference ${atEnd.toFixed(2)})`);
    assert.ok(atJoin < 3, `the new part starts from the source's last frame (difference ${atJoin.toFixed(2)})`);
    assert.ok(atPartEnd > atJoin + 10, `the new part moves on (end ${atPartEnd.toFixed(2)}, start ${atJoin.toFixed(2)})`);

    // A process that died before the rename: another one renders the same extend from the job file.
    rmSync(join(dir, 'renders', `${ext.upstreamId}.mp4`));
    const restarted = new LocalProvider({ dir: join(dir, 'renders'), binaries, concurrency: 1, renderDelayMs: 0, blockedWords: [], log: pino({ level: 'silent' }) });
    try {
      for (let p = await restarted.poll(ext.upstreamId); p.status !== 'succeeded'; p = await restarted.poll(ext.upstreamId)) {
        if (p.status === 'failed') throw p.error;
        await new Promise((r) => setTimeout(r, 100));
      }
      const again = join(dir, 'again.mp4');
      await restarted.fetchResult(ext.upstreamId, again);
      const p = await ffprobeFile(binaries.ffprobe, again);
      assert.ok(near(p.video?.durationMs, 4, 0.2), `the restarted render lasts ${p.video?.durationMs} ms`);
    } finally {
      await restarted.close();
    }

    // The job's files are gone once released, the last frame included.
    assert.ok(readdirSync(join(dir, 'renders')).some((f) => f.startsWith(ext.upstreamId) && f.endsWith('.last.png')));
    provider.release(ext.upstreamId);
    assert.deepEqual(readdirSync(join(dir, 'renders')).filter((f) => f.startsWith(ext.upstreamId)), []);
  });

  test('a source without audio, of another aspect, is padded and given silence', async () => {
    const silent = join(dir, 'silent.mp4');
    await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=s=320x240:r=30:d=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', silent]);
    const ext = await render(
      { prompt: 'on and on', durationSeconds: 1, upsample: true, frame: { width: 640, height: 360 }, video: 'data:' },
      { source: { path: silent, contentType: 'video/mp4', url: 'data:' } },
    );
    assert.deepEqual(shape(ext.probe), { codec: 'h264', size: '640x360', audio: 'aac' });
    assert.ok(near(ext.probe.video?.durationMs, 2, 0.2), `video lasts ${ext.probe.video?.durationMs} ms`);
    assert.ok(existsSync(silent));
  });
});
