import fastifyMultipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { ApiError } from '../../app/errors.js';
import type { StillKind } from '../../app/previews.js';
import { type Once, TaskService, UPLOADED } from '../../app/tasks.js';
import type { Task, TaskSpec } from '../../core/task.js';
import { tenantOf } from '../../http/auth.js';
import { queryParam, toApiError } from '../../http/errors.js';
import { createOnce } from '../../http/idempotency.js';
import { memoAnswer, sendJson } from '../../http/memo.js';
import { Mp4Scanner } from '../../media/mp4.js';
import { readForm, type FormLimits } from './body.js';
import { OpenAIError, sendError } from './errors.js';
import { videoId } from './ids.js';
import { OPENAI, REMIXED_FROM, STITCHED_SECONDS, toVideo, videoSeconds, videoStatus } from './mapper.js';
import { type FilePart, type Form, MAX_PROMPT, SIZES, isFile, promptOf, recordOf, toCreateSpec, toExtension } from './request.js';

const VARIANTS: Record<string, StillKind | 'video'> = { video: 'video', thumbnail: 'thumbnail.webp', spritesheet: 'spritesheet' };

/** The create's fields, read by hand from JSON or a form (`request.ts`). */
const CREATE_FORM = {
  type: 'object',
  properties: {
    prompt: { type: 'string' },
    model: { type: 'string', description: 'sora-2, sora-2-pro, or any public model of the routing file' },
    seconds: { enum: ['4', '8', '12'] },
    size: { enum: Object.keys(SIZES) },
    input_reference: { description: 'An image file (multipart), or `{image_url}` (a URL or data: URL)' },
  },
  required: ['prompt'],
};

/**
 * The OpenAI Videos API (Sora 2 shape) under `/v1/videos`: create, retrieve, list, delete,
 * content, remix and extensions, for the official `openai` SDK (`baseURL` = `<reelay>/v1`).
 * Edits and characters are not offered: a 400 in the envelope, never another door's 404.
 */
