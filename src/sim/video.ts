import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Binaries, run } from '../media/ffmpeg.js';
import { sceneArgs } from '../providers/local/scene.js';

/**
 * The videos the simulator serves: one real MP4 per aspect ratio, made once by the local
 * renderer's scene and reused for every job (a simulator answering thousands of jobs a second
 * cannot render each one).
 */
export class SampleVideos {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly binaries: Binaries,
    private readonly seconds: number,
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

  private async render(aspect: '16:9' | '9:16'): Promise<string> {
    const out = join(this.dir, `sample-${aspect === '16:9' ? 'landscape' : 'portrait'}-${this.seconds}s.mp4`);
    if (existsSync(out)) return out;
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
