import { rename, rm, stat } from 'node:fs/promises';
import type { Task } from '../core/task.js';
import { type Binaries, run } from '../media/ffmpeg.js';
import { probe } from '../media/probe.js';
import { spritesheetArgs, thumbnailArgs } from '../media/stills.js';
import { type ResultFiles, SPRITESHEET_FILE, THUMBNAIL_WEBP, finalVideoName } from '../results/files.js';

export type StillKind = 'thumbnail.webp' | 'spritesheet';

const NAMES: Record<StillKind, string> = { 'thumbnail.webp': THUMBNAIL_WEBP, spritesheet: SPRITESHEET_FILE };

/** ffmpeg runs for stills at once: a spritesheet decodes the whole video. */
const AT_ONCE = 2;

/**
 * Stills of a succeeded task's final video, made with ffmpeg the first time they are asked for
 * and stored with the task's files (retention and delete remove them with the rest). Requests for
 * the same still at the same time share one ffmpeg run, and at most two run at once.
 */
export class Previews {
  private readonly making = new Map<string, Promise<string | undefined>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly files: ResultFiles,
    private readonly binaries: Binaries,
  ) {}

  /** The name of the task's final video (to `files.serve`); undefined before success. */
  video(task: Task): string | undefined {
    return finalVideoName(task) ?? undefined;
  }

  /** The name of a still of the final video, once stored (to `files.serve`); undefined when there is no video. */
  async still(task: Task, kind: StillKind): Promise<string | undefined> {
    const video = finalVideoName(task);
    if (!video) return undefined;
    const name = NAMES[kind];
    if (await this.files.exists(task, name)) return name;
    const key = `${task.fileToken}/${name}`;
    let pending = this.making.get(key);
    if (!pending) {
      pending = this.make(task, video, name, kind).finally(() => this.making.delete(key));
      this.making.set(key, pending);
    }
    return pending;
  }

  private async make(task: Task, video: string, name: string, kind: StillKind): Promise<string | undefined> {
    if (this.running >= AT_ONCE) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await this.render(task, video, name, kind);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async render(task: Task, video: string, name: string, kind: StillKind): Promise<string | undefined> {
    const src = await this.files.local(task, video);
    if (!src) return undefined;
    const out = await this.files.scratch(task, name);
    const tmp = `${out}.tmp`;
    const seconds = ((await probe(this.binaries.ffprobe, src)).durationMs ?? 0) / 1000;
    const args =
      kind === 'spritesheet'
        ? spritesheetArgs(src, tmp, seconds)
        : thumbnailArgs(src, tmp, 'webp', seconds / 2);
    try {
      await run(this.binaries.ffmpeg, args, { timeoutMs: 120_000 });
      if (!(await stat(tmp).then(() => true, () => false))) throw new Error(`ffmpeg wrote no ${name}`);
      await rename(tmp, out);
    } finally {
      await rm(tmp, { force: true });
    }
    await this.files.store(task, name, out);
    // The task was deleted or swept while the still was made: leave nothing behind it.
    if (!(await this.files.exists(task, video))) {
      await this.files.delete(task, name);
      return undefined;
    }
    return name;
  }
}
