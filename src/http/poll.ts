import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import type { Task } from '../core/task.js';
import { tenantOf } from './auth.js';
import type { Credentials } from './credentials.js';
import { ApiError } from '../app/errors.js';
import { queryParam } from './errors.js';
import { sendJson } from './memo.js';

export interface TaskPoll {
  /** The query parameter that holds the task id (`id` for kkiai, `taskId` for kie). */
  param: string;
  /** The error for an id this tenant has no task under. */
  notFound: (id: string) => ApiError;
  /** The error for a task past retention (its tombstone). */
  expired: (id: string) => ApiError;
  /** The serialized answer for a task (memoised per task version, see `memoAnswer`). */
  answer: (task: Task) => Buffer;
  /** Where the key is (default: `Authorization: Bearer`). */
  credentials?: Credentials;
}

/**
 * The handler of a dialect's polling route (kkiai query, kie record-info), the request a gateway
 * answers most. Checks, in this order: the key (401), the id (400/422), the task (404), retention.
 * When the key and the task are both in memory, the whole answer is written without a promise;
 * otherwise it falls back to the store. Errors are thrown to the dialect's error handler.
 */
export function taskPollHandler(ctx: AppContext, poll: TaskPoll) {
  const finish = (reply: FastifyReply, id: string, task: Task | undefined): void => {
    if (!task) throw poll.notFound(id);
    if (task.state === 'expired') throw poll.expired(id);
    sendJson(reply, poll.answer(task));
  };
  const lookup = (reply: FastifyReply, tenantId: string, id: string | undefined): void | Promise<void> => {
    if (!id) throw new ApiError('validation', `${poll.param} is required`, poll.param);
    const hit = ctx.tasks.peek(tenantId, id);
    if (hit) return finish(reply, id, hit);
    return ctx.tasks.get(tenantId, id).then((task) => finish(reply, id, task));
  };
  return (req: FastifyRequest, reply: FastifyReply): void | Promise<void> => {
    const tenant = tenantOf(ctx.keys, req, poll.credentials);
    const id = () => queryParam(req.query, poll.param)?.trim();
    if (typeof tenant === 'string') return lookup(reply, tenant, id());
    return tenant.then((tenantId) => lookup(reply, tenantId, id()));
  };
}