export async function openaiRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.setErrorHandler((err, _req, reply) => sendError(reply, doorError(err), ctx.log));
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new OpenAIError('not_found', `Invalid URL (${req.method} ${req.url.split('?')[0]})`, undefined, 'unknown_url'), ctx.log),
  );

  const retentionMs = ctx.config.retentionMs;
  const render = (task: Task) => toVideo(task, retentionMs);
  const answer = memoAnswer(render);

  const find = async (tenantId: string, id: string, param?: string): Promise<Task> => {
    const task = await ctx.tasks.get(tenantId, id);
    // A video deleted while it was being made is gone for this door, though its cancel runs on.
    if (!task || task.deleteRequested) throw notFound(id, param);
    return task;
  };

  /** Creates the task; an image refused at create names the field this door calls it by. */
  const create = async (input: { tenantId: string; model: string; spec: TaskSpec; request: Record<string, unknown> }, once: Once | undefined): Promise<Task> => {
    try {
      return await ctx.tasks.create({ id: videoId(), dialect: OPENAI, ...input }, once);
    } catch (e) {
      if (e instanceof ApiError && e.param === 'images') throw new ApiError(e.kind, e.message, 'input_reference');
      throw e;
    }
  };

  app.get('/:id', { config: { doc: { summary: 'Retrieve a video', responses: { 200: { description: 'The video object: `status` queued, in_progress, completed or failed, `progress`' }, 404: { description: '`video_not_found`' } } } } }, retrieveHandler(ctx, answer));

  app.get('/', { config: { doc: { path: '/v1/videos', summary: 'List videos', query: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 100 }, order: { enum: ['asc', 'desc'] }, after: { type: 'string' } } }, responses: { 200: { description: '`{object: "list", data, first_id, last_id, has_more}`' } } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const limit = limitOf(queryParam(req.query, 'limit'));
    const order = queryParam(req.query, 'order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new ApiError('validation', `Invalid value for order: '${order}'. Supported values are: 'asc', 'desc'.`, 'order');
    const after = queryParam(req.query, 'after')?.trim() || undefined;
    const page = await ctx.tasks.list(tenantId, { limit, order, after });
    // An unknown cursor is a bad parameter (400), not a missing list.
    if (!page) throw new ApiError('validation', `after: no video '${after}' to list after`, 'after');
    const data = page.tasks.filter((t) => !t.deleteRequested).map(render);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  });

  app.delete<{ Params: { id: string } }>('/:id', { config: { doc: { summary: 'Delete a video', description: 'A video still being made is canceled first (its upstream job stopped).', responses: { 200: { description: '`{id, object: "video.deleted", deleted: true}`' } } } } }, async (req) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const task = await find(tenantId, req.params.id);
    // A video still being made is canceled (its upstream job stopped) and deleted once stopped.
    if (!(await ctx.tasks.remove(task, { cancel: true }))) throw notFound(task.id);
    return { id: task.id, object: 'video.deleted', deleted: true };
  });

  app.get<{ Params: { id: string } }>('/:id/content', { config: { doc: { summary: 'Download its content', query: { type: 'object', properties: { variant: { enum: ['video', 'thumbnail', 'spritesheet'] } } }, responses: { 200: { description: 'The MP4 (Range supported), a WebP thumbnail or a JPEG spritesheet', type: 'application/octet-stream', schema: { type: 'string', format: 'binary' } }, 409: { description: 'Not completed yet' } } } } }, async (req, reply) => {
    const tenantId = await tenantOf(ctx.keys, req);
    const name = queryParam(req.query, 'variant') ?? 'video';
    const variant = Object.hasOwn(VARIANTS, name) ? VARIANTS[name]! : undefined;
    if (!variant) throw new ApiError('validation', `Invalid value for variant: '${name}'. Supported values are: 'video', 'thumbnail', 'spritesheet'.`, 'variant');
    const task = await find(tenantId, req.params.id);
    if (task.state === 'expired') throw expired(task);
    if (task.state === 'failed' || task.state === 'canceled') throw new OpenAIError('not_ready', `Video ${task.id} ${task.state}; it has no content`, undefined, 'video_failed');
    if (task.state !== 'succeeded') throw new ApiError('not_ready', `Video ${task.id} is ${videoStatus(task)}; its content can be downloaded once it has completed`);
    const file = variant === 'video' ? ctx.previews.video(task) : await ctx.previews.still(task, variant);
    const noContent = () => new OpenAIError('not_found', `Video ${task.id} has no ${name} content`, 'variant', 'content_not_found');
    if (!file) throw noContent();
    // The content of an id never changes, but it is behind a key: no shared cache may keep it.
    const served = await ctx.files.serve(req, reply, task.fileToken, file, { cacheControl: 'private, max-age=3600' });
    if (!served.found) throw noContent();
    return reply;
  });

  app.get('/characters/:id', { config: { doc: { summary: 'Characters (not offered)', responses: { 400: { description: 'Not supported' } } } } }, unsupported(ctx, 'Characters (GET /v1/videos/characters/{id})'));

  // The routes that take a body, with multipart in a scope of their own: the plugin adds an
  // onRequest and an onResponse hook to every route of its scope, and the retrieve route must
  // run without hooks.
  await app.register(async (forms) => {
    await forms.register(fastifyMultipart, { throwFileSizeLimit: true });
    const images: FormLimits = {
      fileBytes: ctx.config.imageMaxBytes,
      files: 1,
      // A data: URL of the largest image fits in a string part (image_url), as does any prompt.
      fieldBytes: Math.max(Math.ceil(ctx.config.imageMaxBytes / 3) * 4 + 64, MAX_PROMPT * 4),
    };
    // The engine takes a video to extend of up to 8 times the image limit (`Steps.storeSource`).
    const videos: FormLimits = { fileBytes: ctx.config.imageMaxBytes * 8, files: 1, fieldBytes: MAX_PROMPT * 4 };
    const remixes: FormLimits = { fileBytes: 1, files: 0, fieldBytes: MAX_PROMPT * 4 };

    forms.post('/', { config: { doc: { path: '/v1/videos', summary: 'Create a video', description: 'JSON or multipart. Takes `Idempotency-Key`.', idempotent: true, body: CREATE_FORM, multipart: true, responses: { 200: { description: 'The video object, `queued`' } } } } }, async (req, reply) => {
      const tenantId = await tenantOf(ctx.keys, req);
      const form = await readForm(req, images);
      const { model, spec } = toCreateSpec(form, TaskService.randomSeed);
      return createOnce(ctx, req, reply, { tenantId, scope: 'openai.create', body: form }, (once) => create({ tenantId, model, spec, request: clientRequest(form) }, once), render);
    });

    /** A new video from a completed one: its spec (size, seconds, images, seed), a new prompt. */
    forms.post<{ Params: { id: string } }>('/:id/remix', { config: { doc: { summary: 'Remix a completed video', idempotent: true, body: { type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] }, responses: { 200: { description: 'The new video object, with `remixed_from_video_id`' } } } } }, async (req, reply) => {
      const tenantId = await tenantOf(ctx.keys, req);
      const source = await find(tenantId, req.params.id, 'video_id');
      usable(source, 'video_id', 'remixed');
      const form = await readForm(req, remixes);
      const prompt = promptOf(form);
      // A remix of an extension extends the same video again: as long as its source.
      const request = { ...clientRequest(form), [REMIXED_FROM]: source.id, ...(source.spec.video !== undefined ? { [STITCHED_SECONDS]: videoSeconds(source) } : {}) };
      // An extension of an uploaded video names the stored copy by the extension's id.
      const video = source.spec.video === UPLOADED ? { video: `source:${source.id}` } : {};
      const input = { tenantId, model: source.model, spec: { ...source.spec, prompt, ...video }, request };
      return createOnce(ctx, req, reply, { tenantId, scope: 'openai.remix', body: form }, (once) => create(input, once), render);
    });

    /**
     * The video continued by a new part: `spec.video` names the source (`task:<id>`, or the MP4
     * sent as a data: URL) and `durationSeconds` is the new part; the object's `seconds` is the
     * stitched total, kept in the request. The new video has the source's size.
     */
    forms.post('/extensions', { config: { doc: { summary: 'Extend a video', idempotent: true, body: { type: 'object', properties: { prompt: { type: 'string' }, video: { description: '`{id}` of a completed video, or an MP4 file (multipart)' }, seconds: { type: 'string' } }, required: ['prompt', 'video'] }, multipart: true, responses: { 200: { description: 'The new video object; `seconds` is the stitched total' } } } } }, async (req, reply) => {
      const tenantId = await tenantOf(ctx.keys, req);
      const form = await readForm(req, videos);
      const ext = toExtension(form);
      let model: string;
      let spec: TaskSpec;
      let total: number;
      if (isFile(ext.video)) {
        const probed = probeUpload(ext.video);
        const size = uploadSize(probed.width, probed.height);
        model = ext.model;
        spec = { prompt: ext.prompt, images: [], mode: 'text', ...size, seed: TaskService.randomSeed(), durationSeconds: ext.seconds, enhancePrompt: false, video: `data:video/mp4;base64,${ext.video.bytes.toString('base64')}` };
        total = Math.round(probed.durationMs / 1000) + ext.seconds;
      } else {
        const source = await find(tenantId, ext.video.id, 'video.id');
        usable(source, 'video.id', 'extended');
        // The source's final video is already stitched when it is an extension itself.
        const { video: _video, ...kept } = source.spec;
        model = source.model;
        spec = { ...kept, prompt: ext.prompt, images: [], mode: 'text', seed: TaskService.randomSeed(), durationSeconds: ext.seconds, video: `task:${source.id}` };
        total = Number(videoSeconds(source)) + ext.seconds;
      }
      const input = { tenantId, model, spec, request: { ...clientRequest(form), [STITCHED_SECONDS]: String(total) } };
      return createOnce(ctx, req, reply, { tenantId, scope: 'openai.extensions', body: form }, (once) => create(input, once), render);
    });

    forms.post('/edits', { config: { doc: { summary: 'Edits (not offered)', responses: { 400: { description: 'Not supported' } } } } }, unsupported(ctx, 'Video edits (POST /v1/videos/edits)'));
    forms.post('/characters', { config: { doc: { summary: 'Characters (not offered)', responses: { 400: { description: 'Not supported' } } } } }, unsupported(ctx, 'Characters (POST /v1/videos/characters)'));
  });
}

