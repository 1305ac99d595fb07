import { randomBytes } from '../../core/ids.js';

/**
 * Operation id of a task made through the Gemini door, also its file id: 32 lowercase hex
 * characters. `@google/genai`'s `files.download` cuts the file id out of `video.uri` with
 * `/[a-z0-9]+/`, so nothing else may appear in it. The first 12 characters are the time in
 * milliseconds and the other 20 random (80 bits), so ids made together sort together (the index
 * pages they go to stay few, as with kie ids).
 */
export function geminiTaskId(nowMs = Date.now()): string {
  const time = nowMs.toString(16).padStart(12, '0').slice(-12);
  return `${time}${randomBytes(10).toString('hex')}`;
}

export const GEMINI_ID = /^[0-9a-f]{32}$/;

/**
 * The file id of any task's video, whichever door made it: the task id itself when it is
 * lowercase `[a-z0-9]` (this door's and kie's ids), else `x` and the id's UTF-8 bytes in hex (an
 * OpenAI `video_…` or a kkiai `veo3.1-fast:…` id), so `files.download` keeps the whole of it.
 * Plain ids never start with `x` here: an id that does is hex-encoded too.
 */
export function fileIdOf(taskId: string): string {
  return /^[a-wyz0-9][a-z0-9]*$/.test(taskId) ? taskId : `x${Buffer.from(taskId, 'utf8').toString('hex')}`;
}

/** The task id behind a file id (`fileIdOf` reversed); undefined for one no task can have. */
export function taskIdOfFile(fileId: string): string | undefined {
  if (!/^[a-z0-9]+$/.test(fileId)) return undefined;
  if (!fileId.startsWith('x')) return fileId;
  const hex = fileId.slice(1);
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex').toString('utf8');
}
