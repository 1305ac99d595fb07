import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import type { SimJob } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';

function detail(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).send({ detail: message });
}

const refuse: Refuse = (reply, status, message) => detail(reply, status, message);

function uuid(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * fal's queue, mounted under `/fal` (its real host is `queue.fal.run`): `POST /fal/{model id}`,
 * then `GET /fal/{owner}/{app}/requests/{id}/status`, `GET …/requests/{id}` for the result, and
 * `PUT …/requests/{id}/cancel`. Statuses `IN_QUEUE` → `IN_PROGRESS` → `COMPLETED`; a failed
 * request is `COMPLETED` with `error`, and its result answers the error (422 for a content policy
 * violation, 500 otherwise).
 */
export async function falSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const urls = (req: FastifyRequest, job: SimJob) => {
    const appId = job.model.split('/').slice(0, 2).join('/');
    const base = `${ctx.base(req)}/fal/${appId}/requests/${job.id}`;
    return { response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
  };

  app.post('/fal/*', async (req, reply) => {
    if (!ctx.authorized(req)) return detail(reply, 401, 'Invalid Key authorization header format or missing key');
    const model = (req.params as { '*': string })['*'];
    if (model.split('/').length < 2) return detail(reply, 404, `Application '${model}' not found`);
    const body = (req.body ?? {}) as { prompt?: unknown; aspect_ratio?: unknown };
    if (typeof body.prompt !== 'string' || !body.prompt) return reply.status(422).send({ detail: [{ loc: ['body', 'prompt'], msg: 'field required', type: 'value_error.missing' }] });
    const job = await ctx.admit(req, reply, { id: uuid(), upstream: 'fal', model, prompt: body.prompt, aspect: body.aspect_ratio === '9:16' ? '9:16' : '16:9', request: body }, refuse);
    if (!job) return reply;
    return { request_id: job.id, ...urls(req, job), queue_position: 0 };
  });

  const request = (req: FastifyRequest, reply: FastifyReply): { job: SimJob; action: string } | undefined => {
    const m = /^(.+)\/requests\/([0-9a-f-]+)(?:\/(status|cancel))?$/.exec((req.params as { '*': string })['*']);
    const job = m ? ctx.jobs.get(m[2]!) : undefined;
    if (!m || !job || job.upstream !== 'fal' || ctx.jobs.status(job, Date.now()).state === 'lost') {
      detail(reply, 404, 'Request not found');
      return undefined;
    }
    return { job, action: m[3] ?? 'result' };
  };

  app.get('/fal/*', async (req, reply) => {
    if (!ctx.authorized(req)) return detail(reply, 401, 'Invalid Key authorization header format or missing key');
    const found = request(req, reply);
    if (!found) return reply;
    const { job, action } = found;
    const s = ctx.jobs.status(job, Date.now());
    if (action === 'status') {
      if (ctx.pollFails(job)) return detail(reply, 500, 'Internal Server Error');
      if (s.state === 'running') return { status: s.progress < 10 ? 'IN_QUEUE' : 'IN_PROGRESS', queue_position: s.progress < 10 ? 1 : undefined, ...urls(req, job) };
      return { status: 'COMPLETED', ...urls(req, job), ...(s.state === 'failed' ? { error: s.message, error_type: s.reason === 'safety' ? 'content_policy_violation' : 'internal_error' } : {}) };
    }
    if (action !== 'result') return detail(reply, 405, 'Method Not Allowed');
    if (s.state === 'running') return detail(reply, 400, 'Request is still in progress');
    if (s.state === 'failed') {
      if (s.reason === 'safety') return reply.status(422).send({ detail: [{ loc: ['body', 'prompt'], msg: 'The content could not be processed because it contained material flagged by a content checker.', type: 'content_policy_violation' }] });
      return detail(reply, 500, s.message);
    }
    return { video: { url: ctx.fileUrl(req, job), content_type: 'video/mp4', file_name: 'output.mp4' } };
  });

  app.put('/fal/*', async (req, reply) => {
    if (!ctx.authorized(req)) return detail(reply, 401, 'Invalid Key authorization header format or missing key');
    const found = request(req, reply);
    if (!found) return reply;
    if (found.action !== 'cancel') return detail(reply, 405, 'Method Not Allowed');
    if (ctx.jobs.status(found.job, Date.now()).state !== 'running') return reply.status(400).send({ status: 'ALREADY_COMPLETED' });
    found.job.cancelled = true;
    return reply.status(202).send({ status: 'CANCELLATION_REQUESTED' });
  });
}