/**
 * `GET /v1/videos/{id}`, the request a client polls: the handler of `http/poll.ts` with the id in
 * the path. When the key and the task are both in memory the answer (serialized once per task
 * version) is written without a promise. An expired video is rendered (completed, with
 * `expires_at` past), not refused.
 */
function retrieveHandler(ctx: AppContext, answer: (task: Task) => Buffer) {
  const finish = (reply: FastifyReply, id: string, task: Task | undefined): void => {
    if (!task || task.deleteRequested) throw notFound(id);
    sendJson(reply, answer(task));
  };
  const lookup = (reply: FastifyReply, tenantId: string, id: string): void | Promise<void> => {
    const hit = ctx.tasks.peek(tenantId, id);
    if (hit) return finish(reply, id, hit);
    return ctx.tasks.get(tenantId, id).then((task) => finish(reply, id, task));
  };
  return (req: FastifyRequest, reply: FastifyReply): void | Promise<void> => {
    const tenant = tenantOf(ctx.keys, req);
    const { id } = req.params as { id: string };
    if (typeof tenant === 'string') return lookup(reply, tenant, id);
    return tenant.then((tenantId) => lookup(reply, tenantId, id));
  };
}

/** The body as received, for `task.request`, without this door's notes: those are not the client's to give. */
function clientRequest(form: Form): Record<string, unknown> {
  const { [REMIXED_FROM]: _remixed, [STITCHED_SECONDS]: _stitched, ...request } = recordOf(form);
  return request;
}

