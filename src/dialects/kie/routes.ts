import type { Static, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { TaskService } from '../../app/tasks.js';
import { kieTaskId } from './ids.js';
import type { Task } from '../../core/task.js';
import { tenantOf } from '../../http/auth.js';
import { ApiError } from '../../app/errors.js';
import { toApiError } from '../../http/errors.js';
import { answerOnce, createOnce } from '../../http/idempotency.js';
import { memoAnswer } from '../../http/memo.js';
import { taskPollHandler } from '../../http/poll.js';
import { taskUrls } from '../../results/files.js';
import { KIE_CODES, KIE_MESSAGES, type KieEnvelope, toRecord, uhdData } from './mapper.js';
import { EXTEND_MODELS, ExtendBody, GenerateBody, TaskQuery, UhdBody, toExtendSpec, toSpec } from './request.js';

/** Stored as `task.dialect`: the callback of a task is found by it. */
export const KIE = 'kie';

/** The poll's one query parameter, read by hand. */
const KIE_TASK_QUERY = { type: 'object', properties: { taskId: { type: 'string', description: 'The id `generate` gave' } }, required: ['taskId'] };

/**
 * The kie.ai Veo dialect: `/api/v1/veo/generate`, `record-info`, `get-1080p-video`, `get-4k-video`,
 * `extend`; and of kie's common API, `/api/v1/chat/credit` (the key's balance).
 */
export async function kieRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((err, _req, reply) => sendError(reply, toApiError(err), ctx.log));
  app.setNotFoundHandler((req, reply) => sendError(reply, new ApiError('not_found', `Not Found - ${req.method} ${req.url.split('?')[0]} does not exist`), ctx.log));

  const ok = <T>(data: T): KieEnvelope<T> => ({ code: 200, msg: KIE_MESSAGES.success, data });

  const created = (task: Task) => ok({ taskId: task.id });

  // The key's credit balance, an integer (0 for a key without an account: one that is not metered).
  app.get('/chat/credit', { config: { doc: { summary: 'Credit balance', description: '`data` is the key\'s credits (0 for a key that is not metered).', responses: { 200: { description: '`{code, msg, data}`' } } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const { account } = await ctx.tasks.credits(tenantId);
    return ok(account?.balance ?? 0);
  });

  app.post('/veo/generate', { schema: { body: GenerateBody }, config: { doc: { summary: 'Generate a video', description: 'Text to video, first and last frame, or reference images. Takes `Idempotency-Key`. `callBackUrl` is POSTed the record when the task ends.', idempotent: true, responses: { 200: { description: '`{code: 200, msg, data: {taskId}}`; business errors are HTTP 200 with `code` 401, 402, 422, 400, 451, 455' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const body = req.body;
    const spec = toSpec(body, TaskService.randomSeed);
    const input = {
      id: kieTaskId(),
      tenantId,
      dialect: KIE,
      model: body.model ?? 'veo3_fast',
      spec,
      request: body as Record<string, unknown>,
      callbackUrl: body.callBackUrl,
    };
    return createOnce(ctx, req, reply, { tenantId, scope: 'kie.generate', body }, (once) => ctx.tasks.create(input, once), created);
  });

  app.get('/veo/record-info', { config: { doc: { summary: 'Poll a task', query: KIE_TASK_QUERY, responses: { 200: { description: '`{code, msg, data}`: `successFlag` 0 generating, 1 done (`response.resultUrls`), 2 or 3 failed' } } } } }, taskPollHandler(ctx, {
    param: 'taskId',
    notFound: (id) => new ApiError('not_found', `record is null: no task ${id}`),
    expired: () => new ApiError('expired', KIE_MESSAGES.expired),
    answer: memoAnswer((task) => ok(toRecord(task, taskUrls(ctx.files, task)))),
  }));

  app.get('/veo/get-1080p-video', { schema: { querystring: TaskQuery }, config: { doc: { summary: 'The 1080p rendition', description: 'Asked for once the task succeeded: first `code 400` "1080P is processing", then the URL.', responses: { 200: { description: '`{code, msg, data: {resultUrl}}`' } } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const { index } = req.query;
    if (index !== undefined && !/^\d+$/.test(index)) throw new ApiError('validation', 'index must be a non-negative integer', 'index');
    let task = await findTask(ctx, tenantId, req.query.taskId);
    if (task.state !== 'succeeded') throw new ApiError('validation', KIE_MESSAGES.notSuccess);
    if (index !== undefined && Number(index) !== 0) throw new ApiError('validation', 'record result data not exist', 'index');
    let urls = taskUrls(ctx.files, task);
    if (!urls.hd1080) {
      task = await ctx.tasks.requestHd(task);
      urls = taskUrls(ctx.files, task);
    }
    if (!urls.hd1080) throw new ApiError('not_ready', KIE_MESSAGES.hdProcessing);
    return ok({ resultUrl: urls.hd1080 });
  });

  app.post('/veo/extend', { schema: { body: ExtendBody }, config: { doc: { summary: 'Extend a video', description: 'A new task continuing a succeeded one from its last frame; its record gives the whole video in `fullResultUrls`. Takes `Idempotency-Key`.', idempotent: true, responses: { 200: { description: '`{code: 200, msg, data: {taskId}}`' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const body = req.body;
    const source = await findTask(ctx, tenantId, body.taskId);
    if (source.state !== 'succeeded') throw new ApiError('validation', KIE_MESSAGES.notSuccess, 'taskId');
    const input = {
      id: kieTaskId(),
      tenantId,
      dialect: KIE,
      model: EXTEND_MODELS[body.model ?? 'fast'],
      spec: toExtendSpec(body, source.spec, TaskService.randomSeed),
      request: body as Record<string, unknown>,
      callbackUrl: body.callBackUrl,
    };
    return createOnce(ctx, req, reply, { tenantId, scope: 'kie.extend', body }, (once) => ctx.tasks.create(input, once), created);
  });

  // A 4k rendition of a finished video. Asked again while it is being made, or once it is made,
  // kie answers 422 with the task's data (the URLs once they exist), not an error envelope.
  app.post('/veo/get-4k-video', { schema: { body: UhdBody }, config: { doc: { summary: 'The 4k rendition', idempotent: true, description: 'Starts it (its own `callBackUrl`), then answers 422 while it is made and the URLs once it is.', responses: { 200: { description: '`{code, msg, data}`' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const body = req.body;
    return answerOnce(ctx, req, reply, { tenantId, scope: 'kie.4k', body }, () => askUhd(tenantId, body));
  });

  const askUhd = async (tenantId: string, body: Static<typeof UhdBody>) => {
    let task = await findTask(ctx, tenantId, body.taskId);
    if (task.state !== 'succeeded') throw new ApiError('validation', KIE_MESSAGES.notSuccess);
    if ((body.index ?? 0) !== 0) throw new ApiError('validation', 'record result data not exist', 'index');
    if (task.uhdState === 'pending') return { code: 422, msg: KIE_MESSAGES.uhdProcessing, data: uhdData(task, taskUrls(ctx.files, task)) };
    if (task.uhdState === 'ready') return { code: 422, msg: KIE_MESSAGES.uhdDone, data: uhdData(task, taskUrls(ctx.files, task)) };
    const asked = await ctx.tasks.requestUhd(task, body.callBackUrl);
    task = asked.task;
    // Of two requests at once only one asks; the other is told it is being made.
    if (!asked.asked) return { code: 422, msg: task.uhdState === 'ready' ? KIE_MESSAGES.uhdDone : KIE_MESSAGES.uhdProcessing, data: uhdData(task, taskUrls(ctx.files, task)) };
    return ok(uhdData(task, taskUrls(ctx.files, task)));
  };
}

async function findTask(ctx: AppContext, tenantId: string, taskId: string | undefined): Promise<Task> {
  if (!taskId?.trim()) throw new ApiError('validation', 'taskId is required', 'taskId');
  const task = await ctx.tasks.get(tenantId, taskId.trim());
  if (!task) throw new ApiError('not_found', `record is null: no task ${taskId}`);
  if (task.state === 'expired') throw new ApiError('expired', KIE_MESSAGES.expired);
  return task;
}

function sendError(reply: FastifyReply, err: ApiError, log: { error: (o: object, m: string) => void }): FastifyReply {
  const code = KIE_CODES[err.kind];
  if (err.kind === 'internal') log.error({ err }, 'internal error');
  const msg = err.kind === 'unauthorized' ? KIE_MESSAGES.unauthorized : err.kind === 'maintenance' ? KIE_MESSAGES.maintenance : err.kind === 'insufficient_credits' ? KIE_MESSAGES.insufficientCredits : err.message;
  const body: KieEnvelope = { code, msg, data: null };
  // Business errors are HTTP 200 with the code in the body, as kie answers them; a key whose
  // first request still runs is a real 409 too, and a rate limit a real 429, so that clients
  // retrying on status retry them.
  return reply.status(err.kind === 'internal' ? 500 : err.kind === 'in_progress' ? 409 : err.kind === 'rate_limited' ? 429 : 200).type('application/json').send(body);
}

/** The door's error answer (`Door.replyError`). */
export function kieReplyError(reply: FastifyReply, _req: unknown, err: ApiError, ctx: AppContext): FastifyReply {
  return sendError(reply, err, ctx.log);
}
