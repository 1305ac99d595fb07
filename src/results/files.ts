import { randomBytes } from 'node:crypto';
import { constants, existsSync, mkdirSync } from 'node:fs';
import { access, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Task } from '../core/task.js';
import { LocalObjectStore } from '../storage/local.js';
import { type ObjectInfo, type ObjectStore, assertKey, contentTypeOf } from '../storage/port.js';
import { type ServeOptions, type ServeResult, serveObject } from '../storage/serve.js';

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

/** `REELAY_FILES`: result URLs answered with the bytes (`proxy`) or a 302 to a presigned URL (`redirect`, S3 only). */
export type FilesMode = 'proxy' | 'redirect';

export interface ResultFilesOptions {
  /** Where results are kept (default: the folder `<dataDir>/results`, as before the object store). */
  objects?: ObjectStore;
  /** How result URLs are answered (default `proxy`; `redirect` means something only for a store that presigns, S3). */
  filesMode?: FilesMode;
}

/** What `serve` takes: `serveObject`'s options, the mode defaulting to the configured one. */
export type FileServeOptions = Omit<ServeOptions, 'mode'> & { mode?: FilesMode };

/** Work files untouched this long are removed (`sweepWork`), at most once per `WORK_SWEEP_EVERY_MS`. */
export const WORK_MAX_AGE_MS = 24 * 3600_000;
const WORK_SWEEP_EVERY_MS = 3600_000;

/**
 * A task's results, in an object store (`storage/port.ts`: a local folder by default, or an S3
 * bucket many processes share), under the key `<shard>/<fileToken>-<name>` (the shard is the
 * token's first two characters), served at `<publicUrl>/files/<fileToken>/<name>`. The token is
 * random per task, so a URL can be shared without an API key and cannot be guessed. With the
 * default store the key is the file `<dataDir>/results/<key>`, the layout of every Reelay before.
 * Keys of the older per-task layout (`<fileToken>/<name>`) are read, served and removed where they
 * exist, never written.
 *
 * Tools that need a path (ffmpeg, ffprobe, providers uploading inputs) work in the **work folder**,
 * `<dataDir>/work`, on the same volume as the default results folder:
 * - a new file is made at `scratch()` (the key's path under the work folder; writers write a
 *   temporary name and rename it there when complete) and handed over with `store()`, which moves
 *   it: a rename into the local store (zero copy), an upload then unlink for S3;
 * - `local()` gives a path that holds a stored file: the local store's own file (zero copy), or,
 *   for S3, a copy downloaded into `<work>/copies/<key>` and reused while it is there.
 * Copies are dropped by `release()` when a task's lifecycle no longer needs them (the engine calls
 * it when a task ends or a rendition is made) and by `remove()`; anything else in the work folder
 * (a crashed step's scratch, a still's copy made by an API process) is removed once it has not been
 * touched for a day (`sweepWork`, run by this class at most hourly while it is used).
 */
export class ResultFiles {
  readonly objects: ObjectStore;
  /** `<dataDir>/work`: files being made, and this machine's copies of stored ones. */
  readonly workDir: string;
  readonly filesMode: FilesMode;
  private readonly copiesDir: string;
  /** Shard folders of the work folder this process has made (the work sweep never removes them). */
  private readonly shards = new Set<string>();
  /** Copies being downloaded, by key: callers at the same time share one download. */
  private readonly copying = new Map<string, Promise<string | undefined>>();
  private sweptAt = 0;
  /** The work sweep last started in the background (`sweepSoon`). */
  private sweeping: Promise<number> = Promise.resolve(0);

  constructor(
    dataDir: string,
    private readonly publicUrl: string,
    opts: ResultFilesOptions = {},
  ) {
    this.objects = opts.objects ?? LocalObjectStore.openSync(join(dataDir, 'results'));
    this.filesMode = opts.filesMode ?? 'proxy';
    this.workDir = join(dataDir, 'work');
    this.copiesDir = join(this.workDir, 'copies');
    mkdirSync(this.workDir, { recursive: true });
  }

  /** The object key of a task's file. */
  key(task: Pick<Task, 'fileToken'>, name: string): string {
    return flatKey(task.fileToken, name);
  }

  /**
   * The key an artifact row's `path` names: a key (rows written since results went through the
   * object store), or an absolute path in a results folder (older rows), whose last two segments
   * are its key in either layout, wherever that folder was.
   */
  keyOf(ref: string): string {
    const key = isAbsolute(ref) ? ref.split(/[\\/]+/).filter(Boolean).slice(-2).join('/') : ref;
    assertKey(key);
    return key;
  }

