import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Binaries } from '../media/ffmpeg.js';
import { type CreateFault, FaultPicker, type FaultRates, type JobFault } from './faults.js';
import { type SimJob, SimJobs } from './jobs.js';
import { comfyuiSim } from './upstreams/comfyui.js';
import { falSim } from './upstreams/fal.js';
import { googleSim } from './upstreams/google.js';
import { kieSim } from './upstreams/kie.js';
import { kkiaiSim } from './upstreams/kkiai.js';
import { openaiSim } from './upstreams/openai.js';
import { replicateSim } from './upstreams/replicate.js';
import { SampleVideos } from './video.js';

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

export const RECAPTCHA_TEXT = 'reCAPTCHA evaluation failed, please try again later (upstream 403 PERMISSION_DENIED)';

/** A simulator: its HTTP app and its jobs (tests count what the upstreams accepted). */
export interface Sim {
  app: FastifyInstance;
  jobs: SimJobs;
}

export async function buildSim(opts: SimOptions): Promise<Sim> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, forceCloseConnections: true });
  // OAuth token requests are form-encoded.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  // Multipart bodies (OpenAI's create from the SDK, ComfyUI uploads) are read with the Fetch API.
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 }, (req, body, done) => {
    new Response(body as Buffer, { headers: { 'content-type': req.headers['content-type'] ?? '' } })
      .formData()
      .then((form) => done(null, form), (e: Error) => done(Object.assign(e, { statusCode: 400 }), undefined));
  });
  const jobs = new SimJobs();
  const faults = new FaultPicker(opts.faults, opts.random);
  const pickers = new Map(Object.entries(opts.upstreams ?? {}).map(([u, o]) => [u, o.faults ? new FaultPicker(o.faults, opts.random) : faults]));
  const pickerOf = (upstream: string) => pickers.get(upstream) ?? faults;
  const videos = new SampleVideos(opts.dir, opts.binaries, opts.videoSeconds, opts.videoSize);
  const hanging = new Set<NodeJS.Timeout>();
  app.addHook('onClose', async () => {
    for (const t of hanging) clearTimeout(t);
  });

  const ctx: SimContext = {
    opts,
    jobs,
    faults,
    videos,
    base: (req) => `${req.protocol}://${req.headers.host ?? req.host}`,
    authorized(req) {
      const bearer = /^(?:Bearer|Key|Token)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const goog = req.headers['x-goog-api-key'];
      const query = (req.query as Record<string, unknown> | undefined)?.key;
      const key = bearer ?? (typeof goog === 'string' ? goog : undefined) ?? (typeof query === 'string' ? query : undefined);
      if (!key) return false;
      return opts.keys.length === 0 || opts.keys.includes(key);
    },
    async admit(_req, reply, input, refuse) {
      const picked = pickerOf(input.upstream).pick(input.prompt, input.upstream);
      switch (picked.create) {
        case '5xx':
          refuse(reply, 500, 'Internal Error, Please try again later.', '5xx');
          return undefined;
        case '429':
          reply.header('retry-after', String(opts.retryAfterSeconds));
          refuse(reply, 429, 'Rate limited: too many requests, please slow down', '429');
          return undefined;
        case 'recaptcha':
          refuse(reply, 403, RECAPTCHA_TEXT, 'recaptcha');
          return undefined;
        case 'malformed':
          reply.status(200).type('application/json').send('{"code":200,"data":{"taskId":');
          return undefined;
        case 'timeout':
          await new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              hanging.delete(t);
              resolve();
            }, opts.hangMs);
            hanging.add(t);
          });
          refuse(reply, 504, 'Gateway Timeout', 'timeout');
          return undefined;
        default:
      }
      const now = Date.now();
      const fault: JobFault | undefined = picked.job;
      const durationMs = opts.upstreams?.[input.upstream]?.durationMs ?? opts.durationMs;
      return jobs.add({ ...input, createdAt: now, readyAt: now + durationMs, ...(fault ? { fault } : {}) });
    },
    pollFails: (job) => pickerOf(job.upstream).pollFails(job.prompt, job.id),
    later(ms, fn) {
      const t = setTimeout(() => {
        hanging.delete(t);
        fn();
      }, ms);
      hanging.add(t);
    },
    fileUrl: (req, job) => `${ctx.base(req)}/sim/files/${encodeURIComponent(job.id)}.mp4`,
    async sendVideo(job, reply) {
      const bytes = await videos.bytes(job.aspect);
      reply.header('content-type', 'video/mp4').header('content-length', String(bytes.length));
      if (job.fault === 'slow-download') return reply.send(throttled(bytes, 256 * 1024));
      return reply.send(bytes);
    },
  };

  // The sample videos are made before the simulator answers anything, so no download waits on a render.
  await Promise.all([videos.bytes('16:9'), videos.bytes('9:16')]);

  app.get('/healthz', async () => ({ ok: true, jobs: jobs.size }));
  // Result files of every upstream that hands out plain URLs: /sim/files/<job id>.mp4
  app.get<{ Params: { name: string } }>('/sim/files/:name', async (req, reply) => {
    const job = jobs.get(req.params.name.replace(/\.mp4$/, ''));
    if (!job || jobs.status(job, Date.now()).state !== 'succeeded') return reply.status(404).send({ error: 'no such file' });
    return ctx.sendVideo(job, reply);
  });
  await app.register(async (scope) => kkiaiSim(scope, ctx));
  await app.register(async (scope) => kieSim(scope, ctx));
  await app.register(async (scope) => googleSim(scope, ctx));
  await app.register(async (scope) => openaiSim(scope, ctx));
  await app.register(async (scope) => replicateSim(scope, ctx));
  await app.register(async (scope) => falSim(scope, ctx));
  await app.register(async (scope) => comfyuiSim(scope, ctx));
  return { app, jobs };
}

/** Bytes sent at about `bytesPerSecond`. */
function throttled(bytes: Buffer, bytesPerSecond: number): Readable {
  const chunk = Math.max(1024, Math.floor(bytesPerSecond / 10));
  return Readable.from(
    (async function* () {
      for (let at = 0; at < bytes.length; at += chunk) {
        yield bytes.subarray(at, at + chunk);
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
    { objectMode: false },
  );
}
