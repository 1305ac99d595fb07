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
