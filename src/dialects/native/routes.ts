import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { AppContext } from '../../app/context.js';
import { ApiError } from '../../app/errors.js';
import { TaskService } from '../../app/tasks.js';
import { STATES, type TaskState, isTerminal } from '../../core/states.js';
import type { Task } from '../../core/task.js';
import type { LedgerEntry, TaskFilter, WebhookEndpoint } from '../../store/port.js';
import { ENDPOINT_EVENTS } from '../../engine/endpoints.js';
import { tenantOf } from '../../http/auth.js';
import { toApiError } from '../../http/errors.js';
import { createOnce } from '../../http/idempotency.js';
import { EventStream } from '../../http/sse.js';
import { taskUrls } from '../../results/files.js';
import { nativeTaskId } from './ids.js';
import { type NativeTask, toDelivery, toEvents, toNative, toProblem } from './mapper.js';
import { CreateBody, toSpec } from './request.js';
import {
  BalanceSchema, DeliveryListSchema, DeliverySchema, EndpointDeletedSchema, EndpointListSchema, EndpointSchema, EventListSchema, LedgerSchema, ProblemSchema, TaskListSchema, TaskSchema,
} from './schemas.js';

/** Stored as `task.dialect`. */
export const NATIVE = 'reelay';

/** How often a task's stream reads the task again. */
const STREAM_POLL_MS = 500;
/** How often a key's stream looks for changed tasks, and how many it reads at a time. */
const KEY_STREAM_POLL_MS = 1000;
const KEY_STREAM_BATCH = 200;

const TaskParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const DeliveryParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), delivery: Type.String({ pattern: '^[1-9][0-9]{0,15}$' }) });
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$' })),
    order: Type.Optional(Type.Enum(['asc', 'desc'])),
    after: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    state: Type.Optional(Type.String({ pattern: `^(${STATES.join('|')})(,(${STATES.join('|')}))*$` })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    dialect: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    created_from: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    created_to: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
  },
  { additionalProperties: false },
);

const EndpointBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://' }),
    events: Type.Optional(Type.Array(Type.Enum([...ENDPOINT_EVENTS]), { minItems: 1, maxItems: ENDPOINT_EVENTS.length })),
  },
  { additionalProperties: false },
);
const EndpointParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const LedgerQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$' })),
    before: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'the id of the entry the page goes back from' })),
    task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

/** A documented answer of this API. */
const ok = (schema: object, description: string) => ({ description, schema });
/** Its error answers, problem details by status. */
const problems = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { description: 'Problem details', type: 'application/problem+json', schema: ProblemSchema }]));

/** An entry of the key's credits ledger as the API shows it. */
function toLedgerEntry(e: LedgerEntry) {
  return { id: e.id, object: 'ledger_entry', kind: e.kind, item: e.item, amount: e.amount, charged: e.charged, task_id: e.taskId, note: e.note, at: new Date(e.at).toISOString() };
}

/** A webhook endpoint as the API shows it. */
function toEndpoint(e: WebhookEndpoint) {
  return {
    id: e.id,
    object: 'webhook_endpoint',
    url: e.url,
    events: e.events,
    status: e.disabledAt === null ? 'enabled' : 'disabled',
    created_at: new Date(e.createdAt).toISOString(),
    disabled_at: e.disabledAt === null ? null : new Date(e.disabledAt).toISOString(),
    disabled_reason: e.disabledReason,
  };
}

/** An ISO 8601 time of a list filter, in ms. */
function timeOf(v: string | undefined, param: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new ApiError('validation', `${param} must be an ISO 8601 time, got '${v}'`, param);
  return ms;
}

