import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { TaskService } from '../../app/tasks.js';
import { kkiaiTaskId } from './ids.js';
import { tenantOf } from '../../http/auth.js';
import { ApiError, type ApiErrorKind } from '../../app/errors.js';
import { toApiError } from '../../http/errors.js';
import { createOnce } from '../../http/idempotency.js';
import { memoAnswer } from '../../http/memo.js';
import { taskPollHandler } from '../../http/poll.js';
import { taskUrls } from '../../results/files.js';
import { toCreated, toQuery } from './mapper.js';
import { CreateBody, toSpec } from './request.js';

/**
 * Error envelope: kkiai does not document one; its resellers run new-api, whose envelope is
 * `{"error":{"message","type","param","code"}}` with a real HTTP status. Reelay answers that.
 */
const HTTP: Record<ApiErrorKind, [number, string, string]> = {
  unauthorized: [401, 'authentication_error', 'invalid_api_key'],
  not_found: [404, 'invalid_request_error', 'task_not_found'],
  validation: [400, 'invalid_request_error', 'invalid_request'],
  too_large: [413, 'invalid_request_error', 'request_too_large'],
  content_policy: [400, 'invalid_request_error', 'content_policy_violation'],
  image_fetch: [400, 'invalid_request_error', 'image_fetch_failed'],
  expired: [410, 'invalid_request_error', 'task_expired'],
  not_ready: [409, 'invalid_request_error', 'not_ready'],
  conflict: [409, 'invalid_request_error', 'conflict'],
  unsupported: [400, 'invalid_request_error', 'unsupported'],
  maintenance: [503, 'server_error', 'maintenance'],
  in_progress: [409, 'invalid_request_error', 'idempotency_key_in_use'],
  key_reused: [422, 'invalid_request_error', 'idempotency_key_reused'],
  rate_limited: [429, 'rate_limit_error', 'rate_limit_exceeded'],
  insufficient_credits: [402, 'insufficient_quota', 'insufficient_user_quota'],
  internal: [500, 'server_error', 'internal_error'],
};

export function kkiaiError(err: ApiError) {
  const [status, type, code] = HTTP[err.kind];
  return { status, body: { error: { message: err.message, type, param: err.param ?? '', code } } };
}

/** Stored as `task.dialect`. */
export const KKIAI = 'kkiai';

/** The kkiai unified video dialect: `POST /v1/video/create`, `GET /v1/video/query?id=`. */
export async function kkiaiRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler((err, _req, reply) => send(reply, toApiError(err), ctx.log));
  app.setNotFoundHandler((req, reply) => send(reply, new ApiError('not_found', `${req.method} ${req.url.split('?')[0]} does not exist`), ctx.log));

  app.post('/create', { schema: { body: CreateBody }, config: { doc: { summary: 'Create a video task', description: 'Takes `Idempotency-Key`.', idempotent: true, responses: { 200: { description: 'The task: `{id, status: "pending", …}`' }, 400: { description: '`{error: {message, type, param, code}}`' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const spec = toSpec(req.body, TaskService.randomSeed);
    const input = {
      id: kkiaiTaskId(req.body.model, Date.now()),
      tenantId,
      dialect: KKIAI,
      model: req.body.model,
      spec,
      request: req.body as Record<string, unknown>,
    };
    return createOnce(ctx, req, reply, { tenantId, scope: 'kkiai.create', body: req.body }, (once) => ctx.tasks.create(input, once), toCreated);
  });

  const keptDays = Math.round(ctx.config.retentionMs / 86_400_000);
  app.get('/query', { config: { doc: { summary: 'Poll a task', query: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, responses: { 200: { description: 'The task: `status` pending → image_downloading → video_generating → video_generation_completed → video_upsampling → completed, `video_url`' }, 410: { description: 'Expired' } } } } }, taskPollHandler(ctx, {
    param: 'id',
    notFound: (id) => new ApiError('not_found', `task ${id} not found`, 'id'),
    expired: (id) => new ApiError('expired', `task ${id} has expired: results are kept ${keptDays} days`, 'id'),
    answer: memoAnswer((task) => toQuery(task, taskUrls(ctx.files, task))),
  }));
}

function send(reply: FastifyReply, err: ApiError, log: { error: (o: object, m: string) => void }): FastifyReply {
  if (err.kind === 'internal') log.error({ err }, 'internal error');
  const { status, body } = kkiaiError(err);
  return reply.status(status).type('application/json').send(body);
}

/** The door's error answer (`Door.replyError`). */
export function kkiaiReplyError(reply: FastifyReply, _req: unknown, err: ApiError, ctx: AppContext): FastifyReply {
  return send(reply, err, ctx.log);
}
