import { randomUUID } from 'node:crypto';
import fastifyMultipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../app/context.js';
import { ApiError } from '../app/errors.js';
import { TaskService } from '../app/tasks.js';
import { nativeTaskId } from '../dialects/native/ids.js';
import Value from 'typebox/value';
import { sniffImage } from '../media/images.js';
import { CreateBody, MAX_PROMPT, MAX_URL, toSpec } from '../dialects/native/request.js';
import { NATIVE } from '../dialects/native/routes.js';
import { toApiError } from '../http/errors.js';
import { fingerprint, KEY_HOLD_MS } from '../http/idempotency.js';
import { html, type Html } from './html.js';
import { page } from './layout.js';
import { knownModels } from './list-routes.js';
import { HIDE, sendHtml, viewerOf } from './scope.js';
import { redirect, same, type Viewer } from './session.js';

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp']);
const MAX_IMAGES = 3;

/** What the form sent (its text fields), to fill it again when it is refused. */
type Fields = Partial<Record<'prompt' | 'model' | 'aspect_ratio' | 'seconds' | 'resolution' | 'webhook_url' | 'idem' | '_csrf', string>>;

function form(ctx: AppContext, viewer: Viewer, f: Fields, error?: string): Html {
  const choice = (name: keyof Fields, values: string[], fallback: string) =>
    values.map((x) => html`<label class="check"><input type="radio" name="${name}" value="${x}"${(f[name] ?? fallback) === x ? html` checked` : ''}> ${x}</label>`);
  const models = knownModels(ctx);
  return html`<h1>New video</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/dashboard/new" enctype="multipart/form-data" class="card new-video">
<input type="hidden" name="_csrf" value="${viewer.csrf}">
<input type="hidden" name="idem" value="${f.idem ?? randomUUID()}">
<label>Prompt <textarea name="prompt" rows="4" required maxlength="20000">${f.prompt ?? ''}</textarea></label>
<label>Images <span class="muted">(optional: a first and a last frame, or up to three references; PNG, JPEG or WebP)</span>
<input type="file" name="images" accept="image/png,image/jpeg,image/webp" multiple></label>
<label>Model <select name="model">${models.map((m) => html`<option${(f.model ?? models[0]) === m ? html` selected` : ''}>${m}</option>`)}</select></label>
<fieldset><legend>Aspect</legend>${choice('aspect_ratio', ['16:9', '9:16'], '16:9')}</fieldset>
<fieldset><legend>Length</legend>${choice('seconds', ['4', '6', '8'], '8')}</fieldset>
<fieldset><legend>Resolution</legend>${choice('resolution', ['720p', '1080p', '4k'], '720p')}</fieldset>
<label>Webhook URL <span class="muted">(optional)</span> <input type="url" name="webhook_url" value="${f.webhook_url ?? ''}" placeholder="https://example.com/hooks/reelay"></label>
<div class="actions"><button type="submit">Create</button></div>
</form>`;
}

/**
 * `/dashboard/new`: the "New video" form, and its POST, which creates the task through the same
 * service as `POST /reelay/v1/tasks` (a native task of the viewer's tenant) and sends the browser
 * to its page. The form carries an idempotency key: the same form sent twice makes one task.
 */
