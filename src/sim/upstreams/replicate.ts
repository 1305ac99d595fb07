import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { alnum } from '../../core/ids.js';
import type { SimJob } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';

/** Replicate's errors are problem details: `{title, detail, status}`. */
function problem(reply: FastifyReply, status: number, detail: string): FastifyReply {
  const title = status === 401 ? 'Unauthenticated' : status === 404 ? 'Not found' : status === 429 ? 'Request was throttled' : status >= 500 ? 'Internal server error' : 'Invalid input';
  return reply.status(status).type('application/problem+json').send({ title, detail, status });
}

const refuse: Refuse = (reply, status, message) => problem(reply, status, message);

/**
 * Replicate's predictions API: `POST /v1/models/{owner}/{name}/predictions` (or `POST
 * /v1/predictions` with a `version`), `GET /v1/predictions/{id}`, `POST …/{id}/cancel`.
 * Statuses `starting` → `processing` → `succeeded` (`output`: the file URL) | `failed` (`error`)
 * | `canceled`.
 */
export async function replicateSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const prediction = (req: FastifyRequest, job: SimJob) => {
    const now = ctx.jobs.status(job, Date.now());
    const s = now.state === 'lost' ? { state: 'running' as const, progress: 0 } : now;
    const status = s.state === 'running' ? (s.progress < 10 ? 'starting' : 'processing') : s.state === 'succeeded' ? 'succeeded' : s.state === 'failed' && s.reason === 'cancelled' ? 'canceled' : 'failed';
    const error = s.state === 'failed' && s.reason !== 'cancelled' ? (s.reason === 'safety' ? 'The input or output was flagged as sensitive. Please try again with different inputs. (E005)' : s.message) : null;
    const base = ctx.base(req);
    return {
      id: job.id,
      model: job.model,
      version: 'sim',
      input: (job.request as { input?: unknown }).input ?? {},
      logs: '',
      output: s.state === 'succeeded' ? ctx.fileUrl(req, job) : null,
      data_removed: false,
      error,
      status,
      created_at: new Date(job.createdAt).toISOString(),
      ...(s.state !== 'running' ? { completed_at: new Date(job.readyAt).toISOString() } : {}),
      urls: { get: `${base}/v1/predictions/${job.id}`, cancel: `${base}/v1/predictions/${job.id}/cancel` },
    };
  };

  const create = async (req: FastifyRequest, reply: FastifyReply, model: string) => {
    if (!ctx.authorized(req)) return problem(reply, 401, 'You did not pass a valid authentication token');
    const body = (req.body ?? {}) as { input?: { prompt?: unknown; aspect_ratio?: unknown } };
    if (typeof body.input?.prompt !== 'string' || !body.input.prompt) return problem(reply, 422, '- input: prompt is required');
    const job = await ctx.admit(req, reply, {
      id: alnum(26).toLowerCase(),
      upstream: 'replicate',
      model,
      prompt: body.input.prompt,
      aspect: body.input.aspect_ratio === '9:16' ? '9:16' : '16:9',
      request: body,
    }, refuse);
    if (!job) return reply;
    return reply.status(201).send(prediction(req, job));
  };

  app.post<{ Params: { owner: string; name: string } }>('/v1/models/:owner/:name/predictions', (req, reply) => create(req, reply, `${req.params.owner}/${req.params.name}`));
  app.post('/v1/predictions', (req, reply) => {
    const version = (req.body as { version?: unknown } | undefined)?.version;
    if (typeof version !== 'string' || !version) return problem(reply, 422, '- version: version is required');
    return create(req, reply, version);
  });

  const find = (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): SimJob | undefined => {
    const job = ctx.jobs.get(req.params.id);
    if (!job || job.upstream !== 'replicate' || ctx.jobs.status(job, Date.now()).state === 'lost') {
      problem(reply, 404, 'The requested resource could not be found.');
      return undefined;
    }
    return job;
  };

  app.get<{ Params: { id: string } }>('/v1/predictions/:id', async (req, reply) => {
    if (!ctx.authorized(req)) return problem(reply, 401, 'You did not pass a valid authentication token');
    const job = find(req, reply);
    if (!job) return reply;
    if (ctx.pollFails(job)) return problem(reply, 502, 'Bad gateway');
    return prediction(req, job);
  });

  app.post<{ Params: { id: string } }>('/v1/predictions/:id/cancel', async (req, reply) => {
    if (!ctx.authorized(req)) return problem(reply, 401, 'You did not pass a valid authentication token');
    const job = find(req, reply);
    if (!job) return reply;
    if (ctx.jobs.status(job, Date.now()).state === 'running') job.cancelled = true;
    return prediction(req, job);
  });
}
