import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Binaries, run } from '../media/ffmpeg.js';
import { type ProbeResult, probe } from '../media/probe.js';
import { sceneArgs } from '../providers/local/scene.js';

/**
 * The videos the simulator serves: one real MP4 per aspect ratio, made once by the local
 * renderer's scene and reused for every job (a simulator answering thousands of jobs a second
 * cannot render each one).
 */
export class SampleVideos {
  private readonly pending = new Map<string, Promise<string>>();
  private readonly loaded = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly dir: string,
    private readonly binaries: Binaries,
    private readonly seconds: number,
    /** `small`: a 320×180 (or 180×320) test pattern of a few kB, for load tests. */
    private readonly size: 'full' | 'small' = 'full',
  ) {
    mkdirSync(dir, { recursive: true });
  }

  path(aspect: '16:9' | '9:16'): Promise<string> {
    let p = this.pending.get(aspect);
    if (!p) {
      p = this.render(aspect);
      this.pending.set(aspect, p);
      p.catch(() => this.pending.delete(aspect));
    }
    return p;
  }

  /**
   * The sample's bytes, read once and kept: every download is served from memory (a sample is a
   * few MB at most, and a file opened per download costs more than the rest of the answer).
   */
  bytes(aspect: '16:9' | '9:16'): Promise<Buffer> {
    let b = this.loaded.get(aspect);
    if (!b) {
      b = this.path(aspect).then((file) => readFile(file));
      this.loaded.set(aspect, b);
      b.catch(() => this.loaded.delete(aspect));
    }
    return b;
  }

  private async render(aspect: '16:9' | '9:16'): Promise<string> {
    const out = join(this.dir, `sample-${aspect === '16:9' ? 'landscape' : 'portrait'}-${this.seconds}s${this.size === 'small' ? '-small' : ''}.mp4`);
    if (existsSync(out)) return out;
    if (this.size === 'small') {
      const tmp = `${out}.${process.pid}.tmp.mp4`;
      const s = aspect === '16:9' ? '320x180' : '180x320';
      await run(this.binaries.ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=s=${s}:r=24:d=${this.seconds}`, '-f', 'lavfi', '-i', `sine=d=${this.seconds}`, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-crf', '35', '-c:a', 'aac', '-b:a', '32k', '-shortest', '-movflags', '+faststart', tmp], { timeoutMs: 60_000 });
      renameSync(tmp, out);
      return out;
    }
    const captionFile = join(this.dir, `caption.${process.pid}.txt`);
    writeFileSync(captionFile, 'Reelay upstream simulator');
    // Unique per process: simulators sharing a directory may render the same sample at once.
    const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp.mp4`;
    const args = sceneArgs(
      { prompt: 'Reelay upstream simulator', seed: 1, aspectRatio: aspect, durationSeconds: this.seconds, images: [], mode: 'text', captionFile, font: this.binaries.font },
      tmp,
    );
    await run(this.binaries.ffmpeg, args, { timeoutMs: 5 * 60_000 });
    renameSync(tmp, out);
    return out;
  }
}

/**
 * An extension's video: the source (the MP4 at `src`, as probed) scaled into the frame of the
 * sample of its aspect, then that sample, each with its sound (silence for a source without any),
 * joined into one MP4 written to `out`. The Google and OpenAI simulators both extend this way.
 */
export async function joinWithSample(
  opts: { ffmpeg: string; sample: string; small: boolean; aspect: '16:9' | '9:16' },
  src: string,
  p: ProbeResult,
  out: string,
): Promise<Buffer> {
  const [w, h] = opts.small ? [320, 180] : [1280, 720];
  const [width, height] = opts.aspect === '9:16' ? [h, w] : [w, h];
  const seconds = ((p.video?.durationMs || p.durationMs) / 1000).toFixed(3);
  const fit = `scale=${width}:${height}:force_original_aspect_ratio=decrease,pad=${width}:${height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=24,format=yuv420p`;
  const sound = 'aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo';
  const sourceSound = p.audio ? `[0:a]${sound},atrim=duration=${seconds}[a0]` : `anullsrc=r=48000:cl=stereo,atrim=duration=${seconds},${sound}[a0]`;
  const graph = `[0:v]trim=duration=${seconds},${fit}[v0];${sourceSound};[1:v]${fit}[v1];[1:a]${sound}[a1];[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]`;
  await run(
    opts.ffmpeg,
    ['-hide_banner', '-loglevel', 'error', '-y', '-i', src, '-i', opts.sample, '-filter_complex', graph, '-map', '[v]', '-map', '[a]', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '30', '-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart', out],
    { timeoutMs: 120_000 },
  );
  return readFile(out);
}

/**
 * `joinWithSample` for a source given as bytes: written to `dir` as `<name>-source.mp4`, probed
 * (it must hold a video stream), joined, and both files removed whatever happens.
 */
export async function joinBytesWithSample(
  opts: { ffmpeg: string; ffprobe: string; dir: string; sample: string; small: boolean; aspect: '16:9' | '9:16' },
  name: string,
  source: Buffer,
): Promise<Buffer> {
  const src = join(opts.dir, `${name}-source.mp4`);
  const out = join(opts.dir, `${name}.mp4`);
  writeFileSync(src, source);
  try {
    const p = await probe(opts.ffprobe, src);
    if (!p.video) throw new Error('the source video has no video stream');
    return await joinWithSample(opts, src, p, out);
  } finally {
    rmSync(src, { force: true });
    rmSync(out, { force: true });
  }
}
