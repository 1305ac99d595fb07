import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import type { SimJob } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';

function oaError(reply: FastifyReply, status: number, message: string, code: string | null, param: string | null = null): FastifyReply {
  return reply.status(status).send({ error: { message, type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error', param, code } });
}

const refuse: Refuse = (reply, status, message, fault) => oaError(reply, status, message, fault === '429' ? 'rate_limit_exceeded' : fault === 'recaptcha' ? 'sentinel_block' : null);

const SIZES = ['720x1280', '1280x720', '1024x1792', '1792x1024'];

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

/**
 * OpenAI's Videos API (and the resellers that serve it): `POST /v1/videos` (JSON or multipart),
 * `GET /v1/videos/{id}`, `GET /v1/videos/{id}/content`, `DELETE /v1/videos/{id}`. Statuses
 * `queued` → `in_progress` → `completed` | `failed` (with `error.code`).
 */
export async function openaiSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const resource = (job: SimJob) => {
    // A job about to be lost still looks queued when it is created.
    const now = ctx.jobs.status(job, Date.now());
    const s = now.state === 'lost' ? { state: 'running' as const, progress: 0 } : now;
    const req = job.request as Record<string, unknown>;
    const status = s.state === 'running' ? (s.progress < 10 ? 'queued' : 'in_progress') : s.state === 'succeeded' ? 'completed' : 'failed';
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
      seconds: typeof req.seconds === 'string' ? req.seconds : '4',
      remixed_from_video_id: null,
      error: s.state === 'failed' ? (s.reason === 'safety' ? { code: 'moderation_blocked', message: 'Your request was blocked by our moderation system.' } : { code: 'video_generation_failed', message: s.message }) : null,
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
    if (ctx.jobs.status(job, Date.now()).state !== 'succeeded') return oaError(reply, 404, 'Video content is not available.', null);
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
