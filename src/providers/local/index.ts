import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Binaries } from '../../media/ffmpeg.js';
import { killOrphan, run } from '../../media/ffmpeg.js';
import { probe } from '../../media/probe.js';
import type { PollOutcome, Provider, SubmitRequest } from '../port.js';
import { PermanentError, SafetyRejectedError, TransientError, coerceError } from '../port.js';
import { type SceneInput, extendArgs, lastFrameArgs, sceneArgs, sizeProblem, targetSize, wrapCaption } from './scene.js';

export interface LocalProviderOptions {
  /** Working folder for render jobs (`<dataDir>/renders`). */
  dir: string;
  binaries: Binaries;
  /** ffmpeg processes at once (default 1). */
  concurrency: number;
  /** A render is reported "running" at least this long after submission (default 0). */
  renderDelayMs: number;
  /** Prompts containing any of these words (case-insensitive, whole words) are rejected for safety. */
  blockedWords: string[];
  log: Logger;
}

/** The text a safety rejection carries, as the kkiai seed words it. */
export const SAFETY_MESSAGE =
  'your request contains unsafe prompt or images, such as porn, violence, minors etc., has been rejected by google, please change your prompt or images and try again';

interface JobFile {
  id: string;
  submissionId: string;
  taskId: string;
  submittedAt: number;
  /** What to render; `scene.size` is the final size (absent in job files from before it: 720p). */
  scene: Omit<SceneInput, 'captionFile' | 'watermarkFile' | 'font'>;
  /**
   * The stored copy of the video this job continues (extend), when it does: the render joins it
   * and a new part made from its last frame, so a restart renders the same thing again.
   */
  source?: string;
}

/** The files a job may leave in `dir`, `<id><ext>`; `release` removes them all. */
const JOB_FILES = ['.json', '.mp4', '.err', '.txt', '.wm.txt', '.pid', '.tmp.mp4', '.last.png'];

/** An `.err` file starting with this holds a failure that a new submission would repeat. */
const PERMANENT = 'permanent: ';

class PermanentRenderError extends Error {}

/**
 * The embedded renderer: makes real H.264/AAC MP4s with ffmpeg, so Reelay works offline.
 *
 * Each submission is a job file `<id>.json` in `dir`; the render writes `<id>.tmp.mp4` and renames
 * it to `<id>.mp4` when complete, then appends a line to `renders.log`. The job survives a restart:
 * a poll of a job whose MP4 is missing and which is not running starts it again, and a job whose MP4
 * exists is never rendered again.
 *
 * The video is rendered at the task's final size (`targetSize`: 1080p, 4k or an exact `frame`), so
 * the engine has nothing to upscale. With `req.source` (extend), the job takes the source's last
 * frame (`<id>.last.png`), renders the new part from it and joins both into one video.
 */
export class LocalProvider implements Provider {
  readonly name = 'local';
  readonly extends = true;
  private readonly queue: string[] = [];
  private readonly active = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Jobs canceled while their render ran: the render's end removes their files. */
  private readonly stopping = new Set<string>();
  private wake: (upstreamId: string) => void = () => {};
  private closed = false;

  constructor(private readonly opts: LocalProviderOptions) {
    mkdirSync(opts.dir, { recursive: true });
  }

