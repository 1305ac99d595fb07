import { mkdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Task } from '../core/task.js';

/** The file names a task's folder may hold; the URL path uses the same names. */
export const VIDEO_FILE = 'video.mp4';
export const HD_FILE = 'video-1080p.mp4';
export const UHD_FILE = 'video-4k.mp4';

/**
 * Where results live: `<dataDir>/results/<fileToken>/<name>`, served at
 * `<publicUrl>/files/<fileToken>/<name>`. The token is random per task, so a URL can be shared
 * without an API key and cannot be guessed.
 */
export class ResultFiles {
  readonly root: string;
  /** Result folders this process has made (expired tasks' folders are removed, never remade). */
  private readonly made = new Set<string>();

  constructor(
    dataDir: string,
    private readonly publicUrl: string,
  ) {
    this.root = join(dataDir, 'results');
    mkdirSync(this.root, { recursive: true });
  }

  /** Creates the task's folder (if needed) and returns its path. */
  /**
   * Makes the task's result folder. Asynchronous: on some volumes a `mkdir` costs half a
   * millisecond of kernel time, which must not stall the event loop. Each folder is made once per
   * process (expired tasks' folders are removed and never made again).
   */
  async ensureDir(task: Pick<Task, 'fileToken'>): Promise<string> {
    const d = join(this.root, task.fileToken);
    if (!this.made.has(d)) {
      await mkdir(d, { recursive: true });
      this.made.add(d);
      if (this.made.size > 50_000) this.made.clear();
    }
    return d;
  }

  path(task: Pick<Task, 'fileToken'>, name: string): string {
    return join(this.root, task.fileToken, name);
  }

  url(task: Pick<Task, 'fileToken'>, name: string): string {
    return `${this.publicUrl}/files/${task.fileToken}/${name}`;
  }

  remove(task: Pick<Task, 'fileToken'>): void {
    rmSync(join(this.root, task.fileToken), { recursive: true, force: true });
  }
}

/** The name of the upsampled file for a resolution. */
export function hdFileName(resolution: Task['spec']['resolution']): string {
  return resolution === '4k' ? UHD_FILE : HD_FILE;
}

/** The URLs of a task's videos, derived from its state (no file-system or database access). */
export interface TaskUrls {
  /** The base video (720p), once stored. */
  video: string | null;
  /** The rendition the lifecycle upsampled to (1080p or 4k), once stored. */
  upsampled: string | null;
  /** A 1080p rendition, made by the lifecycle or asked for later (kie get-1080p-video). */
  hd1080: string | null;
  /** The best video of a succeeded task: the upsampled one when there is one, else the base one. */
  final: string | null;
}

export function taskUrls(files: ResultFiles, task: Task): TaskUrls {
  const hasBase =
    task.state === 'generated' ||
    task.state === 'upsampling' ||
    task.state === 'succeeded' ||
    (task.state === 'failed' && task.failureStage === 'upsample');
  const video = hasBase ? files.url(task, VIDEO_FILE) : null;
  const succeeded = task.state === 'succeeded';
  const upsampled = succeeded && task.spec.upsample ? files.url(task, hdFileName(task.spec.resolution)) : null;
  const lifecycle1080 = upsampled !== null && task.spec.resolution !== '4k';
  const hd1080 = succeeded && (lifecycle1080 || task.hdState === 'ready') ? files.url(task, HD_FILE) : null;
  return { video, upsampled, hd1080, final: succeeded ? (upsampled ?? video) : null };
}
