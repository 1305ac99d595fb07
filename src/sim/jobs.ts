import type { JobFault } from './faults.js';

/** One simulated upstream job. Its status is computed from the clock, so nothing runs per job. */
export interface SimJob {
  id: string;
  upstream: string;
  model: string;
  prompt: string;
  aspect: '16:9' | '9:16';
  /** The create body as received (kie `paramJson`, kkiai `detail.req`). */
  request: unknown;
  createdAt: number;
  /** When the job finishes (succeeds or fails, per its fault). */
  readyAt: number;
  fault?: JobFault;
  cancelled?: boolean;
}

export type SimStatus =
  | { state: 'running'; progress: number }
  | { state: 'succeeded' }
  | { state: 'failed'; reason: 'fail' | 'safety' | 'cancelled'; message: string }
  | { state: 'lost' };

/** An extension being joined for a job: its video once joined, or why the join failed. */
export interface JoinedExtension {
  video?: Buffer;
  error?: string;
}

/**
 * A job's status while its extension may still be being joined: held at "running" (99 %) until
 * the video is there; a failed join is an invalid input.
 */
export function extensionStatus(s: SimStatus, ext: JoinedExtension | undefined): SimStatus | { state: 'invalid'; message: string } {
  if (s.state !== 'succeeded' || !ext) return s;
  if (ext.error) return { state: 'invalid', message: ext.error };
  return ext.video ? s : { state: 'running', progress: 99 };
}

export const SAFETY_TEXT = 'your request contains unsafe prompt or images, such as porn, violence, minors etc., has been rejected by google, please change your prompt or images and try again';
export const FAIL_TEXT = 'upstream generation error: the model returned no video (internal error 13)';

export class SimJobs {
  private readonly jobs = new Map<string, SimJob>();
  /** Jobs dropped after this long, so a long soak does not grow without bound. */
  private readonly keepMs = 2 * 60 * 60_000;

  add(job: SimJob): SimJob {
    this.jobs.set(job.id, job);
    if (this.jobs.size % 10_000 === 0) this.prune(Date.now());
    return job;
  }

  get(id: string): SimJob | undefined {
    return this.jobs.get(id);
  }

  /** Every job, oldest first. */
  all(): Iterable<SimJob> {
    return this.jobs.values();
  }

  /** Ids of one upstream's jobs, oldest first. */
  *ids(upstream: string): Iterable<string> {
    for (const [id, job] of this.jobs) if (job.upstream === upstream) yield id;
  }

  get size(): number {
    return this.jobs.size;
  }

  status(job: SimJob, now: number): SimStatus {
    if (job.cancelled) return { state: 'failed', reason: 'cancelled', message: 'cancelled by the client' };
    if (job.fault === 'lost') return { state: 'lost' };
    if (job.fault === 'stall' || now < job.readyAt) {
      const span = Math.max(1, job.readyAt - job.createdAt);
      const progress = job.fault === 'stall' ? 42 : Math.min(99, Math.floor(((now - job.createdAt) / span) * 100));
      return { state: 'running', progress };
    }
    if (job.fault === 'fail') return { state: 'failed', reason: 'fail', message: FAIL_TEXT };
    if (job.fault === 'safety') return { state: 'failed', reason: 'safety', message: SAFETY_TEXT };
    return { state: 'succeeded' };
  }

  private prune(now: number): void {
    for (const [id, job] of this.jobs) if (now - job.createdAt > this.keepMs) this.jobs.delete(id);
  }
}
