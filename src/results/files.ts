import { constants, existsSync, mkdirSync, rmSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Task } from '../core/task.js';

/** The names of a task's result files; the URL path uses the same names. */
export const VIDEO_FILE = 'video.mp4';
export const HD_FILE = 'video-1080p.mp4';
export const UHD_FILE = 'video-4k.mp4';
/** The final video of a task with an exact frame size (OpenAI `1024x1792`): neither 1080p nor 4k. */
export const FRAME_FILE = 'video-frame.mp4';
/** The stills made from a task's final video (see `app/previews.ts`) and of its 4k rendition. */
export const THUMBNAIL_WEBP = 'thumbnail.webp';
export const SPRITESHEET_FILE = 'spritesheet.jpg';
export const UHD_THUMBNAIL = 'video-4k.jpg';
const STILL_FILES = [THUMBNAIL_WEBP, SPRITESHEET_FILE, UHD_THUMBNAIL];
/** The stored copy of the video an extend task continues (`TaskSpec.video`). */
export const SOURCE_FILE = 'source.mp4';
/** The file of a task's `i`-th input image, as fetched (`ext` from its sniffed type). */
export const inputFileName = (i: number, ext: string): string => `input-${i}.${ext}`;
/** The extensions an input image is stored under (see `engine/inputs.ts`). */
export const INPUT_EXTENSIONS = ['png', 'jpg', 'webp', 'gif'];

/** A file token (`core/ids.ts` fileToken: 22 base64url characters) and a result file name. */
const TOKEN = /^[A-Za-z0-9_-]{22}$/;
const NAME = /^[a-z0-9][a-z0-9.-]*$/;

/**
 * Where results live: `<dataDir>/results/<shard>/<fileToken>-<name>`, where the shard is the
 * token's first two characters; served at `<publicUrl>/files/<fileToken>/<name>`. The token is
 * random per task, so a URL can be shared without an API key and cannot be guessed.
 *
 * The files of all tasks share the shard folders: a result costs one new file, not a folder and
 * a file (creating an inode is the dear part of a write on some volumes). Data folders written
 * before this layout keep each task's files in `results/<fileToken>/`; those are read, served and
 * removed where they are, never written.
 */
export class ResultFiles {
  readonly root: string;
  /** Shard folders this process has made. */
  private readonly shards = new Set<string>();

  constructor(
    dataDir: string,
    private readonly publicUrl: string,
  ) {
    this.root = join(dataDir, 'results');
    mkdirSync(this.root, { recursive: true });
  }

  /**
   * Makes the folder the task's files go in (its shard). Asynchronous: on some volumes a `mkdir`
   * costs half a millisecond of kernel time, which must not stall the event loop. Each shard is
   * made once per process.
   */
  async ensureDir(task: Pick<Task, 'fileToken'>): Promise<void> {
    const shard = task.fileToken.slice(0, 2);
    if (this.shards.has(shard)) return;
    await mkdir(join(this.root, shard), { recursive: true });
    this.shards.add(shard);
  }

  /** Whether results can be written here (for readiness): the folder exists and is writable. */
  async check(): Promise<void> {
    await access(this.root, constants.W_OK);
  }

  /** Where a task's file is written (and read, for tasks stored in this layout). */
  path(task: Pick<Task, 'fileToken'>, name: string): string {
    return join(this.root, this.relative(task.fileToken, name));
  }

  /** Where a task's existing file is: this layout's path, or the older per-task folder's. */
  existing(task: Pick<Task, 'fileToken'>, name: string): string {
    const flat = this.path(task, name);
    if (existsSync(flat)) return flat;
    const legacy = join(this.root, task.fileToken, name);
    return existsSync(legacy) ? legacy : flat;
  }

  /**
   * The file behind `/files/<token>/<name>`, relative to `root`, or undefined for a token or name
   * that no task could have (nothing outside the results is reachable).
   */
  served(token: string, name: string): string | undefined {
    if (!TOKEN.test(token) || !NAME.test(name) || name.includes('..')) return undefined;
    const flat = this.relative(token, name);
    if (existsSync(join(this.root, flat))) return flat;
    const legacy = `${token}/${name}`;
    return existsSync(join(this.root, legacy)) ? legacy : undefined;
  }

