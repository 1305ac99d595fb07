import { randomBytes } from '../../core/ids.js';

/**
 * A task id of the native API: `task_` and 32 lowercase hex characters, the first 12 the time in
 * milliseconds and the other 20 random (80 bits), so ids made one after another sort together.
 */
export function nativeTaskId(nowMs = Date.now()): string {
  return `task_${nowMs.toString(16).padStart(12, '0').slice(-12)}${randomBytes(10).toString('hex')}`;
}

export const NATIVE_ID = /^task_[0-9a-f]{32}$/;
