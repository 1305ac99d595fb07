import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { ApiError } from '../../app/errors.js';
import { TaskService } from '../../app/tasks.js';
import type { Task } from '../../core/task.js';
import { tenantOf } from '../../http/auth.js';
import { googleApiKey } from '../../http/credentials.js';
import { toApiError } from '../../http/errors.js';
import { createOnce } from '../../http/idempotency.js';
import { memoAnswer, sendJson } from '../../http/memo.js';
import { geminiTaskId, taskIdOfFile } from './ids.js';
import { googleError, operationName, toFile, toOperation } from './mapper.js';
import { VEO_MODEL, storedRequest, toSpec, webhookUri } from './request.js';

/** Stored as `task.dialect`. */
export const GEMINI = 'gemini';

const DOWNLOAD = ':download';

/** The predict body, read by hand (`request.ts`). */
const PREDICT_BODY = {
  type: 'object',
  properties: {
    instances: { type: 'array', maxItems: 1, items: { type: 'object', properties: { prompt: { type: 'string' }, image: { type: 'object' }, lastFrame: { type: 'object' }, referenceImages: { type: 'array' }, video: { type: 'object' } } } },
    parameters: { type: 'object', properties: { aspectRatio: { enum: ['16:9', '9:16'] }, durationSeconds: { type: 'integer' }, resolution: { enum: ['720p', '1080p', '4k'] }, seed: { type: 'integer' }, webhookConfig: { type: 'object' } } },
  },
  required: ['instances'],
};

/**
 * The Gemini API's Veo methods under `/v1beta`, as `@google/genai` calls them:
 * - `POST models/{model}:predictLongRunning` creates a task and answers its Operation's name;
 * - `GET models/{model}/operations/{id}` polls any task of the tenant (whichever door made it);
 * - `POST models/{model}/operations/{id}:cancel` cancels it;
 * - `GET files/{id}:download?alt=media` sends the final video, `GET files/{id}` its File resource.
 * The key is read from `x-goog-api-key`, else `?key=`, else a Bearer header.
 */