  url(task: Pick<Task, 'fileToken'>, name: string): string {
    return `${this.publicUrl}/files/${task.fileToken}/${name}`;
  }

  /**
   * Removes a task's files: every name a task's files can have (videos, their upsampling scratch
   * files, input images), and the older layout's folder if there is one.
   */
  remove(task: Pick<Task, 'fileToken'> & { spec: Pick<Task['spec'], 'images'> }): void {
    const names: string[] = [];
    for (const v of [VIDEO_FILE, HD_FILE, UHD_FILE, FRAME_FILE]) names.push(v, `${v}.tmp.mp4`, `${v}.pid`);
    for (const s of STILL_FILES) names.push(s, `${s}.tmp`);
    names.push(SOURCE_FILE, `${SOURCE_FILE}.tmp`);
    for (let i = 0; i < task.spec.images.length; i++) for (const ext of INPUT_EXTENSIONS) names.push(inputFileName(i, ext));
    for (const n of names) rmSync(this.path(task, n), { force: true });
    rmSync(join(this.root, task.fileToken), { recursive: true, force: true });
  }

  /** The path under `root` of a task's existing file, for `reply.sendFile`; undefined when it is not there. */
  servedFile(task: Pick<Task, 'fileToken'>, name: string): string | undefined {
    return this.served(task.fileToken, name);
  }

  private relative(token: string, name: string): string {
    return `${token.slice(0, 2)}/${token}-${name}`;
  }
}

/** The name of the upsampled file of a spec: its exact frame, else its resolution's. */
export function hdFileName(spec: Pick<Task['spec'], 'resolution' | 'frame'>): string {
  if (spec.frame) return FRAME_FILE;
  return spec.resolution === '4k' ? UHD_FILE : HD_FILE;
}

/** The URLs of a task's videos, derived from its state (no file-system or database access). */
export interface TaskUrls {
  /** The base video (720p), once stored. */
  video: string | null;
  /** The rendition the lifecycle upsampled to (1080p or 4k), once stored. */
  upsampled: string | null;
  /** A 1080p rendition, made by the lifecycle or asked for later (kie get-1080p-video). */
  hd1080: string | null;
  /** A 4k rendition, made by the lifecycle or asked for later (kie get-4k-video). */
  uhd: string | null;
  /** The thumbnail of the 4k rendition (kie get-4k-video `imageUrls`), once it is stored. */
  uhdThumbnail: string | null;
  /** The best video of a succeeded task: the upsampled one when there is one, else the base one. */
  final: string | null;
}

/** The file name of a succeeded task's best video (what `TaskUrls.final` points at), else null. */
export function finalVideoName(task: Task): string | null {
  if (task.state !== 'succeeded') return null;
  return task.spec.upsample ? hdFileName(task.spec) : VIDEO_FILE;
}

export function taskUrls(files: ResultFiles, task: Task): TaskUrls {
  const hasBase =
    task.state === 'generated' ||
    task.state === 'upsampling' ||
    task.state === 'succeeded' ||
    (task.state === 'failed' && task.failureStage === 'upsample');
  const video = hasBase ? files.url(task, VIDEO_FILE) : null;
  const succeeded = task.state === 'succeeded';
  const upsampled = succeeded && task.spec.upsample ? files.url(task, hdFileName(task.spec)) : null;
  // An exact frame (1024x1792) is the final video, but not a 1080p or 4k rendition.
  const lifecycle1080 = upsampled !== null && task.spec.resolution === '1080p' && !task.spec.frame;
  const hd1080 = succeeded && (lifecycle1080 || task.hdState === 'ready') ? files.url(task, HD_FILE) : null;
  const lifecycle4k = upsampled !== null && task.spec.resolution === '4k' && !task.spec.frame;
  const uhd = succeeded && (lifecycle4k || task.uhdState === 'ready') ? files.url(task, UHD_FILE) : null;
  const uhdThumbnail = succeeded && task.uhdState === 'ready' ? files.url(task, UHD_THUMBNAIL) : null;
  return { video, upsampled, hd1080, uhd, uhdThumbnail, final: succeeded ? (upsampled ?? video) : null };
}
