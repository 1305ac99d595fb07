import { ReelayError } from './errors.js';
import type { Task, Variant } from './types.js';

const FIELDS: Record<Variant, keyof Task['outputs']> = { video: 'video', '720p': 'video_720p', '1080p': 'video_1080p', '4k': 'video_4k' };

/** The URL of a task's file, or the error that says why there is none (yet). */
export function urlOf(task: Task, variant: Variant): string {
  const field = FIELDS[variant];
  if (field === undefined) throw new ReelayError(`variant must be one of ${Object.keys(FIELDS).join(', ')}, got '${variant}'`, { code: 'validation', param: 'variant', taskId: task.id });
  const url = task.outputs[field];
  if (url) return url;
  if (task.state === 'expired') throw new ReelayError(`task ${task.id} has expired: its files are gone`, { code: 'expired', taskId: task.id, task });
  if (task.state !== 'succeeded') throw new ReelayError(`task ${task.id} is ${task.state}: it has no video yet`, { code: 'not_ready', taskId: task.id, task });
  throw new ReelayError(`task ${task.id} has no ${variant} video`, { code: 'not_found', param: 'variant', taskId: task.id, task });
}

/** A body whose length is not what its `Content-Length` said. */
export class ShortBodyError extends Error {
  constructor(
    readonly bytes: number,
    readonly expected: number,
  ) {
    super(`the body ended after ${bytes} of ${expected} bytes`);
  }
}

/**
 * Writes `body` to `to` atomically: into a temporary file beside it, renamed over `to` once every
 * byte is on disk, so `to` is never a partial file. The temporary file is removed on any failure.
 * Node (and runtimes with `node:fs`) only.
 */
export async function writeAtomically(body: ReadableStream<Uint8Array>, to: string, signal?: AbortSignal, expectedBytes?: number): Promise<number> {
  const fs = await import('node:fs/promises');
  const tmp = `${to}.${crypto.randomUUID().slice(0, 8)}.part`;
  const reader = body.getReader();
  let file: Awaited<ReturnType<typeof fs.open>>;
  try {
    file = await fs.open(tmp, 'wx');
  } catch (e) {
    // Nowhere to write: the answer's body is let go, so its connection is free again.
    await reader.cancel().catch(() => {});
    throw e;
  }
  let bytes = 0;
  let moved = false;
  try {
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        let off = 0;
        while (off < value.byteLength) off += (await file.write(value, off, value.byteLength - off)).bytesWritten;
      }
      await file.sync();
    } finally {
      await file.close();
    }
    // A body cut short is never renamed into place.
    if (expectedBytes !== undefined && expectedBytes !== bytes) throw new ShortBodyError(bytes, expectedBytes);
    await fs.rename(tmp, to);
    moved = true;
    return bytes;
  } finally {
    if (!moved) {
      await reader.cancel().catch(() => {});
      await fs.rm(tmp, { force: true }).catch(() => {});
    }
  }
}
