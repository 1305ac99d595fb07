import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { SimContext, SimOptions } from './context.js';
import { FaultPicker, type JobFault } from './faults.js';
import { SimJobs } from './jobs.js';
import { comfyuiSim } from './upstreams/comfyui.js';
import { falSim } from './upstreams/fal.js';
import { googleSim } from './upstreams/google.js';
import { kieSim } from './upstreams/kie.js';
import { kkiaiSim } from './upstreams/kkiai.js';
import { openaiSim } from './upstreams/openai.js';
import { replicateSim } from './upstreams/replicate.js';
import { SampleVideos } from './video.js';

export type { AdmitInput, Refuse, SimContext, SimOptions } from './context.js';

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
      // `[sim:takes=9000]` in a prompt: this job takes that long (ms), whatever the default.
      const takes = /\[sim:takes=(\d+)\]/.exec(input.prompt);
      const durationMs = takes ? Number(takes[1]) : (opts.upstreams?.[input.upstream]?.durationMs ?? opts.durationMs);
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