/**
 * Reelay's own API under `/reelay/v1`: every task of the key's tenant, whichever door made it, in
 * the state machine's own words. Errors are problem details (`application/problem+json`).
 * - `POST /tasks` creates one (`Idempotency-Key` honoured), `GET /tasks/{id}` reads it, and
 *   `GET /tasks` lists them (newest first, cursor `after`; filters `state` (any of a comma list),
 *   `model`, `provider`, `dialect`, `created_from`, `created_to`, run by the store);
 * - `POST /tasks/{id}/cancel` cancels it: the task is `canceled` at once and its work is stopped
 *   where it runs; a task that ended first is a 409 that carries it as it ended;
 * - `GET /tasks/{id}/stream` is a Server-Sent Events stream of its changes, and `GET /stream`
 *   one of every task of the key;
 * - `POST|GET /webhooks`, `DELETE /webhooks/{id}`: the key's endpoints, sent every task's end;
 * - `GET /balance` and `GET /ledger` (newest first, cursor `before`, filter `task_id`): the key's credits;
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

  app.post('/tasks', { schema: { body: CreateBody }, config: { doc: { summary: 'Create a task', description: 'Takes `Idempotency-Key`: a repeat answers what the first answered (`Idempotent-Replayed: true`); one while the first runs is a 409 with `Retry-After`; the key with another body a 422. A metered key without the credits is a 402 and no task.', idempotent: true, responses: { 200: ok(TaskSchema, 'The task, `queued`'), ...problems(400, 401, 402, 409, 422, 429) } } } }, async (req, reply) => {
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

  app.get('/tasks/:id', { schema: { params: TaskParams }, config: { doc: { summary: 'Get a task', description: 'Any task of the key\'s tenant, whichever door made it.', responses: { 200: ok(TaskSchema, 'The task'), ...problems(401, 404) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    return render(await find(tenantId, req.params.id));
  });

  app.get('/tasks', { schema: { querystring: ListQuery }, config: { doc: { summary: 'List tasks', description: 'Newest first (`order=asc` for oldest); `after=<next_cursor>` for the next page. Filters run in the database: `state` (a comma list), `model`, `provider`, `dialect`, `created_from`, `created_to` (ISO 8601).', responses: { 200: ok(TaskListSchema, 'A page of tasks'), ...problems(400, 401) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const q = req.query;
    const limit = q.limit === undefined ? 20 : Number(q.limit);
    const filter: TaskFilter = {
      ...(q.state ? { states: [...new Set(q.state.split(','))].sort() as TaskState[] } : {}),
      ...(q.model ? { model: q.model } : {}),
      ...(q.provider ? { provider: q.provider } : {}),
      ...(q.dialect ? { dialect: q.dialect } : {}),
      ...(q.created_from ? { createdFrom: timeOf(q.created_from, 'created_from')! } : {}),
      ...(q.created_to ? { createdTo: timeOf(q.created_to, 'created_to')! } : {}),
    };
    const page = await ctx.tasks.list(tenantId, { limit, order: q.order ?? 'desc', ...(q.after ? { after: q.after } : {}), ...(Object.keys(filter).length ? { filter } : {}) });
    if (!page) throw new ApiError('validation', `after: no task ${req.query.after} to list after`, 'after');
    const data = page.tasks.map(render);
    return { object: 'list', data, has_more: page.hasMore, next_cursor: page.hasMore ? (data.at(-1)?.id ?? null) : null };
  });

  app.get('/tasks/:id/events', { schema: { params: TaskParams }, config: { doc: { summary: 'A task\'s audit trail', description: 'Oldest first: its creation, transitions with their reasons, attempts, upstream exchanges (redacted), ledger entries and callback tries.', responses: { 200: ok(EventListSchema, 'The events'), ...problems(401, 404) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    const { events, attempts } = await ctx.tasks.events(task);
    return { object: 'list', data: toEvents(task, events, attempts) };
  });

  // The key's credits: its balance (null when it has no account, and is not metered), and its
  // ledger, newest first: top-ups, and each metered task's reservation and its one close.
  app.get('/balance', { config: { doc: { summary: 'The key\'s credits balance', responses: { 200: ok(BalanceSchema, 'The balance'), ...problems(401) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const { account } = await ctx.tasks.credits(tenantId);
    return { object: 'balance', metered: account !== undefined, credits: account?.balance ?? null, updated_at: account ? new Date(account.updatedAt).toISOString() : null };
  });
  app.get('/ledger', { schema: { querystring: LedgerQuery }, config: { doc: { summary: 'The key\'s credits ledger', description: 'Newest first; `before=<next_before>` for the next page; `task_id` for one task\'s entries.', responses: { 200: ok(LedgerSchema, 'A page of entries'), ...problems(400, 401) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const limit = Number(req.query.limit ?? 20);
    const { ledger } = await ctx.tasks.credits(tenantId, { limit: limit + 1, ...(req.query.before ? { before: Number(req.query.before) } : {}), ...(req.query.task_id ? { taskId: req.query.task_id } : {}) });
    const data = ledger.slice(0, limit).map(toLedgerEntry);
    return { object: 'list', data, has_more: ledger.length > limit, next_before: ledger.length > limit ? data.at(-1)!.id : null };
  });

  // The key's webhook endpoints: every task's end, in this API's words, to each subscribed URL.
  app.post('/webhooks', { schema: { body: EndpointBody }, config: { doc: { summary: 'Add a webhook endpoint', description: 'Every task end of the key that the endpoint subscribed to is POSTed to it, signed (Standard Webhooks).', responses: { 200: ok(EndpointSchema, 'The endpoint'), ...problems(400, 401) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    return toEndpoint(await ctx.webhooks.create(tenantId, req.body.url, req.body.events ?? [...ENDPOINT_EVENTS]));
  });
  app.get('/webhooks', { config: { doc: { summary: 'List webhook endpoints', responses: { 200: ok(EndpointListSchema, 'The key\'s endpoints'), ...problems(401) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    return { object: 'list', data: (await ctx.webhooks.list(tenantId)).map(toEndpoint) };
  });
  app.delete('/webhooks/:id', { schema: { params: EndpointParams }, config: { doc: { summary: 'Remove a webhook endpoint', responses: { 200: ok(EndpointDeletedSchema, 'Removed'), ...problems(401, 404) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    if (!(await ctx.webhooks.remove(tenantId, req.params.id))) throw new ApiError('not_found', `no webhook endpoint ${req.params.id}`, 'id');
    return { id: req.params.id, object: 'webhook_endpoint.deleted', deleted: true };
  });

  // Server-Sent Events of one task: `event: task` with the task whenever its state, progress or
  // cancel outcome changes (read from the store every half second, so it holds whichever
  // process runs the task), a comment every 15 s to keep proxies from closing it, and
  // `event: end` once nothing more will change (or the server drains).
  app.get('/tasks/:id/stream', { schema: { params: TaskParams }, config: { doc: { summary: 'Follow a task (Server-Sent Events)', description: '`event: task` with the task each time its state, progress or cancel outcome changes, then `event: end`.', responses: { 200: { description: 'An event stream', type: 'text/event-stream', schema: { type: 'string' } }, ...problems(401, 404) } } } }, async (req, reply) => {
    const stream = new EventStream(req, reply);
    const tenantId = await tenantOf(ctx.keys, req);
    let task: Task | undefined = await find(tenantId, req.params.id);
    if (!stream.open()) return;
    let last = '';
    const settled = (t: Task) => isTerminal(t.state) && t.cancelOutcome !== 'pending' && t.hdState !== 'pending' && t.uhdState !== 'pending';
    try {
      while (!stream.closed && task) {
        const seen = `${task.state}|${task.progress}|${task.cancelOutcome}|${task.hdState}|${task.uhdState}`;
        if (seen !== last) {
          last = seen;
          stream.send('task', render(task), task.updatedAt);
        }
        if (settled(task) || ctx.tasks.draining) break;
        stream.keepAlive();
        await new Promise((r) => setTimeout(r, STREAM_POLL_MS));
        task = await ctx.tasks.get(tenantId, task.id);
      }
      if (!stream.closed) stream.send('end', { id: req.params.id, state: task?.state ?? null });
    } catch (e) {
      ctx.log.warn({ err: (e as Error).message }, 'task stream ended by an error');
    } finally {
      stream.end();
    }
  });

  // Server-Sent Events of every task of the key: `event: task` with a task each time it changes
  // state (its `updated_at`), read every second from the store; `id` is that time, so a client
  // that reconnects with `Last-Event-ID` misses nothing. Without it, the stream starts now.
  app.get('/stream', { config: { doc: { summary: 'Follow every task of the key (Server-Sent Events)', description: '`event: task` each time one changes state; `id:` is the change\'s time: reconnect with `Last-Event-ID` to miss nothing.', responses: { 200: { description: 'An event stream', type: 'text/event-stream', schema: { type: 'string' } }, ...problems(401) } } } }, async (req, reply) => {
    const stream = new EventStream(req, reply);
    const tenantId = await tenantOf(ctx.keys, req);
    if (!stream.open()) return;
    const resume = Number(req.headers['last-event-id']);
    let since = Number.isFinite(resume) && resume > 0 ? resume + 1 : Date.now();
    // What was sent at the newest millisecond seen: the next read starts there again.
    const sent = new Map<string, number>();
    try {
      while (!stream.closed && !ctx.tasks.draining) {
        const changed = await ctx.tasks.changed(tenantId, since, KEY_STREAM_BATCH);
        let fresh = 0;
        for (const t of changed) {
          if (sent.get(t.id) === t.updatedAt) continue;
          sent.set(t.id, t.updatedAt);
          fresh++;
          stream.send('task', render(t), t.updatedAt);
        }
        const newest = changed.at(-1)?.updatedAt;
        if (newest !== undefined && newest > since) {
          since = newest;
          for (const [id, at] of sent) if (at < since) sent.delete(id);
        }
        stream.keepAlive();
        // A full batch of new changes is read on at once; else the next look is in a second.
        if (fresh === 0 || changed.length < KEY_STREAM_BATCH) await new Promise((r) => setTimeout(r, KEY_STREAM_POLL_MS));
      }
    } catch (e) {
      ctx.log.warn({ err: (e as Error).message }, 'key stream ended by an error');
    } finally {
      stream.end();
    }
  });

  app.get('/tasks/:id/deliveries', { schema: { params: TaskParams }, config: { doc: { summary: 'A task\'s callbacks', responses: { 200: ok(DeliveryListSchema, 'Its deliveries'), ...problems(401, 404) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    return { object: 'list', data: (await ctx.tasks.deliveries(task)).map(toDelivery) };
  });

  app.post('/tasks/:id/deliveries/:delivery/resend', { schema: { params: DeliveryParams }, onRequest: noBody, config: { doc: { summary: 'Send a callback again', description: 'Now, with the same body and `webhook-id`, signed anew; one that had used up its tries gets one more.', responses: { 200: ok(DeliverySchema, 'The delivery'), ...problems(401, 404) } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    const d = await ctx.tasks.resend(task, Number(req.params.delivery));
    if (!d) throw new ApiError('not_found', `task ${task.id} has no delivery ${req.params.delivery}`, 'delivery');
    return toDelivery(d);
  });

  app.post('/tasks/:id/cancel', { schema: { params: TaskParams }, onRequest: noBody, config: { doc: { summary: 'Cancel a task', description: 'The task is `canceled` at once and its work stopped where it runs (`cancel_outcome`); its credits are given back. A task that ended first is a 409 whose problem carries it as it ended.', responses: { 200: ok(TaskSchema, 'The task, `canceled`'), ...problems(401, 404, 409) } } } }, async (req, reply) => {
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
