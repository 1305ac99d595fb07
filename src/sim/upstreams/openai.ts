import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import { type ProbeResult, probe } from '../../media/probe.js';
import { type JoinedExtension, type SimJob, type SimStatus, extensionStatus } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';
import { joinWithSample } from '../video.js';

function oaError(reply: FastifyReply, status: number, message: string, code: string | null, param: string | null = null): FastifyReply {
  return reply.status(status).send({ error: { message, type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error', param, code } });
}

const refuse: Refuse = (reply, status, message, fault) => oaError(reply, status, message, fault === '429' ? 'rate_limit_exceeded' : fault === 'recaptcha' ? 'sentinel_block' : null);

const SIZES = ['720x1280', '1280x720', '1024x1792', '1792x1024'];
/** Lengths of an extension's new part (the OpenAI spec's description). */
const EXTENSION_SECONDS = ['4', '8', '12', '16', '20'];

/** Reads a create body sent as JSON or as multipart (the openai SDK sends multipart from v6.28). */
async function createFields(req: FastifyRequest): Promise<Record<string, unknown>> {
  const body = req.body;
  if (body instanceof FormData) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of body.entries()) out[k] = typeof v === 'string' ? v : { file: v.name, type: v.type, size: v.size };
    return out;
  }
  return (body ?? {}) as Record<string, unknown>;
}

/** An extension job: its stitched total, and its video once joined (`video`) or not made (`error`). */
interface Extension extends JoinedExtension {
  seconds: string;
}

/**
 * Joins the source (the MP4 at `src`, as probed) and the sample of the job's aspect into one
 * video: the source scaled to the sample's frame, then the sample, each with its sound (silence
 * for a source without any). The same join as the Google simulator's extension.
 */
async function joinSource(ctx: SimContext, job: SimJob, src: string, p: ProbeResult): Promise<Buffer> {
  const out = join(ctx.opts.dir, `openai-extend-${job.id}.mp4`);
  try {
    const sample = await ctx.videos.path(job.aspect);
    return await joinWithSample({ ffmpeg: ctx.opts.binaries.ffmpeg, sample, small: ctx.opts.videoSize === 'small', aspect: job.aspect }, src, p, out);
  } finally {
    rmSync(out, { force: true });
  }
}

/**
 * OpenAI's Videos API (and the resellers that serve it): `POST /v1/videos` (JSON or multipart),
 * `POST /v1/videos/extensions`, `GET /v1/videos/{id}`, `GET /v1/videos/{id}/content`,
 * `DELETE /v1/videos/{id}`. Statuses `queued` → `in_progress` → `completed` | `failed` (with
 * `error.code`).
 *
 * An extension takes `video` as an MP4 file part (or `video[id]`, a video this simulator made),
 * `prompt` and `seconds` (the new part's length); its video is the source followed by the sample,
 * joined with ffmpeg while the job runs, and its `seconds` is the stitched total (the source's
 * whole seconds plus the new part's).
 */
export async function openaiSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const extensions = new Map<string, Extension>();
  // Joins still running when the simulator closes are waited for, so their files are removed.
  const joining = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...joining]);
  });
  /** The job's status, held at "running" until its extension is joined. */
  const statusOf = (job: SimJob) => extensionStatus(ctx.jobs.status(job, Date.now()), extensions.get(job.id));
  /** A job's video: its joined extension, else the sample. */
  const videoOf = async (job: SimJob): Promise<Buffer> => extensions.get(job.id)?.video ?? ctx.videos.bytes(job.aspect);

  const resource = (job: SimJob) => {
    // A job about to be lost still looks queued when it is created.
    const now = statusOf(job);
    const s = now.state === 'lost' ? { state: 'running' as const, progress: 0 } : now;
    const req = job.request as Record<string, unknown>;
    const status = s.state === 'running' ? (s.progress < 10 ? 'queued' : 'in_progress') : s.state === 'succeeded' ? 'completed' : 'failed';
    const error = s.state === 'invalid' ? { code: 'invalid_request', message: s.message } : s.state === 'failed' ? (s.reason === 'safety' ? { code: 'moderation_blocked', message: 'Your request was blocked by our moderation system.' } : { code: 'video_generation_failed', message: s.message }) : null;
    return {
      id: job.id,
      object: 'video',
      model: job.model,
      status,
      progress: s.state === 'running' ? s.progress : 100,
      created_at: Math.floor(job.createdAt / 1000),
      completed_at: s.state === 'running' ? null : Math.floor(job.readyAt / 1000),
      expires_at: s.state === 'succeeded' ? Math.floor(job.readyAt / 1000) + 3600 : null,
      prompt: job.prompt,
      size: typeof req.size === 'string' ? req.size : '720x1280',
      seconds: extensions.get(job.id)?.seconds ?? (typeof req.seconds === 'string' ? req.seconds : '4'),
      remixed_from_video_id: null,
      error,
    };
  };

  app.post('/v1/videos', async (req, reply) => {
    if (!ctx.authorized(req)) return oaError(reply, 401, 'Incorrect API key provided.', 'invalid_api_key');
    const f = await createFields(req);
    if (typeof f.prompt !== 'string' || !f.prompt) return oaError(reply, 400, "Missing required parameter: 'prompt'.", 'missing_required_parameter', 'prompt');
    if (f.seconds !== undefined && !['4', '8', '12'].includes(String(f.seconds))) return oaError(reply, 400, `Invalid value: '${String(f.seconds)}'. Supported values are: '4', '8', and '12'.`, 'invalid_value', 'seconds');
    if (typeof f.seconds === 'number') return oaError(reply, 400, "Invalid type for 'seconds': expected a string, but got an integer instead.", 'invalid_type', 'seconds');
    const size = typeof f.size === 'string' ? f.size : '720x1280';
    if (!SIZES.includes(size)) return oaError(reply, 400, `Invalid value: '${size}'.`, 'invalid_value', 'size');
    const [w, h] = size.split('x').map(Number);
    const job = await ctx.admit(req, reply, {
      id: `video_${randomBytes(16).toString('hex')}`,
      upstream: 'openai',
      model: typeof f.model === 'string' ? f.model : 'sora-2',
      prompt: f.prompt,
      aspect: w! > h! ? '16:9' : '9:16',
      request: f,
    }, refuse);
    if (!job) return reply;
    return resource(job);
  });

  app.post('/v1/videos/extensions', async (req, reply) => {
    if (!ctx.authorized(req)) return oaError(reply, 401, 'Incorrect API key provided.', 'invalid_api_key');
    const body = req.body;
    const form = body instanceof FormData ? body : undefined;
    const fields = await createFields(req);
    if (typeof fields.prompt !== 'string' || !fields.prompt.trim()) return oaError(reply, 400, "Missing required parameter: 'prompt'.", 'missing_required_parameter', 'prompt');
    if (typeof fields.seconds === 'number') return oaError(reply, 400, "Invalid type for 'seconds': expected a string, but got an integer instead.", 'invalid_type', 'seconds');
    if (fields.seconds === undefined) return oaError(reply, 400, "Missing required parameter: 'seconds'.", 'missing_required_parameter', 'seconds');
    if (!EXTENSION_SECONDS.includes(String(fields.seconds))) return oaError(reply, 400, `Invalid value: '${String(fields.seconds)}'. Supported values are: '4', '8', '12', '16', and '20'.`, 'invalid_value', 'seconds');
    // The video: an uploaded file, or the id of a finished video of this simulator.
    const file = form?.get('video');
    const id = form ? form.get('video[id]') : (fields.video as { id?: unknown } | undefined)?.id;
    let bytes: Buffer;
    if (file && typeof file !== 'string') {
      bytes = Buffer.from(await file.arrayBuffer());
    } else if (typeof id === 'string' && id) {
      const of = ctx.jobs.get(id);
      if (!of || of.upstream !== 'openai' || statusOf(of).state !== 'succeeded') return oaError(reply, 404, `Video with id '${id}' not found.`, null, 'video');
      bytes = await videoOf(of);
    } else {
      return oaError(reply, 400, "Missing required parameter: 'video' (an MP4 file, or video[id]).", 'missing_required_parameter', 'video');
    }
    const notMp4 = () => oaError(reply, 400, "Invalid file format for 'video': the file is not an MP4 video (supported: video/mp4).", 'invalid_value', 'video');
    if (bytes.length < 12 || bytes.subarray(4, 8).toString('latin1') !== 'ftyp') return notMp4();
    const jobId = `video_${randomBytes(16).toString('hex')}`;
    const src = join(ctx.opts.dir, `openai-extend-${jobId}-source.mp4`);
    writeFileSync(src, bytes);
    let kept = false;
    try {
      const p = await probe(ctx.opts.binaries.ffprobe, src).catch(() => undefined);
      if (!p?.video) return notMp4();
      const total = String(Math.round((p.video.durationMs || p.durationMs) / 1000) + Number(fields.seconds));
      const job = await ctx.admit(req, reply, {
        id: jobId,
        upstream: 'openai',
        model: typeof fields.model === 'string' ? fields.model : 'sora-2',
        prompt: fields.prompt,
        aspect: p.video.width >= p.video.height ? '16:9' : '9:16',
        request: fields,
      }, refuse);
      if (!job) return reply;
      const ext: Extension = { seconds: total };
      extensions.set(job.id, ext);
      // Extensions are rare: the oldest are dropped past a thousand.
      if (extensions.size > 1000) extensions.delete(extensions.keys().next().value!);
      kept = true;
      const joined = joinSource(ctx, job, src, p)
        .then((video) => (ext.video = video), (e: Error) => (ext.error = `Unable to process the input video: ${e.message.split('\n')[0]}`))
        .finally(() => {
          rmSync(src, { force: true });
          joining.delete(joined);
        });
      joining.add(joined);
      return resource(job);
    } finally {
      if (!kept) rmSync(src, { force: true });
    }
  });

  const find = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): SimJob | undefined => {
    const job = ctx.jobs.get(req.params.id);
    if (!job || job.upstream !== 'openai' || ctx.jobs.status(job, Date.now()).state === 'lost') {
      oaError(reply, 404, `Video with id '${req.params.id}' not found.`, null, 'video_id');
      return undefined;
    }
    return job;
  };

  app.get<{ Params: { id: string } }>('/v1/videos/:id', async (req, reply) => {
    if (!ctx.authorized(req)) return oaError(reply, 401, 'Incorrect API key provided.', 'invalid_api_key');
    const job = find(req, reply);
    if (!job) return reply;
    if (ctx.pollFails(job)) return oaError(reply, 500, 'The server had an error while processing your request.', null);
    return resource(job);
  });

  app.get<{ Params: { id: string } }>('/v1/videos/:id/content', async (req, reply) => {
    if (!ctx.authorized(req)) return oaError(reply, 401, 'Incorrect API key provided.', 'invalid_api_key');
    const job = find(req, reply);
    if (!job) return reply;
    if (statusOf(job).state !== 'succeeded') return oaError(reply, 404, 'Video content is not available.', null);
    const joined = extensions.get(job.id)?.video;
    if (joined) return reply.header('content-type', 'video/mp4').header('content-length', String(joined.length)).send(joined);
    return ctx.sendVideo(job, reply);
  });

  app.delete<{ Params: { id: string } }>('/v1/videos/:id', async (req, reply) => {
    if (!ctx.authorized(req)) return oaError(reply, 401, 'Incorrect API key provided.', 'invalid_api_key');
    const job = find(req, reply);
    if (!job) return reply;
    job.cancelled = true;
    return { id: job.id, object: 'video.deleted', deleted: true };
  });
}
