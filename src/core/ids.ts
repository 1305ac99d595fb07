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

/** The random folder name of a task's result files (128 bits, URL-safe). */
export function fileToken(): string {
  return randomBytes(16).toString('base64url');
}

/** An opaque media id, shaped like the seed's (`CAMa…`): base64url of random bytes. */
export function mediaId(): string {
  return `CAMa${randomBytes(48).toString('base64url')}`;
}