export async function geminiRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const base = ctx.config.publicUrl;
  const keptDays = Math.round(ctx.config.retentionMs / 86_400_000);
  app.setErrorHandler((err, req, reply) => send(reply, req, toApiError(err), ctx));
  app.setNotFoundHandler((req, reply) => send(reply, req, new ApiError('not_found', `${req.method} ${req.url.split('?')[0]} is not a method of this API`), ctx));

  // `{model}:predictLongRunning` has a literal ':' after the model, which a route cannot express
  // after a parameter: the rest of the path is read by hand.
  // A create may carry a video to extend inline (base64): Google takes about 20 MB of it. This
  // route alone takes bodies up to that (28 MiB of JSON) when REELAY_BODY_LIMIT_BYTES is lower.
  app.post('/models/*', { config: { doc: { path: '/v1beta/models/{model}::predictLongRunning', params: { model: 'A `veo-*` model' }, summary: 'Generate videos (a long-running operation)', description: 'Takes `Idempotency-Key`. `parameters.webhookConfig.uris` are POSTed the done operation, signed.', idempotent: true, body: PREDICT_BODY, responses: { 200: { description: 'The operation: `{name}`' }, 400: { description: '`{error: {code, message, status: "INVALID_ARGUMENT"}}`' } } } }, bodyLimit: Math.max(ctx.config.bodyLimitBytes, INLINE_VIDEO_BODY) }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req, googleApiKey);
    const rest = (req.params as { '*': string })['*'];
    const colon = rest.lastIndexOf(':');
    const model = colon < 0 ? rest : rest.slice(0, colon);
    const method = colon < 0 ? '' : rest.slice(colon + 1);
    if (method !== 'predictLongRunning' || !VEO_MODEL.test(model)) throw modelNotFound(model, method);
    const spec = toSpec(model, req.body, TaskService.randomSeed);
    const input = { id: geminiTaskId(), tenantId, dialect: GEMINI, model, spec, request: storedRequest(req.body), callbackUrl: webhookUri(req.body) };
    return createOnce(ctx, req, reply, { tenantId, scope: 'gemini.predict', body: req.body }, (once) => ctx.tasks.create(input, once), (task) => ({ name: operationName(task) }));
  });

  // The poll: written like `taskPollHandler` (the id is a path segment here, not a query
  // parameter). A key and a task both in memory are answered without a promise, from the
  // serialized answer kept per task version.
  const answer = memoAnswer((task) => toOperation(task, base, keptDays));
  const finish = (reply: FastifyReply, params: OperationParams, task: Task | undefined): void => {
    if (!task) throw new ApiError('not_found', `Operation models/${params.model}/operations/${params.id} not found`);
    sendJson(reply, answer(task));
  };
  const lookup = (reply: FastifyReply, tenantId: string, params: OperationParams): void | Promise<void> => {
    const hit = params.id ? ctx.tasks.peek(tenantId, params.id) : undefined;
    if (hit) return finish(reply, params, hit);
    if (!params.id) return finish(reply, params, undefined);
    return ctx.tasks.get(tenantId, params.id).then((task) => finish(reply, params, task));
  };
  app.get<{ Params: OperationParams }>('/models/:model/operations/:id', { config: { doc: { summary: 'Get an operation', responses: { 200: { description: 'The operation; once `done`, `response.generateVideoResponse.generatedSamples[].video.uri` or `error`' } } } } }, (req, reply) => {
    const tenant = tenantOf(ctx.keys, req, googleApiKey);
    if (typeof tenant === 'string') return lookup(reply, tenant, req.params);
    return tenant.then((tenantId) => lookup(reply, tenantId, req.params));
  });

  // Google's operation cancel, `POST {name}:cancel`: an empty answer; the operation then ends with
  // code 1 CANCELLED (or as it ended, when it ended first: a cancel is best effort there too).
  app.post<{ Params: OperationParams }>('/models/:model/operations/:id', { config: { doc: { path: '/v1beta/models/{model}/operations/{id}::cancel', params: { model: 'The model', id: 'The operation' }, summary: 'Cancel an operation', description: 'It then ends with `error.code` 1 (CANCELLED), or as it ended.', responses: { 200: { description: '`{}`' } } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req, googleApiKey);
    const colon = req.params.id.lastIndexOf(':');
    const id = colon < 0 ? req.params.id : req.params.id.slice(0, colon);
    if (colon < 0 || req.params.id.slice(colon + 1) !== 'cancel') {
      throw new ApiError('not_found', `POST models/${req.params.model}/operations/${req.params.id} is not a method of this API`);
    }
    if (!(await ctx.tasks.cancel(tenantId, id))) throw new ApiError('not_found', `Operation models/${req.params.model}/operations/${id} not found`);
    return {};
  });

  // `{id}:download` has the same literal ':'.
  app.get('/files/*', { config: { doc: { path: '/v1beta/files/{file}', params: { file: 'The file id; `{file}:download` (with `alt=media`) gives the MP4' }, summary: 'A generated video file', responses: { 200: { description: 'The file\'s metadata, or with `:download` the MP4 (Range supported)' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req, googleApiKey);
    const rest = (req.params as { '*': string })['*'];
    const download = rest.endsWith(DOWNLOAD);
    const id = download ? rest.slice(0, -DOWNLOAD.length) : rest;
    const taskId = taskIdOfFile(id);
    const task = taskId ? await ctx.tasks.get(tenantId, taskId) : undefined;
    if (!task) throw new ApiError('not_found', `File files/${id} not found`);
    if (task.state === 'expired') throw new ApiError('expired', `File files/${id} has expired: results are kept ${keptDays} days`);
    const video = ctx.previews.video(task);
    if (!download) return toFile(task, base, ctx.config.retentionMs, video ? (await ctx.files.exists(task, video))?.bytes : undefined);
    if (task.state === 'failed' || task.state === 'canceled') throw new ApiError('not_found', `File files/${id} has no video: its operation ${task.state === 'failed' ? 'failed' : 'was cancelled'} (${task.lastError ?? 'no reason given'})`);
    if (task.state !== 'succeeded') throw new ApiError('not_ready', `File files/${id} is not ready: its operation is ${task.state}`);
    const absent = () => new ApiError('not_found', `File files/${id} not found`);
    if (!video) throw absent();
    // The key guards it, so shared caches must not keep it.
    const served = await ctx.files.serve(req, reply, task.fileToken, video, { cacheControl: 'private, max-age=86400' });
    if (!served.found) throw absent();
    return reply;
  });
}

/** The largest create body this door takes: a 20 MB video, base64, with room for the rest. */
const INLINE_VIDEO_BODY = 28 * 1024 * 1024;

interface OperationParams {
  model: string;
  id: string;
}

/** Google's answer for a model that has no such method (any model but Veo's, here). */
function modelNotFound(model: string, method: string): ApiError {
  return new ApiError('not_found', `models/${model} is not found for API version v1beta, or is not supported for ${method || 'this method'}. Veo models (veo-*) support predictLongRunning.`);
}

/** The door's error answer (also `Door.replyError`). */
export function send(reply: FastifyReply, req: FastifyRequest, err: ApiError, ctx: AppContext): FastifyReply {
  if (err.kind === 'internal') ctx.log.error({ err: err.cause ?? err }, 'internal error');
  const { status, body } = googleError(err, googleApiKey(req) !== undefined);
  return reply.status(status).type('application/json; charset=UTF-8').send(body);
}