  /**
   * Where to make a new file of the task, in the work folder, to `store` once complete. Write it
   * under a temporary name and rename it here (or make it in one step that leaves nothing on
   * failure), so a file found here is whole. Its folder is made once per process.
   */
  async scratch(task: Pick<Task, 'fileToken'>, name: string): Promise<string> {
    this.sweepSoon();
    const shard = task.fileToken.slice(0, 2);
    if (!this.shards.has(shard)) {
      // Asynchronous: on some volumes a `mkdir` costs half a millisecond of kernel time.
      await mkdir(join(this.workDir, shard), { recursive: true });
      this.shards.add(shard);
    }
    return join(this.workDir, this.key(task, name));
  }

  /**
   * Stores `file` (a scratch file) as the task's `name`, moving it: it is gone afterwards, unless
   * `keep` asks to keep it as this machine's copy (S3: for a step that reads it next, so it is not
   * downloaded again). The content type defaults to the name's (`contentTypeOf`).
   */
  async store(task: Pick<Task, 'fileToken'>, name: string, file: string, opts: { contentType?: string; keep?: boolean } = {}): Promise<ObjectInfo> {
    const key = this.key(task, name);
    const contentType = opts.contentType ?? contentTypeOf(name);
    const copy = join(this.copiesDir, key);
    if (this.objects.localPath || !opts.keep) {
      const info = await this.objects.putFile(key, file, { contentType, move: true });
      // A copy of what the key held before is stale now.
      if (!this.objects.localPath) await rm(copy, { force: true });
      return info;
    }
    const info = await this.objects.putFile(key, file, { contentType });
    await mkdir(dirname(copy), { recursive: true });
    await rename(file, copy);
    return info;
  }

  /** Stores bytes in memory (an input image, an uploaded video) as the task's `name` (`keep`: see `store`). */
  async storeBytes(task: Pick<Task, 'fileToken'>, name: string, bytes: Buffer, opts: { contentType?: string; keep?: boolean } = {}): Promise<ObjectInfo> {
    const file = await this.scratch(task, name);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return this.store(task, name, file, opts);
  }

  /**
   * A local path holding the task's stored `name` (this layout's, else the older one's), for a tool
   * that needs a path; undefined when it is not stored. Read it, never write it. The local store
   * gives its own file; S3 a copy in the work folder (see the class comment for how long it stays).
   */
  async local(task: Pick<Task, 'fileToken'>, name: string): Promise<string | undefined> {
    return (await this.localOfKey(this.key(task, name))) ?? (await this.localOfKey(legacyKey(task.fileToken, name)));
  }

  /** `local` for an artifact row's `path` (see `keyOf`). */
  async localOf(ref: string): Promise<string | undefined> {
    return this.localOfKey(this.keyOf(ref));
  }

  /** The stored `name` of the task (this layout's, else the older one's), or undefined. */
  async exists(task: Pick<Task, 'fileToken'>, name: string): Promise<ObjectInfo | undefined> {
    return (await this.objects.head(this.key(task, name))) ?? (await this.objects.head(legacyKey(task.fileToken, name)));
  }

  /** Removes one stored file of the task, in both layouts, and this machine's copy of it. */
  async delete(task: Pick<Task, 'fileToken'>, name: string): Promise<void> {
    const keys = [this.key(task, name), legacyKey(task.fileToken, name)];
    await this.objects.delete(keys);
    await Promise.all(keys.map((k) => rm(join(this.copiesDir, k), { force: true })));
  }

  /**
   * Answers a GET or HEAD of `/files/<token>/<name>` (or a door's download) from the store:
   * Range, ETag, 304, or a redirect (`serveObject`). `found: false`, with nothing sent, for a token
   * or name no task could have (nothing outside the results is reachable) or a file not stored:
   * the caller answers its own 404.
   */
  async serve(request: FastifyRequest, reply: FastifyReply, token: string, name: string, opts: FileServeOptions = {}): Promise<ServeResult> {
    if (!TOKEN.test(token) || !NAME.test(name) || name.includes('..')) return { found: false };
    const o: ServeOptions = { ...opts, mode: opts.mode ?? this.filesMode };
    const served = await serveObject(request, reply, this.objects, flatKey(token, name), o);
    return served.found ? served : serveObject(request, reply, this.objects, legacyKey(token, name), o);
  }

  url(task: Pick<Task, 'fileToken'>, name: string): string {
    return `${this.publicUrl}/files/${task.fileToken}/${name}`;
  }

  /**
   * Removes a task's files: every name a task's files can have (videos, stills, input images, and
   * the scratch names data folders kept in the results before the work folder), in both layouts
   * (the local store's older per-task folder goes whole), and its work files on this machine.
   */
  async remove(task: Pick<Task, 'fileToken'> & { spec: Pick<Task['spec'], 'images'> }): Promise<void> {
    const names: string[] = [];
    for (const v of [VIDEO_FILE, HD_FILE, UHD_FILE, FRAME_FILE]) names.push(v, `${v}.tmp.mp4`, `${v}.pid`);
    for (const s of STILL_FILES) names.push(s, `${s}.tmp`);
    names.push(SOURCE_FILE, `${SOURCE_FILE}.tmp`);
    for (let i = 0; i < task.spec.images.length; i++) for (const ext of INPUT_EXTENSIONS) names.push(inputFileName(i, ext));
    const token = task.fileToken;
    if (this.objects.localPath) {
      await this.objects.delete(names.map((n) => flatKey(token, n)));
      await this.objects.deletePrefix(`${token}/`);
    } else {
      // One request; an S3 folder of the older layout holds nothing but objects of these names.
      await this.objects.delete(names.flatMap((n) => [flatKey(token, n), legacyKey(token, n)]));
    }
    await this.dropWork(token, true);
  }