const notFound = (id: string, param?: string) => new OpenAIError('not_found', `No video found with id '${id}'`, param, 'video_not_found');
const expired = (task: Task, param?: string) => new ApiError('expired', `Video ${task.id} has expired; its files are gone`, param);

/** A source of a remix or an extension must be completed; "not yet" is a 409, "never" a 400. */
function usable(task: Task, param: string, verb: string): void {
  if (task.state === 'expired') throw expired(task, param);
  if (task.state === 'failed' || task.state === 'canceled') throw new OpenAIError('validation', `Video ${task.id} ${task.state}; only a completed video can be ${verb}`, param, 'video_failed');
  if (task.state !== 'succeeded') throw new ApiError('not_ready', `Video ${task.id} is ${videoStatus(task)}; it can be ${verb} once it has completed`, param);
}

function limitOf(raw: string | undefined): number {
  if (raw === undefined) return 20;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) > 100) throw new ApiError('validation', `limit must be an integer from 0 to 100, got '${raw}'`, 'limit');
  return Number(raw);
}

/** The uploaded video to extend: an MP4 whose video track can be read in-process. */
function probeUpload(file: FilePart): { width: number; height: number; durationMs: number } {
  if (file.bytes.toString('latin1', 4, 8) !== 'ftyp') throw new ApiError('validation', 'video must be an MP4 file', 'video');
  const scanner = new Mp4Scanner();
  scanner.push(file.bytes);
  let probed;
  try {
    probed = scanner.result();
  } catch (e) {
    throw new ApiError('validation', `video is not a whole MP4: ${(e as Error).message}`, 'video');
  }
  if (!probed?.video) throw new ApiError('validation', 'video is not an MP4 with a video track Reelay can read', 'video');
  return { width: probed.video.width, height: probed.video.height, durationMs: probed.video.durationMs };
}

/** An endpoint of the OpenAI API that Reelay does not offer: the key is checked, then a 400. */
function unsupported(ctx: AppContext, what: string) {
  return async (req: FastifyRequest) => {
    await tenantOf(ctx.keys, req);
    throw new ApiError('unsupported', `${what} is not offered by this server; it makes, remixes and extends videos`);
  };
}

/** Fastify's errors as this door's; a wrong content type names both encodings the door takes. */
function doorError(err: unknown): ApiError {
  if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new ApiError('validation', 'Content-Type must be application/json or multipart/form-data');
  }
  return toApiError(err);
}

/** The door's error answer (`Door.replyError`). */
export function openaiReplyError(reply: FastifyReply, _req: FastifyRequest, err: ApiError, ctx: AppContext): FastifyReply {
  return sendError(reply, err, ctx.log);
}

/**
 * The spec's size for an extension of an uploaded video: the source's own. OpenAI's four sizes
 * and the standard 1080p and 4k frames map to themselves; any other even size within 64–4096
 * pixels becomes an exact frame; anything else the nearest 720p frame of its shape.
 */
function uploadSize(width: number, height: number): Pick<TaskSpec, 'aspectRatio' | 'resolution' | 'upsample' | 'frame'> {
  const known = SIZES[`${width}x${height}`];
  if (known) return known;
  const aspectRatio = height > width ? '9:16' : '16:9';
  const [long, short] = [Math.max(width, height), Math.min(width, height)];
  if (long === 1920 && short === 1080) return { aspectRatio, resolution: '1080p', upsample: true };
  if (long === 3840 && short === 2160) return { aspectRatio, resolution: '4k', upsample: true };
  if (width % 2 === 0 && height % 2 === 0 && short >= 64 && long <= 4096) return { aspectRatio, resolution: '1080p', upsample: true, frame: { width, height } };
  return SIZES[height > width ? '720x1280' : '1280x720']!;
}
