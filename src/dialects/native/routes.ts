import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { AppContext } from '../../app/context.js';
import { ApiError } from '../../app/errors.js';
import { TaskService } from '../../app/tasks.js';
import type { Task } from '../../core/task.js';
import { tenantOf } from '../../http/auth.js';
import { toApiError } from '../../http/errors.js';
import { createOnce } from '../../http/idempotency.js';
import { taskUrls } from '../../results/files.js';
import { nativeTaskId } from './ids.js';
import { type NativeTask, toDelivery, toEvents, toNative, toProblem } from './mapper.js';
import { CreateBody, toSpec } from './request.js';

/** Stored as `task.dialect`. */
export const NATIVE = 'reelay';

const TaskParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const DeliveryParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), delivery: Type.String({ pattern: '^[1-9][0-9]{0,15}$' }) });
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$' })),
    order: Type.Optional(Type.Enum(['asc', 'desc'])),
    after: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

/**
 * Reelay's own API under `/reelay/v1`: every task of the key's tenant, whichever door made it, in
 * the state machine's own words. Errors are problem details (`application/problem+json`).
 * - `POST /tasks` creates one (`Idempotency-Key` honoured), `GET /tasks/{id}` reads it, and
 *   `GET /tasks` lists them (newest first, cursor `after`);
 * - `POST /tasks/{id}/cancel` cancels it: the task is `canceled` at once and its work is stopped
 *   where it runs; a task that ended first is a 409 that carries it as it ended;
 * - `GET /tasks/{id}/events` is its audit trail; `GET /tasks/{id}/deliveries` its callbacks, and
 *   `POST /tasks/{id}/deliveries/{n}/resend` sends one again (same `webhook-id`, signed anew).
 */
export async function nativeRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler((err, _req, reply) => send(reply, toApiError(err), ctx));
  app.setNotFoundHandler((req, reply) => send(reply, new ApiError('not_found', `${req.method} ${req.url.split('?')[0]} does not exist`), ctx));
  // Actions take no body: an empty one is fine whatever its Content-Type says.
  const noBody = async (req: FastifyRequest) => {
    if (req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0') delete req.headers['content-type'];
  };
  const render = (task: Task): NativeTask => toNative(task, taskUrls(ctx.files, task));
  const find = async (tenantId: string, id: string): Promise<Task> => {
    const task = await ctx.tasks.get(tenantId, id);
    if (!task) throw new ApiError('not_found', `no task ${id}`, 'id');
    return task;
  };

  app.post('/tasks', { schema: { body: CreateBody } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const spec = toSpec(req.body, TaskService.randomSeed);
    const input = {
      id: nativeTaskId(),
      tenantId,
      dialect: NATIVE,
      model: req.body.model,
      spec,
      request: req.body as Record<string, unknown>,
      callbackUrl: req.body.webhook_url,
    };
    return createOnce(ctx, req, reply, { tenantId, scope: 'reelay.create', body: req.body }, (once) => ctx.tasks.create(input, once), render);
  });

  app.get('/tasks/:id', { schema: { params: TaskParams } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    return render(await find(tenantId, req.params.id));
  });

  app.get('/tasks', { schema: { querystring: ListQuery } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const limit = req.query.limit === undefined ? 20 : Number(req.query.limit);
    const page = await ctx.tasks.list(tenantId, { limit, order: req.query.order ?? 'desc', ...(req.query.after ? { after: req.query.after } : {}) });
    if (!page) throw new ApiError('validation', `after: no task ${req.query.after} to list after`, 'after');
    const data = page.tasks.map(render);
    return { object: 'list', data, has_more: page.hasMore, next_cursor: page.hasMore ? (data.at(-1)?.id ?? null) : null };
  });

  app.get('/tasks/:id/events', { schema: { params: TaskParams } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    const { events, attempts } = await ctx.tasks.events(task);
    return { object: 'list', data: toEvents(task, events, attempts) };
  });

  app.get('/tasks/:id/deliveries', { schema: { params: TaskParams } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    return { object: 'list', data: (await ctx.tasks.deliveries(task)).map(toDelivery) };
  });

  app.post('/tasks/:id/deliveries/:delivery/resend', { schema: { params: DeliveryParams }, onRequest: noBody }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    const d = await ctx.tasks.resend(task, Number(req.params.delivery));
    if (!d) throw new ApiError('not_found', `task ${task.id} has no delivery ${req.params.delivery}`, 'delivery');
    return toDelivery(d);
  });

  app.post('/tasks/:id/cancel', { schema: { params: TaskParams }, onRequest: noBody }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const r = await ctx.tasks.cancel(tenantId, req.params.id);
    if (!r) throw new ApiError('not_found', `no task ${req.params.id}`, 'id');
    // Canceled by this call, or by one before it: the task as it now stands.
    if (r.canceled || r.task.state === 'canceled') return render(r.task);
    // It ended first: it stays as it ended, and the answer says so.
    const err = new ApiError('conflict', `task ${r.task.id} had already ${r.task.state === 'expired' ? 'expired' : r.task.state}; it was not canceled`);
    return reply.status(409).type('application/problem+json').send(toProblem(err, { task: render(r.task) }));
  });
}

function send(reply: FastifyReply, err: ApiError, ctx: AppContext): FastifyReply {
  if (err.kind === 'internal') ctx.log.error({ err: err.cause ?? err }, 'internal error');
  const body = toProblem(err);
  return reply.status(body.status).type('application/problem+json').send(body);
}

/** The door's error answer (`Door.replyError`). */
export function nativeReplyError(reply: FastifyReply, _req: unknown, err: ApiError, ctx: AppContext): FastifyReply {
  return send(reply, err, ctx);
}
