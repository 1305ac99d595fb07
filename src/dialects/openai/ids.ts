import { randomBytes } from '../../core/ids.js';

/**
 * OpenAI video id: `video_` and 32 lowercase hex characters, as OpenAI's own ids look. The first
 * 12 hex are the time in milliseconds and the other 20 random (80 bits), so ids made one after
 * another sort together and land on the same index pages (the reasoning of the kie ids).
 */
export function videoId(nowMs = Date.now()): string {
  return `video_${nowMs.toString(16).padStart(12, '0').slice(-12)}${randomBytes(10).toString('hex')}`;
}

export const VIDEO_ID = /^video_[0-9a-f]{32}$/;