  onWake(fn: (upstreamId: string) => void): void {
    this.wake = fn;
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const blocked = this.blockedWord(`${req.task.spec.prompt} ${req.prompt}`);
    if (blocked) throw new SafetyRejectedError(SAFETY_MESSAGE);
    const id = createHash('sha256').update(req.submissionId).digest('hex').slice(0, 32);
    const jobFile = this.path(id, '.json');
    if (!existsSync(jobFile)) {
      const spec = req.task.spec;
      const size = targetSize(spec);
      const problem = sizeProblem(size);
      if (problem) throw new PermanentError(problem);
      const job: JobFile = {
        id,
        submissionId: req.submissionId,
        taskId: req.task.id,
        submittedAt: Date.now(),
        scene: {
          prompt: req.prompt,
          seed: spec.seed,
          aspectRatio: spec.aspectRatio === 'auto' ? '16:9' : spec.aspectRatio,
          durationSeconds: spec.durationSeconds,
          images: req.inputs.map((i) => i.path),
          mode: spec.mode,
          size,
          ...(spec.watermark ? { watermark: spec.watermark } : {}),
        },
        ...(req.source ? { source: req.source.path } : {}),
      };
      writeFileSync(jobFile + '.tmp', JSON.stringify(job));
      renameSync(jobFile + '.tmp', jobFile);
    }
    this.ensureRunning(id);
    return { upstreamId: id };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const job = this.readJob(upstreamId);
    if (!job) return { status: 'failed', error: new PermanentError(`render job ${upstreamId} is unknown`) };
    if (existsSync(this.path(upstreamId, '.mp4'))) {
      const wait = job.submittedAt + this.opts.renderDelayMs - Date.now();
      if (wait > 0) return { status: 'running', progress: 99, pollAfterMs: wait };
      return { status: 'succeeded' };
    }
    const errFile = this.path(upstreamId, '.err');
    if (existsSync(errFile)) {
      const message = readFileSync(errFile, 'utf8');
      if (message.startsWith(PERMANENT)) return { status: 'failed', error: new PermanentError(`local render failed: ${message.slice(PERMANENT.length)}`) };
      return { status: 'failed', error: new TransientError(`local render failed: ${message}`) };
    }
    this.ensureRunning(upstreamId);
    const position = this.queue.indexOf(upstreamId);
    return { status: 'running', progress: position >= 0 ? 0 : 50, pollAfterMs: 2000 };
  }

  async fetchResult(upstreamId: string, destFile: string): Promise<void> {
    const src = this.path(upstreamId, '.mp4');
    if (!existsSync(src)) throw new TransientError(`render ${upstreamId} has no output`);
    copyFileSync(src, destFile + '.tmp');
    renameSync(destFile + '.tmp', destFile);
  }

  /**
   * Stops a job: a queued one never starts, a running one's ffmpeg is killed, and the job's
   * files go (a canceled job leaves no video behind; a later poll finds it unknown). Returns once
   * the ffmpeg is gone and the files with it.
   */
  async cancel(upstreamId: string): Promise<void> {
    const queued = this.queue.indexOf(upstreamId);
    if (queued >= 0) this.queue.splice(queued, 1);
    const running = this.active.get(upstreamId);
    if (running) {
      this.stopping.add(upstreamId);
      running.abort.abort();
      await running.done;
      return;
    }
    this.release(upstreamId);
  }

