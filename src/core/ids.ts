import { randomBytes, randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `n` random letters and digits (uniform: no modulo bias). */
export function alnum(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[randomInt(ALNUM.length)];
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
