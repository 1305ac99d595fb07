// Seconds from submission to a playable video with the local renderer, at 720p, 1080p and 4k, for
// a text scene and a one-image scene, against the old path for 1080p and 4k (render 720p, then a
// second ffmpeg pass with `upscaleArgs`, as the engine's upsample step did for local renders).
//
// The new path goes through LocalProvider (submit, then poll until the MP4 is in place). The old
// path runs `sceneArgs` at 720p and `upscaleArgs` directly, one after the other. Every clip lasts
// BENCH_SECONDS (8); ×clip is the time over the clip's length (below 1: faster than real time).
// Beside the wall time, the CPU seconds of the ffmpeg processes (user + kernel, from this
// process's reaped children in /proc/self/stat): on a shared machine the wall time moves with the
// neighbours' load, the CPU time much less. The load average is printed at the start and the end.
// A text scene's cost depends on its backdrop, which the prompt and seed pick: BENCH_BACKDROPS
// (default mandelbrot,plasma) names the ones to run. Then, at 4k, each x264 preset on the same
// scenes (time, CPU and bytes), for the choice in `presetFor`.
//
//   npx tsc -p tsconfig.json && node dist/bench/render.js
//   (BENCH_SECONDS=8, BENCH_BACKDROPS=mandelbrot,plasma,life,cellauto, BENCH_PRESETS=0 to skip the presets)
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { makeTask } from '../test/fixtures.js';
import type { Resolution, TaskSpec } from '../src/core/task.js';
import { locateBinaries, run } from '../src/media/ffmpeg.js';
import { ffprobeFile } from '../src/media/probe.js';
import { LocalProvider } from '../src/providers/local/index.js';
import { BACKDROPS, type SceneInput, presetFor, sceneArgs, sceneHash, targetSize, upscaleArgs, wrapCaption } from '../src/providers/local/scene.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const KINDS = (process.env.BENCH_BACKDROPS ?? 'mandelbrot,plasma').split(',').filter(Boolean) as (typeof BACKDROPS)[number][];
const PRESETS = process.env.BENCH_PRESETS !== '0';
const binaries = locateBinaries();
const dir = mkdtempSync(join(process.env.BENCH_DATA_ROOT ?? tmpdir(), 'reelay-render-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const PROMPT = 'a lighthouse on a cliff at dusk, waves below';
/** The first seed whose scene has this backdrop. */
const seedFor = (kind: string) => {
  for (let seed = 1; ; seed++) if (BACKDROPS[sceneHash(PROMPT, seed) % BACKDROPS.length] === kind) return seed;
};

/** CPU seconds (user + kernel) of this process's children that have ended. */
const childCpu = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
};
/** Wall and CPU seconds of an async step whose ffmpeg processes are children of this one. */
async function timed(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const cpu = childCpu();
  const t = performance.now();
  await fn();
  return { wall: (performance.now() - t) / 1000, cpu: childCpu() - cpu };
}
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

const image = join(dir, 'input.png');
await run(binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=1920x1080', '-frames:v', '1', image]);
const captionFile = join(dir, 'caption.txt');
writeFileSync(captionFile, wrapCaption(PROMPT));

interface Scene {
  name: string;
  spec: Partial<TaskSpec>;
  images: string[];
}
const scenes: Scene[] = [
  ...KINDS.map((kind) => ({ name: `text (${kind})`, spec: { seed: seedFor(kind) }, images: [] })),
  { name: 'one image', spec: { seed: 1, mode: 'frames' as const, images: ['https://bench/input.png'] }, images: [image] },
];
const RESOLUTIONS: Resolution[] = ['720p', '1080p', '4k'];

const provider = new LocalProvider({ dir: join(dir, 'renders'), binaries, concurrency: 1, renderDelayMs: 0, blockedWords: [], log: pino({ level: 'silent' }) });

let n = 0;
/** The new path: one render at the final size, through the provider. Seconds and the video's size. */
async function direct(scene: Scene, resolution: Resolution): Promise<{ wall: number; cpu: number; size: string; bytes: number }> {
  const task = makeTask({ id: `bench-${++n}` }, { prompt: PROMPT, durationSeconds: SECONDS, resolution, upsample: resolution !== '720p', ...scene.spec });
  let upstreamId = '';
  const time = await timed(async () => {
    ({ upstreamId } = await provider.submit({
      submissionId: `${task.id}#1`, task, model: 'veo3', prompt: PROMPT,
      inputs: scene.images.map((path) => ({ path, contentType: 'image/png', url: 'https://bench/input.png' })),
    }));
    // Polled every 20 ms (a poll is a file check): the figure is within 20 ms of the rename.
    for (;;) {
      const poll = await provider.poll(upstreamId);
      if (poll.status === 'succeeded') break;
      if (poll.status === 'failed') throw new Error(`render ${upstreamId}: ${poll.error.message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  const out = join(dir, `${task.id}.mp4`);
  await provider.fetchResult(upstreamId, out);
  provider.release(upstreamId);
  const p = await ffprobeFile(binaries.ffprobe, out);
  const bytes = statSync(out).size;
  rmSync(out);
  return { ...time, size: `${p.video?.width}x${p.video?.height}`, bytes };
}

function input(scene: Scene, size: { w: number; h: number } | undefined): SceneInput {
  const seed = scene.spec.seed ?? 1;
  return {
    prompt: PROMPT, seed, aspectRatio: '16:9', durationSeconds: SECONDS, images: scene.images,
    mode: scene.images.length ? 'frames' : 'text', captionFile, font: binaries.font, ...(size ? { size } : {}),
  };
}

/** The old path: 720p, then the upscale pass. Seconds of each. */
async function twoPass(scene: Scene, resolution: Resolution): Promise<{ render: number; upscale: number; cpu: number }> {
  const base = join(dir, `old-${++n}.mp4`);
  const hd = join(dir, `old-${n}-hd.mp4`);
  const render = await timed(() => run(binaries.ffmpeg, sceneArgs(input(scene, undefined), base)));
  const { w, h } = targetSize({ aspectRatio: '16:9', resolution, upsample: true });
  const upscale = await timed(() => run(binaries.ffmpeg, upscaleArgs(base, hd, w, h)));
  rmSync(base);
  rmSync(hd);
  return { render: render.wall, upscale: upscale.wall, cpu: render.cpu + upscale.cpu };
}

const s = (x: number) => `${x.toFixed(1)} s`;
const x = (t: number) => `×${(t / SECONDS).toFixed(2)}`;
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const row = (cols: string[], widths: number[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');

const pct = (now: number, old: number) => `${Math.round(100 * (1 - now / old))} %`;
console.log(`node ${process.version}, ${cpus().length} cores, ffmpeg ${binaries.ffmpeg} (${binaries.source.ffmpeg}), ${SECONDS} s clips, 16:9, load average ${load()}`);
console.log(`new = one render at the final size (LocalProvider, submit → MP4 in place); old = render 720p + upscaleArgs; cpu = ffmpeg CPU seconds`);
const widths = [18, 5, 9, 7, 6, 7, 7, 24, 6, 7, 6, 6];
console.log(row(['scene', 'res', 'size', 'new', '×clip', 'cpu', 'MB', 'old (render + upscale)', '×clip', 'cpu', 'saved', 'cpu'], widths));
for (const scene of scenes) {
  for (const resolution of RESOLUTIONS) {
    const now = await direct(scene, resolution);
    const cols = [scene.name, resolution, now.size, s(now.wall), x(now.wall), s(now.cpu), mb(now.bytes)];
    if (resolution !== '720p') {
      const old = await twoPass(scene, resolution);
      const total = old.render + old.upscale;
      cols.push(`${s(total)} (${old.render.toFixed(1)} + ${old.upscale.toFixed(1)})`, x(total), s(old.cpu), pct(now.wall, total), pct(now.cpu, old.cpu));
    }
    console.log(row(cols, widths));
  }
}

if (PRESETS) {
  const size = targetSize({ aspectRatio: '16:9', resolution: '4k', upsample: true });
  console.log(`\nx264 presets at 4k (${size.w}x${size.h}), same scenes, one render each (presetFor chooses ${presetFor(size)})`);
  const pw = [18, 10, 7, 6, 7, 8];
  console.log(row(['scene', 'preset', 'time', '×clip', 'cpu', 'MB'], pw));
  for (const scene of scenes) {
    for (const preset of ['veryfast', 'superfast', 'ultrafast']) {
      const out = join(dir, `preset-${++n}.mp4`);
      const args = sceneArgs(input(scene, size), out);
      args[args.indexOf('-preset') + 1] = preset;
      const time = await timed(() => run(binaries.ffmpeg, args));
      console.log(row([scene.name, preset, s(time.wall), x(time.wall), s(time.cpu), mb(statSync(out).size)], pw));
      rmSync(out);
    }
  }
}
await provider.close();
console.log(`load average at the end ${load()}`);
