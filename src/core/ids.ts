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

/** kie task id: 32 lowercase hex characters, as live kie ids look. */
export function kieTaskId(): string {
  return randomBytes(16).toString('hex');
}

/** The random folder name of a task's result files (128 bits, URL-safe). */
export function fileToken(): string {
  return randomBytes(16).toString('base64url');
}

/** An opaque media id, shaped like the seed's (`CAMa…`): base64url of random bytes. */
export function mediaId(): string {
  return `CAMa${randomBytes(48).toString('base64url')}`;
}