export async function newRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  await app.register(fastifyMultipart, { throwFileSizeLimit: true });

  app.get('/new', { schema: HIDE }, async (req, reply) => {
    const viewer = viewerOf(req);
    return sendHtml(reply, page({ title: 'New video', viewer, section: 'new', body: form(ctx, viewer, {}) }));
  });

  app.post('/new', { schema: HIDE }, async (req, reply) => {
    const viewer = viewerOf(req);
    const fields: Fields = {};
    const images: { type: string; bytes: Buffer }[] = [];
    const refuse = (message: string, status = 400): FastifyReply =>
      sendHtml(reply, page({ title: 'New video', viewer, section: 'new', body: form(ctx, viewer, fields, message) }), status);
    if (!req.isMultipart()) return refuse('The form must be sent as multipart/form-data.');
    try {
      for await (const part of req.parts({ limits: { fileSize: ctx.config.imageMaxBytes, files: MAX_IMAGES, fields: 20, fieldSize: 100_000 } })) {
        if (part.type === 'file') {
          const bytes = await part.toBuffer();
          if (bytes.length === 0) continue; // the empty part of a file input left empty
          // The type its bytes say: the browser's word for it is the file name's.
          const type = sniffImage(bytes)?.type;
          if (!type || !IMAGE_TYPES.has(type)) return refuse(`${part.filename} is not a PNG, JPEG or WebP image.`);
          images.push({ type, bytes });
        } else if (typeof part.value === 'string') {
          (fields as Record<string, string>)[part.fieldname] = part.value;
        }
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'FST_REQ_FILE_TOO_LARGE') return refuse(`An image is larger than ${ctx.config.imageMaxBytes} bytes.`, 413);
      if (code === 'FST_FILES_LIMIT') return refuse(`At most ${MAX_IMAGES} images.`);
      return refuse(`The form could not be read: ${(e as Error).message}`);
    }
    // The CSRF check of a multipart form: its field (the preHandler cannot read the parts).
    if (!same(fields._csrf ?? (req.headers['x-csrf-token'] as string | undefined), viewer.csrf)) {
      return refuse('This form has expired or did not come from this dashboard; reload the page and try again.', 403);
    }
    const body: CreateBody = {
      model: (fields.model ?? '').trim(),
      prompt: fields.prompt ?? '',
      ...(images.length ? { images: images.map((i) => `data:${i.type};base64,${i.bytes.toString('base64')}`) } : {}),
      ...(fields.aspect_ratio === '9:16' ? { aspect_ratio: '9:16' as const } : { aspect_ratio: '16:9' as const }),
      seconds: fields.seconds === '4' ? 4 : fields.seconds === '6' ? 6 : 8,
      resolution: fields.resolution === '1080p' || fields.resolution === '4k' ? fields.resolution : '720p',
      ...(fields.webhook_url?.trim() ? { webhook_url: fields.webhook_url.trim() } : {}),
    };
    if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/.test(body.model)) return refuse('Choose a model.');
    if (body.webhook_url && !/^https?:\/\//.test(body.webhook_url)) return refuse('The webhook URL must start with http:// or https://.');
    // The limits of the API's own create (`POST /reelay/v1/tasks`), which this form stands for.
    if (body.prompt.length > MAX_PROMPT) return refuse(`The prompt is ${body.prompt.length} characters long: at most ${MAX_PROMPT}.`);
    if ((body.webhook_url?.length ?? 0) > MAX_URL) return refuse(`The webhook URL is longer than ${MAX_URL} characters.`);
    const error = Value.Errors(CreateBody, body)[0];
    if (error) return refuse(`The form is not a task the API would take: ${error.instancePath || 'body'} ${error.message}.`);
    try {
      const id = await createOnce(ctx, viewer, fields.idem, body);
      return redirect(req, reply, `/dashboard/tasks/${encodeURIComponent(id)}`);
    } catch (e) {
      const err = toApiError(e);
      if (err.kind === 'internal') throw e;
      return refuse(err.message, err.kind === 'insufficient_credits' ? 402 : err.kind === 'rate_limited' ? 429 : 400);
    }
  });
}

/**
 * Creates the form's task once per idempotency key (scope `dashboard.create`): a repeat of the
 * same form gives the task the first one made; gives its id.
 */
async function createOnce(ctx: AppContext, viewer: Viewer, idem: string | undefined, body: CreateBody): Promise<string> {
  const input = {
    id: nativeTaskId(),
    tenantId: viewer.tenantId,
    dialect: NATIVE,
    model: body.model,
    spec: toSpec(body, TaskService.randomSeed),
    request: { ...body, ...(body.images ? { images: body.images.map((_, i) => `upload:${i}`) } : {}) } as Record<string, unknown>,
    callbackUrl: body.webhook_url,
  };
  const key = idem?.trim();
  if (!key || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) return (await ctx.tasks.create(input)).id;
  const ref = { tenantId: viewer.tenantId, scope: 'dashboard.create', key, token: randomUUID() };
  const now = Date.now();
  const state = await ctx.store.takeKey({ ...ref, fingerprint: fingerprint('POST', '/dashboard/new', body), now, heldUntil: now + KEY_HOLD_MS, expiresAt: now + ctx.config.idempotencyTtlMs });
  if (state.kind === 'replay') {
    if (state.answer.taskId) return state.answer.taskId;
    throw new ApiError('key_reused', 'This form was answered before without a task; reload the page to make another video.');
  }
  if (state.kind === 'busy') throw new ApiError('in_progress', 'This form is being sent already; its task will appear in the list in a moment.');
  if (state.kind === 'mismatch') throw new ApiError('key_reused', 'This form was sent before with other values; reload the page to make another video.');
  try {
    const task = await ctx.tasks.create(input, { ref, answer: (t) => ({ status: 303, body: '', taskId: t.id }) });
    return task.id;
  } catch (e) {
    await ctx.store.dropKey(ref).catch(() => {});
    throw e;
  }
}
