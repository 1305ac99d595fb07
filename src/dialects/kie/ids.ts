import { randomBytes } from '../../core/ids.js';

/**
 * kie task id: 32 lowercase hex characters, as live kie ids look. The first 12 are the time in
 * milliseconds (as in a UUIDv7) and the other 20 random (80 bits): ids made one after another
 * sort together, so each new task's rows go to the same few pages of the indexes keyed by task id
 * (tasks, attempts, artifacts, deliveries) instead of one random page each. A batch of 16 inserts
 * cost 14–15 µs per row with random keys and 7.2 µs with these, on a 100,000-row table.
 */
export function kieTaskId(nowMs = Date.now()): string {
  return nowMs.toString(16).padStart(12, '0').slice(-12) + randomBytes(10).toString('hex');
}

export const KIE_ID = /^[0-9a-f]{32}$/;
