import { alnum } from '../../core/ids.js';

/** kkiai task id: `<model>:<unix seconds>-<10 alphanumerics>`, e.g. `veo3.1-fast:1770350082-trii1OXZc3`. */
export function kkiaiTaskId(model: string, nowMs: number): string {
  return `${model}:${Math.floor(nowMs / 1000)}-${alnum(10)}`;
}

export const KKIAI_ID = /^[a-z0-9.\-]+:\d{9,11}-[A-Za-z0-9]{10}$/;
