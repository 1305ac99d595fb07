import type { FastifyInstance, FastifyReply } from 'fastify';
import { kkiaiTaskId } from '../../dialects/kkiai/ids.js';
import { KKIAI_MODEL_NAMES } from '../../dialects/kkiai/models.js';
import type { SimJob } from '../jobs.js';
import type { SimContext } from '../context.js';

/** new-api's error envelope, as kkiai-style resellers answer errors. */
function error(reply: FastifyReply, status: number, message: string, code: string): FastifyReply {
  return reply.status(status).send({ error: { message, type: status >= 500 ? 'server_error' : 'new_api_error', param: '', code } });
}

/**
 * A kkiai-style reseller: `POST /v1/video/create`, `GET /v1/video/query?id=`. Statuses walk
 * `pending` → `video_generating` → `completed`, or end `video_generation_failed` (safety, with
 * `video_generation_error`) or `failed` (`error_message`).
 */
export async function kkiaiSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  app.post('/v1/video/create', async (req, reply) => {
    if (!ctx.authorized(req)) return error(reply, 401, 'Invalid token', 'invalid_api_key');
    const body = (req.body ?? {}) as { model?: unknown; prompt?: unknown; images?: unknown; aspect_ratio?: unknown };
    if (typeof body.model !== 'string' || !KKIAI_MODEL_NAMES.includes(body.model)) return error(reply, 400, `unknown model ${String(body.model)}`, 'invalid_request');
    if (typeof body.prompt !== 'string' || !body.prompt.trim()) return error(reply, 400, 'prompt is required', 'invalid_request');
    const job = await ctx.admit(req, reply, {
      id: kkiaiTaskId(body.model, Date.now()),
      upstream: 'kkiai',
      model: body.model,
      prompt: body.prompt,
      aspect: body.aspect_ratio === '9:16' ? '9:16' : '16:9',
      request: body,
    }, (r, status, message, fault) => error(r, status, message, fault));
    if (!job) return reply;
    return { id: job.id, status: 'pending', status_update_time: job.createdAt, enhanced_prompt: job.prompt };
  });

  app.get('/v1/video/query', async (req, reply) => {
    if (!ctx.authorized(req)) return error(reply, 401, 'Invalid token', 'invalid_api_key');
    const id = (req.query as { id?: unknown }).id;
    const job = typeof id === 'string' ? ctx.jobs.get(id) : undefined;
    if (!job || job.upstream !== 'kkiai') return error(reply, 404, 'task not found', 'task_not_found');
    const s = ctx.jobs.status(job, Date.now());
    if (s.state === 'lost') return error(reply, 404, 'task not found', 'task_not_found');
    if (ctx.pollFails(job)) return error(reply, 500, 'upstream query failed', 'query_failed');
    return answer(job, s, s.state === 'succeeded' ? ctx.fileUrl(req, job) : null);
  });
}

function answer(job: SimJob, s: ReturnType<SimContext['jobs']['status']>, url: string | null) {
  const now = Date.now();
  const status =
    s.state === 'running' ? (s.progress < 10 ? 'pending' : 'video_generating')
    : s.state === 'succeeded' ? 'completed'
    : s.state === 'failed' && s.reason === 'safety' ? 'video_generation_failed'
    : 'failed';
  const failed = s.state === 'failed' ? s.message : '';
  return {
    id: job.id,
    status,
    video_url: url,
    enhanced_prompt: job.prompt,
    status_update_time: now,
    detail: {
      id: job.id,
      req: job.request,
      images: [],
      status,
      running: s.state === 'running',
      video_url: url ?? '',
      upsample_video_url: '',
      created_at: job.createdAt,
      completed_at: s.state === 'running' ? 0 : job.readyAt,
      status_update_time: now,
      error_sleep: 5000,
      max_retries: 3,
      retry_count: 0,
      error_message: s.state === 'failed' && s.reason !== 'safety' ? failed : '',
      video_generation_error: s.state === 'failed' && s.reason === 'safety' ? failed : '',
      video_generation_status: s.state === 'running' ? 'MEDIA_GENERATION_STATUS_ACTIVE' : s.state === 'succeeded' ? 'MEDIA_GENERATION_STATUS_SUCCESSFUL' : 'MEDIA_GENERATION_STATUS_FAILED',
      upsample_status: '',
      enhanced_prompt: job.prompt,
    },
  };
}