  /**
   * Drops this machine's copies of the task's stored files (S3), once its lifecycle no longer reads
   * them; a later reader downloads again. A no-op for the local store, which makes no copies.
   */
  async release(task: Pick<Task, 'fileToken'>): Promise<void> {
    if (!this.objects.localPath) await this.dropWork(task.fileToken, false);
  }

  /**
   * Whether results can be stored (for readiness): the store's own check (a write in the folder,
   * or the bucket answering) and a writable work folder. Rejects with the reason.
   */
  async check(): Promise<void> {
    const [store, work] = await Promise.all([
      this.objects.check(1500),
      access(this.workDir, constants.W_OK).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e.code ?? e.message,
      ),
    ]);
    if (!store.ok) throw new Error(store.error ?? `${this.objects.description} is not usable`);
    if (work) throw new Error(`the work folder ${this.workDir} is not writable (${work})`);
  }

  /**
   * Local store only, for tools and tests that read a data folder directly: the path of a task's
   * file, this layout's or, where only that exists, the older per-task folder's.
   */
  existing(task: Pick<Task, 'fileToken'>, name: string): string {
    const at = this.objects.localPath;
    if (!at) throw new Error(`${this.objects.description} is not a folder: use local()`);
    const flat = at.call(this.objects, this.key(task, name));
    if (existsSync(flat)) return flat;
    const legacy = at.call(this.objects, legacyKey(task.fileToken, name));
    return existsSync(legacy) ? legacy : flat;
  }

  /** Removes files in the work folder last modified before `before` (ms); resolves to how many. */
  async sweepWork(before: number): Promise<number> {
    let removed = 0;
    // `<work>/<shard>/<file>`, `<work>/copies/<shard>/<file>`, `<work>/copies/<token>/<file>`.
    const walk = async (dir: string, depth: number): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (depth < 2) await walk(p, depth + 1);
          continue;
        }
        const st = await stat(p).catch(() => undefined);
        if (st && st.mtimeMs < before) {
          await rm(p, { force: true });
          removed++;
        }
      }
    };
    await walk(this.workDir, 0);
    return removed;
  }

  /** Closes the object store (its connections, for S3). */
  async close(): Promise<void> {
    await this.settled();
    await this.objects.close();
  }

  private async localOfKey(key: string): Promise<string | undefined> {
    const own = this.objects.localPath?.(key);
    if (own !== undefined) return (await isFile(own)) ? own : undefined;
    this.sweepSoon();
    const copy = join(this.copiesDir, key);
    // A copy in use is touched, so the work sweep leaves it.
    const now = new Date();
    if (await utimes(copy, now, now).then(() => true, () => false)) return copy;
    let pending = this.copying.get(key);
    if (!pending) {
      pending = this.objects
        .getFile(key, copy)
        .then((got) => (got ? copy : undefined))
        .finally(() => this.copying.delete(key));
      this.copying.set(key, pending);
    }
    return pending;
  }

  /** Removes the task's copies (and, with `scratch`, its scratch files) from the work folder. */
  private async dropWork(token: string, scratch: boolean): Promise<void> {
    const shard = token.slice(0, 2);
    const dirs = [join(this.copiesDir, shard), ...(scratch ? [join(this.workDir, shard)] : [])];
    for (const dir of dirs) {
      const names = await readdir(dir).catch(() => [] as string[]);
      await Promise.all(names.filter((n) => n.startsWith(`${token}-`)).map((n) => rm(join(dir, n), { force: true })));
    }
    await rm(join(this.copiesDir, token), { recursive: true, force: true });
  }

  /** Starts a work sweep when the last one is an hour old (the first use after a start sweeps). */
  private sweepSoon(): void {
    const now = Date.now();
    if (now - this.sweptAt < WORK_SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    this.sweeping = this.sweepWork(now - WORK_MAX_AGE_MS).catch(() => 0);
  }

  /** Resolves once a work sweep this class started in the background has ended. */
  async settled(): Promise<void> {
    await this.sweeping;
  }
}

function flatKey(token: string, name: string): string {
  return `${token.slice(0, 2)}/${token}-${name}`;
}

function legacyKey(token: string, name: string): string {
  return `${token}/${name}`;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isFile(),
    () => false,
  );
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
