import { copyFile, link, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { Artifact, Task } from '../core/task.js';
import { type Binaries, killOrphan, run } from '../media/ffmpeg.js';
import { probe } from '../media/probe.js';
import { thumbnailArgs } from '../media/stills.js';
import { upscaleArgs } from '../providers/local/scene.js';
import type { FetchedResult, Provider, SubmitInput, Succeeded } from '../providers/port.js';
import { type ResultFiles, SOURCE_FILE, UHD_FILE, UHD_THUMBNAIL, VIDEO_FILE, finalVideoName, hdFileName, inputFileName } from '../results/files.js';
import type { Store } from '../store/port.js';
import type { FetchedImage } from './inputs.js';

export interface OutputsContext {
  store: Store;
  files: ResultFiles;
  binaries: Binaries;
  imageMaxBytes: number;
}

/** The width and height of an upsampled rendition (an exact `frame` when the task asked for one). */
export function hdSize(task: Task): { w: number; h: number } {
  if (task.spec.frame) return { w: task.spec.frame.width, h: task.spec.frame.height };
  const [long, short] = task.spec.resolution === '4k' ? [3840, 2160] : [1920, 1080];
  return task.spec.aspectRatio === '9:16' ? { w: short, h: long } : { w: long, h: short };
}

/**
 * The files a task's steps make and read, through `ResultFiles`: input images, the video an
 * extend continues, the downloaded video, the upscaled renditions and the 4k thumbnail. Each is
 * made in the work folder, checked, then stored; an artifact's `path` is its object key.
 *
 * Safe to run again after a crash: a file already stored is reused, not made again (`exists`); an
 * ffmpeg output renamed into the work folder but not stored yet is complete, and is stored as it
 * is; nothing half-written is ever stored (ffmpeg and the copies write a temporary name first, a
 * download is stored only once its `fetchResult` resolved in the same run). Errors of the store
 * (`ObjectStoreError`) pass through for the steps to wait on.
 */
export class Outputs {
  constructor(private readonly ctx: OutputsContext) {}

  /** Stores a fetched input image as the task's `input-<i>.<ext>` (kept on this machine for the submit that follows). */
  async storeImage(task: Task, i: number, got: FetchedImage): Promise<Artifact> {
    const info = await this.ctx.files.storeBytes(task, inputFileName(i, got.ext), got.bytes, { contentType: got.contentType, keep: true });
    return artifact(task.id, `input_${i}`, info.key, got.contentType, info.bytes);
  }

  /**
   * Stores the video an extend task continues (`spec.video`) as the task's `source.mp4`: the final
   * video of the source task (a hard link where the volume allows, so the local store makes no copy
   * and it outlives the source's deletion), or the bytes of a data: URL. It must be a video ffprobe
   * can read: one that is not is never stored (and one stored at create is removed).
   */
  async storeSource(task: Task): Promise<Artifact> {
    const { files, store } = this.ctx;
    const video = task.spec.video!;
    let stored = await files.exists(task, SOURCE_FILE);
    let p;
    if (stored) {
      const file = await files.local(task, SOURCE_FILE);
      p = file ? await probe(this.ctx.binaries.ffprobe, file).catch(() => undefined) : undefined;
      if (!p?.video) {
        await files.delete(task, SOURCE_FILE);
        throw new Error('it is not a video Reelay can read');
      }
    } else {
      if (video === 'upload') throw new Error('the uploaded video is gone');
      const out = await files.scratch(task, SOURCE_FILE);
      const tmp = `${out}.tmp`;
      await rm(tmp, { force: true });
      if (video.startsWith('source:')) {
        // The video another extension continued: its stored copy.
        const id = video.slice('source:'.length);
        const source = await store.getTask(task.tenantId, id);
        const file = source && (await files.local(source, SOURCE_FILE));
        if (!file) throw new Error(`extension ${id} no longer has the video it continued`);
        await linkOrCopy(file, tmp);
      } else if (video.startsWith('task:')) {
        const id = video.slice('task:'.length);
        const source = await store.getTask(task.tenantId, id);
        const name = source && finalVideoName(source);
        if (!source || !name) throw new Error(`task ${id} has no finished video (it is ${source?.state ?? 'gone'})`);
        const file = await files.local(source, name);
        if (!file) throw new Error(`task ${id} no longer has its video`);
        await linkOrCopy(file, tmp);
      } else {
        const m = /^data:[^;,]*(?:;[^;,]*)*;base64,(.*)$/s.exec(video);
        if (!m) throw new Error('malformed data: URL');
        const bytes = Buffer.from(m[1]!, 'base64');
        if (bytes.length > this.ctx.imageMaxBytes * 8) throw new Error(`it is ${bytes.length} bytes, over the limit of ${this.ctx.imageMaxBytes * 8}`);
        await writeFile(tmp, bytes);
      }
      await rename(tmp, out);
      p = await probe(this.ctx.binaries.ffprobe, out).catch(() => undefined);
      if (!p?.video) {
        await rm(out, { force: true });
        throw new Error('it is not a video Reelay can read');
      }
      stored = await files.store(task, SOURCE_FILE, out, { contentType: 'video/mp4', keep: true });
    }
    return { ...artifact(task.id, 'input_video', stored.key, 'video/mp4', stored.bytes), width: p.video.width, height: p.video.height, durationMs: p.durationMs, codec: p.video.codec };
  }

  /** kie `Auto`: 9:16 when the first image is taller than wide, else 16:9. */
  async aspectOfFirstImage(task: Task, fresh: Artifact[]): Promise<'16:9' | '9:16'> {
    const first = fresh.find((a) => a.kind === 'input_0') ?? (await this.ctx.store.listArtifacts(task.id)).find((a) => a.kind === 'input_0');
    const file = first && (await this.ctx.files.localOf(first.path));
    if (!file) return '16:9';
    try {
      const p = await probe(this.ctx.binaries.ffprobe, file);
      return p.video && p.video.height > p.video.width ? '9:16' : '16:9';
    } catch {
      return '16:9';
    }
  }

  /** The stored input images and video to extend of a task, as local paths for a provider's submit. */
  async submitInputs(task: Task): Promise<{ inputs: SubmitInput[]; source?: SubmitInput }> {
    // A task without images or a video to extend has no input files to look up.
    if (task.spec.images.length === 0 && task.spec.video === undefined) return { inputs: [] };
    const stored = await this.ctx.store.listArtifacts(task.id);
    const localOf = async (a: Artifact): Promise<string> => {
      const path = await this.ctx.files.localOf(a.path);
      if (!path) throw new Error(`the stored input ${a.kind} (${a.path}) is gone`);
      return path;
    };
    const inputs: SubmitInput[] = [];
    for (const a of stored.filter((x) => /^input_\d+$/.test(x.kind)).sort((x, y) => x.kind.localeCompare(y.kind))) {
      inputs.push({ path: await localOf(a), contentType: a.contentType, url: task.spec.images[Number(a.kind.slice('input_'.length))] ?? '' });
    }
    const sourceFile = stored.find((a) => a.kind === 'input_video');
    if (!sourceFile) return { inputs };
    return { inputs, source: { path: await localOf(sourceFile), contentType: sourceFile.contentType, url: task.spec.video ?? '' } };
  }

  /**
   * Downloads a finished job's video into the work folder (the provider writes the scratch path)
   * and probes it, from what the download read on the way when it can. Not stored yet: see
   * `storeVideo`. A file that is no video is removed.
   */
  async fetchVideo(task: Task, provider: Provider, upstreamId: string, outcome: Succeeded): Promise<{ file: string; video: Artifact }> {
    const file = await this.ctx.files.scratch(task, VIDEO_FILE);
    const fetched = await provider.fetchResult(upstreamId, file, outcome);
    try {
      return { file, video: await this.probeVideo(task.id, 'video', file, fetched || undefined) };
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
  }

  /**
   * Stores the downloaded video; with `final`, also as that rendition (a provider that drew the
   * final size itself), a hard link of the same file, so the local store keeps one copy. `keep`
   * keeps the video on this machine for the upsample that follows.
   */
  async storeVideo(task: Task, file: string, video: Artifact, opts: { final?: string; keep?: boolean } = {}): Promise<Artifact[]> {
    const files = this.ctx.files;
    if (!opts.final) {
      const info = await files.store(task, VIDEO_FILE, file, { contentType: 'video/mp4', keep: opts.keep ?? false });
      return [{ ...video, path: info.key, bytes: info.bytes }];
    }
    const finalFile = await files.scratch(task, opts.final);
    await rm(finalFile, { force: true });
    await linkOrCopy(file, finalFile);
    const info = await files.store(task, VIDEO_FILE, file, { contentType: 'video/mp4' });
    const hd = await files.store(task, opts.final, finalFile, { contentType: 'video/mp4' });
    return [
      { ...video, path: info.key, bytes: info.bytes },
      { ...video, kind: 'video_hd', path: hd.key, bytes: hd.bytes },
    ];
  }

  /**
   * Scales the stored video up to the task's rendition (`hdFileName`); one stored already (made
   * before a crash) is kept. `keep` keeps the rendition on this machine for a step that reads it
   * next (the 4k thumbnail).
   */
  async makeHd(task: Task, kind = 'video_hd', opts: { keep?: boolean } = {}): Promise<Artifact> {
    const files = this.ctx.files;
    const name = hdFileName(task.spec);
    const stored = await files.exists(task, name);
    if (stored) {
      const file = await files.local(task, name);
      if (!file) throw new Error(`${name} vanished while it was read`);
      return { ...(await this.probeVideo(task.id, kind, file)), path: stored.key, bytes: stored.bytes };
    }
    const out = await files.scratch(task, name);
    if (!(await isFile(out))) {
      const { w, h } = hdSize(task);
      const src = await files.local(task, VIDEO_FILE);
      if (!src) throw new Error('the video to upscale is not stored');
      const tmp = out + '.tmp.mp4';
      const pidFile = out + '.pid';
      killOrphan(pidFile, tmp);
      try {
        await run(this.ctx.binaries.ffmpeg, upscaleArgs(src, tmp, w, h), { timeoutMs: 20 * 60_000, pidFile });
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      await rename(tmp, out);
    }
    const hd = await this.probeVideo(task.id, kind, out);
    const info = await files.store(task, name, out, { contentType: 'video/mp4', keep: opts.keep ?? false });
    return { ...hd, path: info.key, bytes: info.bytes };
  }

  /** The JPEG thumbnail of the task's 4k rendition, made once (one stored already is kept). */
  async uhdThumbnail(task: Task): Promise<Artifact> {
    const files = this.ctx.files;
    const have = await files.exists(task, UHD_THUMBNAIL);
    if (have) return artifact(task.id, 'thumbnail_4k', have.key, 'image/jpeg', have.bytes);
    const thumb = await files.scratch(task, UHD_THUMBNAIL);
    if (!(await isFile(thumb))) {
      // The lifecycle's 4k video may be in the older per-task layout: `local` finds it there too.
      const uhd = await files.local(task, UHD_FILE);
      if (!uhd) throw new Error('the 4k video is not stored');
      const seconds = ((await probe(this.ctx.binaries.ffprobe, uhd)).durationMs ?? 0) / 2000;
      const tmp = `${thumb}.tmp`;
      killOrphan(`${thumb}.pid`, tmp);
      try {
        await run(this.ctx.binaries.ffmpeg, thumbnailArgs(uhd, tmp, 'jpg', seconds, 3840), { timeoutMs: 120_000, pidFile: `${thumb}.pid` });
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      await rename(tmp, thumb);
    }
    const info = await files.store(task, UHD_THUMBNAIL, thumb, { contentType: 'image/jpeg' });
    return artifact(task.id, 'thumbnail_4k', info.key, 'image/jpeg', info.bytes);
  }

  /** Probes a video file: from what its download read on the way when it can, else the file. */
  private async probeVideo(taskId: string, kind: string, file: string, fetched?: FetchedResult): Promise<Artifact> {
    const p = fetched?.scanned.result() ?? (await probe(this.ctx.binaries.ffprobe, file));
    if (!p.video) throw new Error(`${kind} has no video stream`);
    const bytes = fetched?.bytes ?? (await stat(file)).size;
    return { ...artifact(taskId, kind, file, 'video/mp4', bytes), width: p.video.width, height: p.video.height, durationMs: p.durationMs, codec: p.video.codec };
  }
}

function artifact(taskId: string, kind: string, path: string, contentType: string, bytes: number): Artifact {
  return { taskId, kind, path, contentType, bytes, width: null, height: null, durationMs: null, codec: null, createdAt: Date.now() };
}

/** A hard link of `from` at `to`, or a copy where links cannot be made (another volume). */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isFile(),
    () => false,
  );
}
