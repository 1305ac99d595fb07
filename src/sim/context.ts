// What the simulator's server and its upstreams share: the options and the context each upstream
// is handed. Kept apart from server.ts, which lists the upstreams, so that no upstream imports the list.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Binaries } from '../media/ffmpeg.js';
import type { CreateFault, FaultPicker, FaultRates } from './faults.js';
import type { SimJob, SimJobs } from './jobs.js';
import type { SampleVideos } from './video.js';

export interface SimOptions {
  /** How long a job takes (default 3000 ms). `0` finishes at once. */
  durationMs: number;
  /** Fault rates (see `faults.ts`); prompts can also script faults with `[sim:…]` tags. */
  faults: FaultRates;
  /** `Retry-After` of the 429 fault, in seconds (default 2). */
  retryAfterSeconds: number;
  /** How long the `timeout` fault holds a request before answering 504 (default 120000 ms). */
  hangMs: number;
  /** Length of the served videos (default 8 s). */
  videoSeconds: number;
  /** `small` serves a few-kB test pattern instead of the local renderer's scene (load tests). */
  videoSize?: 'full' | 'small';
  /** Where the sample videos are made. */
  dir: string;
  binaries: Binaries;
  /** Keys the simulator accepts; empty accepts any non-empty bearer key. */
  keys: string[];
  /** Per-upstream timing and faults (`kie`, `kkiai`, `gemini`, `vertex`, `openai`, `replicate`, `fal`, `comfyui`). */
  upstreams?: Record<string, { durationMs?: number; faults?: FaultRates }>;
  random?: () => number;
}

/** What every simulated upstream shares. */
export interface SimContext {
  opts: SimOptions;
  jobs: SimJobs;
  faults: FaultPicker;
  videos: SampleVideos;
  /** Absolute base URL of this server as the client reached it (for result URLs). */
  base(req: FastifyRequest): string;
  /** Whether the request carries an acceptable key (`Authorization: Bearer`, `x-goog-api-key`, `?key=`). */
  authorized(req: FastifyRequest): boolean;
  /** Starts a job, or applies the create fault it drew. `refuse` answers in the upstream's envelope. */
  admit(req: FastifyRequest, reply: FastifyReply, input: AdmitInput, refuse: Refuse): Promise<SimJob | undefined>;
  /** Whether this status request fails with 500 (`poll-5xx`). */
  pollFails(job: SimJob): boolean;
  /** Runs `fn` after `ms` (timers are cleared when the simulator closes). */
  later(ms: number, fn: () => void): void;
  /** The URL of a job's video on this server. */
  fileUrl(req: FastifyRequest, job: SimJob): string;
  /** Serves a job's video: the sample of its aspect ratio, slowly for `slow-download`. */
  sendVideo(job: SimJob, reply: FastifyReply): Promise<FastifyReply>;
}

/** What an upstream's create handler hands over; the simulator adds the timing and the fault. */
export type AdmitInput = Pick<SimJob, 'id' | 'upstream' | 'model' | 'prompt' | 'aspect' | 'request'>;

/** Answers a create fault in the upstream's own envelope: `status` and a message. */
export type Refuse = (reply: FastifyReply, status: number, message: string, fault: CreateFault) => FastifyReply;
