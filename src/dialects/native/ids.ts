import { randomBytes } from '../../core/ids.js';

/** The last id made in this process: ids made in one millisecond count up from it. */
let last = { ms: -1, tail: 0n };

/**
 * A task id of the native API: `task_` and 32 lowercase hex characters, the first 12 the time in
 * milliseconds and the other 20 random (79 bits, with room to count up), so ids made one after
 * another sort together. Ids made in the same millisecond by one process count up from the
 * first's random part (as monotonic ULIDs do): they sort in the order they were made, as do the
 * tasks of one millisecond in a list.
 */
export function nativeTaskId(nowMs = Date.now()): string {
  const tail = nowMs === last.ms ? last.tail + 1n : BigInt(`0x${randomBytes(10).toString('hex')}`) >> 1n;
  last = { ms: nowMs, tail };
  return `task_${nowMs.toString(16).padStart(12, '0').slice(-12)}${tail.toString(16).padStart(20, '0')}`;
}

export const NATIVE_ID = /^task_[0-9a-f]{32}$/;