  /** Removes a finished job's files once its video has been stored elsewhere. */
  release(upstreamId: string): void {
    for (const ext of JOB_FILES) rmSync(this.path(upstreamId, ext), { force: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const r of this.active.values()) r.abort.abort();
  }

  private blockedWord(text: string): string | undefined {
    const lower = text.toLowerCase();
    return this.opts.blockedWords.find((w) => new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRe(w.toLowerCase())}($|[^\\p{L}\\p{N}])`, 'u').test(lower));
  }

  private path(id: string, ext: string): string {
    return join(this.opts.dir, id + ext);
  }

  private readJob(id: string): JobFile | undefined {
    try {
      return JSON.parse(readFileSync(this.path(id, '.json'), 'utf8')) as JobFile;
    } catch {
      return undefined;
    }
  }

  private ensureRunning(id: string): void {
    if (this.closed || this.active.has(id) || this.queue.includes(id)) return;
    if (existsSync(this.path(id, '.mp4')) || existsSync(this.path(id, '.err'))) return;
    this.queue.push(id);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.active.size < this.opts.concurrency && this.queue.length > 0) {
      const id = this.queue.shift()!;
      const abort = new AbortController();
      const done = this.render(id, abort.signal)
        .catch((e: unknown) => this.opts.log.error({ upstreamId: id, err: coerceError(e).message }, 'local render crashed'))
        .finally(() => {
          this.active.delete(id);
          this.pump();
        });
      this.active.set(id, { abort, done });
    }
  }

  private async render(id: string, signal: AbortSignal): Promise<void> {
    const job = this.readJob(id);
    if (!job) return;
    const captionFile = this.path(id, '.txt');
    writeFileSync(captionFile, wrapCaption(job.scene.prompt));
    let watermarkFile: string | undefined;
    if (job.scene.watermark) {
      watermarkFile = this.path(id, '.wm.txt');
      writeFileSync(watermarkFile, job.scene.watermark);
    }
    // A render left running by a process that was killed must not write alongside this one.
    // Every ffmpeg of the job names a file `<dir>/<id>.…`: the marker finds either of an extend's two.
    const pidFile = this.path(id, '.pid');
    const tmp = this.path(id, '.tmp.mp4');
    killOrphan(pidFile, this.path(id, '.'));
    const started = Date.now();
    const canceled = () => {
      if (!this.stopping.delete(id)) return false;
      this.release(id);
      this.opts.log.info({ taskId: job.taskId, upstreamId: id }, 'local render canceled');
      return true;
    };
    try {
      const scene: SceneInput = { ...job.scene, captionFile, font: this.opts.binaries.font, ...(watermarkFile ? { watermarkFile } : {}) };
      const { args, sourceSeconds } = job.source ? await this.extension(id, job.source, scene, tmp, signal, pidFile) : { args: sceneArgs(scene, tmp), sourceSeconds: 0 };
      // An extend re-encodes its source too: a long one at 4k takes minutes of its own.
      await run(this.opts.binaries.ffmpeg, args, { timeoutMs: 10 * 60_000 + sourceSeconds * 10_000, signal, pidFile });
      if (canceled()) return;
      renameSync(tmp, this.path(id, '.mp4'));
      appendFileSync(
        join(this.opts.dir, 'renders.log'),
        JSON.stringify({ id, taskId: job.taskId, submissionId: job.submissionId, ms: Date.now() - started, at: Date.now() }) + '\n',
      );
      this.opts.log.info({ taskId: job.taskId, upstreamId: id, ms: Date.now() - started }, 'local render done');
    } catch (e) {
      if (canceled() || this.closed) return;
      const err = coerceError(e);
      rmSync(tmp, { force: true });
      writeFileSync(this.path(id, '.err'), (e instanceof PermanentRenderError ? PERMANENT : '') + err.message.slice(0, 1000));
      this.opts.log.warn({ taskId: job.taskId, upstreamId: id, err: err.message }, 'local render failed');
    }
    const remaining = job.submittedAt + this.opts.renderDelayMs - Date.now();
    setTimeout(() => this.wake(id), Math.max(0, remaining)).unref();
  }

  /**
   * The render of an extend: probes the source, writes its last frame to `<id>.last.png` (again on
   * every render: it is cheap, and a file left by a killed run may be partial), and gives the
   * arguments that join the source and the new part.
   */
  private async extension(id: string, sourceFile: string, scene: SceneInput, outFile: string, signal: AbortSignal, pidFile: string): Promise<{ args: string[]; sourceSeconds: number }> {
    const p = await probe(this.opts.binaries.ffprobe, sourceFile);
    if (!p.video) throw new PermanentRenderError(`the video to extend has no video stream`);
    const durationSeconds = seconds(p.video.durationMs || p.durationMs);
    if (!(durationSeconds > 0)) throw new PermanentRenderError(`the video to extend has no duration`);
    const lastFrame = this.path(id, '.last.png');
    await run(this.opts.binaries.ffmpeg, lastFrameArgs(sourceFile, lastFrame, durationSeconds), { timeoutMs: 2 * 60_000, signal, pidFile });
    if (!existsSync(lastFrame)) throw new Error('no last frame could be read from the video to extend');
    const args = extendArgs({ ...scene, images: [lastFrame], mode: 'frames' }, { file: sourceFile, durationSeconds, hasAudio: p.audio !== null }, outFile);
    return { args, sourceSeconds: durationSeconds };
  }
}

/** Seconds, from a probe's milliseconds. */
const seconds = (ms: number) => Math.round(ms) / 1000;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
