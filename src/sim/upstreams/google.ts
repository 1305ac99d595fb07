import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import { type JoinedExtension, type SimJob, type SimStatus, extensionStatus } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';
import { joinBytesWithSample } from '../video.js';

const STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

/** google.rpc.Status, Google's error envelope. */
function gError(reply: FastifyReply, code: number, message: string): FastifyReply {
  return reply.status(code).send({ error: { code, message, status: STATUS[code] ?? 'UNKNOWN' } });
}

const refuse: Refuse = (reply, status, message) => gError(reply, status, message);

/** Operation ids and file ids: lowercase alphanumerics (the genai SDK extracts file ids with [a-z0-9]+). */
function opId(): string {
  return randomBytes(8).toString('hex');
}

interface PredictBody {
  instances?: { prompt?: unknown; image?: unknown; video?: unknown }[];
  parameters?: { aspectRatio?: unknown; storageUri?: unknown };
}

type Face = 'gemini' | 'vertex';

/** The video an extension continues: bytes sent inline, or a video this simulator made. */
type Source = { bytes: Buffer } | { of: SimJob };

interface Predict {
  prompt: string;
  aspect: '16:9' | '9:16';
  storageUri?: string;
  source?: Source;
}

function readPredict(req: FastifyRequest, face: Face, ctx: SimContext): Predict | string {
  const body = (req.body ?? {}) as PredictBody;
  if (!Array.isArray(body.instances) || body.instances.length !== 1) return 'instances must hold exactly one instance';
  const instance = body.instances[0];
  const source = instance?.video === undefined ? undefined : readSource(instance.video, face, ctx);
  if (typeof source === 'string') return source;
  const prompt = instance?.prompt;
  // Veo needs a prompt unless it continues a video.
  if ((typeof prompt !== 'string' || !prompt.trim()) && !source) return 'instances[0].prompt is required';
  const aspect = body.parameters?.aspectRatio ?? '16:9';
  if (aspect !== '16:9' && aspect !== '9:16') return `parameters.aspectRatio must be "16:9" or "9:16", got ${JSON.stringify(aspect)}`;
  const storageUri = typeof body.parameters?.storageUri === 'string' ? body.parameters.storageUri : undefined;
  return { prompt: typeof prompt === 'string' ? prompt : '', aspect, ...(storageUri ? { storageUri } : {}), ...(source ? { source } : {}) };
}

/**
 * The extension input under each API's own names: `{uri}` (a video this simulator made) or
 * `{encodedVideo, encoding}` on the Gemini API, `{bytesBase64Encoded, mimeType}` on Vertex. The
 * other API's names are refused, as are bytes that are not base64 or not an MP4.
 */
function readSource(video: unknown, face: Face, ctx: SimContext): Source | string {
  const at = 'instances[0].video';
  if (typeof video !== 'object' || video === null || Array.isArray(video)) return `Invalid value at '${at}': must be an object`;
  const v = video as Record<string, unknown>;
  const [bytesField, typeField, foreign] = face === 'gemini' ? ['encodedVideo', 'encoding', 'bytesBase64Encoded'] : ['bytesBase64Encoded', 'mimeType', 'encodedVideo'];
  if (v[foreign] !== undefined) return `Invalid JSON payload received. Unknown name "${foreign}" at '${at}': Cannot find field.`;
  if (face === 'gemini' && typeof v.uri === 'string') {
    const job = ctx.jobs.get(/files\/([a-z0-9]+)/.exec(v.uri)?.[1] ?? '');
    if (!job || job.upstream !== 'gemini' || ctx.jobs.status(job, Date.now()).state !== 'succeeded') return `Invalid value at '${at}.uri': no finished video at ${v.uri}`;
    return { of: job };
  }
  if (face === 'vertex' && v.gcsUri !== undefined) return `Invalid value at '${at}.gcsUri': the simulator reads no buckets; send bytesBase64Encoded`;
  const raw = v[bytesField];
  if (typeof raw !== 'string' || !raw) return `Invalid value at '${at}': ${face === 'gemini' ? 'uri or encodedVideo' : 'bytesBase64Encoded or gcsUri'} is required`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || raw.length % 4 !== 0) return `Invalid value at '${at}.${bytesField}' (TYPE_BYTES), Base64 decoding failed`;
  const type = v[typeField] ?? 'video/mp4';
  if (type !== 'video/mp4') return `Invalid value at '${at}.${typeField}': unsupported video type ${JSON.stringify(type)}; video/mp4 is supported`;
  const bytes = Buffer.from(raw, 'base64');
  if (bytes.subarray(4, 8).toString('latin1') !== 'ftyp') return `Invalid value at '${at}.${bytesField}': the input video is not an MP4 file`;
  return { bytes };
}

/** An extension job's video, once joined (`video`) or not made (`error`). */
type Extension = JoinedExtension;

/**
 * Joins the source and the sample of the job's aspect into one video: the source (scaled to the
 * sample's frame), then the sample, each with its sound (silence for a source without any).
 */
async function extend(ctx: SimContext, job: SimJob, source: Buffer): Promise<Buffer> {
  const { ffmpeg, ffprobe } = ctx.opts.binaries;
  const sample = await ctx.videos.path(job.aspect);
  return joinBytesWithSample({ ffmpeg, ffprobe, dir: ctx.opts.dir, sample, small: ctx.opts.videoSize === 'small', aspect: job.aspect }, `extend-${job.id}`, source);
}

/** The operation as Google answers it: `done` absent while running. */
function operation(name: string, s: SimStatus | { state: 'invalid'; message: string }, response: () => unknown) {
  if (s.state === 'running') return { name, metadata: { progressPercent: s.progress } };
  if (s.state === 'invalid') return { name, done: true, error: { code: 3, message: s.message } };
  if (s.state === 'failed' && s.reason === 'safety') {
    return { name, done: true, response: { '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse', generateVideoResponse: { raiMediaFilteredCount: 1, raiMediaFilteredReasons: ["Your prompt conflicted with our safety policies. You will not be charged for this request."] } } };
  }
  if (s.state === 'failed') return { name, done: true, error: { code: s.reason === 'cancelled' ? 1 : 13, message: s.message } };
  return { name, done: true, response: response() };
}

/**
 * Google's Veo, both faces:
 * - the Gemini API: `POST /v1beta/models/{model}:predictLongRunning` (key in `x-goog-api-key` or
 *   `?key=`), `GET /v1beta/{operation name}`, `GET /v1beta/files/{id}:download?alt=media` (which
 *   redirects to the file, as Google's storage does);
 * - Vertex AI: `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning`
 *   and `…:fetchPredictOperation` with an OAuth bearer token from `POST /token` (the service
 *   account's `token_uri`); videos inline as base64, or in a bucket when `storageUri` is given,
 *   served by `GET /storage/v1/b/{bucket}/o/{object}?alt=media`.
 * Both take an extension (`instances[0].video`): the job's video is then the source followed by
 * the sample, joined with ffmpeg while the job runs; a source that cannot be read fails the
 * operation with 3 INVALID_ARGUMENT.
 */
export async function googleSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const extensions = new Map<string, Extension>();
  const startExtension = async (job: SimJob, source: Source) => {
    const ext: Extension = {};
    extensions.set(job.id, ext);
    // Extensions are rare: the oldest are dropped past a thousand.
    if (extensions.size > 1000) extensions.delete(extensions.keys().next().value!);
    try {
      ext.video = await extend(ctx, job, 'bytes' in source ? source.bytes : await videoOf(source.of));
    } catch (e) {
      ext.error = `Unable to process the input video: ${(e as Error).message.split('\n')[0]}`;
    }
  };
  /** A job's video: its joined extension, else the sample. */
  const videoOf = async (job: SimJob): Promise<Buffer> => extensions.get(job.id)?.video ?? ctx.videos.bytes(job.aspect);
  /** The job's status, held at "running" until its extension is joined. */
  const statusOf = (job: SimJob) => extensionStatus(ctx.jobs.status(job, Date.now()), extensions.get(job.id));
  const admit = async (req: FastifyRequest, reply: FastifyReply, face: Face, model: string): Promise<string | undefined> => {
    const input = readPredict(req, face, ctx);
    if (typeof input === 'string') {
      gError(reply, 400, input);
      return undefined;
    }
    const id = opId();
    const job = await ctx.admit(req, reply, { id, upstream: face, model, prompt: input.prompt, aspect: input.aspect, request: req.body }, refuse);
    if (!job) return undefined;
    if (input.source) void startExtension(job, input.source);
    return id;
  };

  // --- Gemini API -------------------------------------------------------------------------
  app.post<{ Params: { spec: string } }>('/v1beta/models/:spec', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const [model, method] = req.params.spec.split(':');
    if (method !== 'predictLongRunning' || !model) return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    if (!/^veo-/.test(model)) return gError(reply, 404, `models/${model} is not found for API version v1beta, or is not supported for predictLongRunning.`);
    const id = await admit(req, reply, 'gemini', model);
    if (!id) return reply;
    return { name: `models/${model}/operations/${id}` };
  });

  app.get<{ Params: { model: string; id: string } }>('/v1beta/models/:model/operations/:id', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const job = ctx.jobs.get(req.params.id);
    const name = `models/${req.params.model}/operations/${req.params.id}`;
    if (!job || job.upstream !== 'gemini') return gError(reply, 404, `Operation ${name} not found`);
    const s = statusOf(job);
    if (s.state === 'lost') return gError(reply, 404, `Operation ${name} not found`);
    if (ctx.pollFails(job)) return gError(reply, 500, 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting');
    return operation(name, s, () => ({
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse',
      generateVideoResponse: { generatedSamples: [{ video: { uri: `${ctx.base(req)}/v1beta/files/${job.id}:download?alt=media`, encoding: 'video/mp4' } }] },
    }));
  });

  // Google's operation cancel: an empty answer, and the operation ends with code 1 (CANCELLED).
  app.post<{ Params: { model: string; spec: string } }>('/v1beta/models/:model/operations/:spec', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const [id, method] = req.params.spec.split(':');
    const job = ctx.jobs.get(id ?? '');
    if (method !== 'cancel') return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    if (!job || job.upstream !== 'gemini') return gError(reply, 404, `Operation models/${req.params.model}/operations/${id} not found`);
    if (statusOf(job).state === 'running') job.cancelled = true;
    return {};
  });

  app.get<{ Params: { spec: string } }>('/v1beta/files/:spec', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const id = req.params.spec.split(':')[0]!;
    const job = ctx.jobs.get(id);
    if (!job || statusOf(job).state !== 'succeeded') return gError(reply, 404, `File ${id} not found`);
    // A joined extension lives here, not with the samples behind the storage redirect.
    const joined = extensions.get(job.id)?.video;
    if (joined) return reply.header('content-type', 'video/mp4').send(joined);
    return reply.redirect(ctx.fileUrl(req, job), 302);
  });

  // --- Vertex AI --------------------------------------------------------------------------
  const tokens = new Set<string>();
  app.post('/token', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.grant_type !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || typeof body.assertion !== 'string') {
      return reply.status(400).send({ error: 'invalid_grant', error_description: 'expected a jwt-bearer grant with an assertion' });
    }
    const parts = body.assertion.split('.');
    let claims: Record<string, unknown> = {};
    try {
      claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
    } catch {
      // checked below
    }
    if (parts.length !== 3 || typeof claims.iss !== 'string' || typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) {
      return reply.status(400).send({ error: 'invalid_grant', error_description: 'Invalid JWT: iss, scope, aud, iat and exp are required and the token must not be expired' });
    }
    if (ctx.opts.keys.length > 0 && !ctx.opts.keys.includes(claims.iss)) return reply.status(400).send({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    const token = `ya29.sim-${randomBytes(16).toString('hex')}`;
    tokens.add(token);
    return { access_token: token, expires_in: 3599, token_type: 'Bearer' };
  });
  const vertexAuthorized = (req: FastifyRequest) => tokens.has(/^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');

  /** A Vertex result: in the bucket named by `storageUri`, else inline base64. */
  const vertexVideo = async (job: SimJob): Promise<Record<string, string>> => {
    const storageUri = (job.request as PredictBody).parameters?.storageUri;
    if (typeof storageUri === 'string' && storageUri.startsWith('gs://')) {
      return { gcsUri: `${storageUri.replace(/\/+$/, '')}/${job.id}.mp4`, mimeType: 'video/mp4' };
    }
    return { bytesBase64Encoded: (await videoOf(job)).toString('base64'), mimeType: 'video/mp4' };
  };

  app.post<{ Params: { project: string; location: string; spec: string } }>('/v1/projects/:project/locations/:location/publishers/google/models/:spec', async (req, reply) => {
    if (!vertexAuthorized(req)) return gError(reply, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
    const [model, method] = req.params.spec.split(':');
    const prefix = `projects/${req.params.project}/locations/${req.params.location}/publishers/google/models/${model}`;
    if (method === 'fetchPredictOperation') {
      const opName = (req.body as { operationName?: unknown } | undefined)?.operationName;
      const id = typeof opName === 'string' && opName.startsWith(`${prefix}/operations/`) ? opName.split('/operations/')[1]! : '';
      const job = ctx.jobs.get(id);
      if (!job || job.upstream !== 'vertex') return gError(reply, 404, `Operation ${String(opName)} not found`);
      const s = statusOf(job);
      if (s.state === 'lost') return gError(reply, 404, `Operation ${String(opName)} not found`);
      if (ctx.pollFails(job)) return gError(reply, 503, 'The service is currently unavailable.');
      const video = s.state === 'succeeded' ? await vertexVideo(job) : {};
      return operation(opName as string, s, () => ({ '@type': 'type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse', videos: [video] }));
    }
    if (method !== 'predictLongRunning' || !model) return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    const id = await admit(req, reply, 'vertex', model);
    if (!id) return reply;
    return { name: `${prefix}/operations/${id}` };
  });

  app.post<{ Params: { project: string; location: string; model: string; spec: string } }>('/v1/projects/:project/locations/:location/publishers/google/models/:model/operations/:spec', async (req, reply) => {
    if (!vertexAuthorized(req)) return gError(reply, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
    const [id, method] = req.params.spec.split(':');
    const job = ctx.jobs.get(id ?? '');
    if (method !== 'cancel') return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    if (!job || job.upstream !== 'vertex') return gError(reply, 404, `Operation ${id} not found`);
    if (statusOf(job).state === 'running') job.cancelled = true;
    return {};
  });

  app.get<{ Params: { bucket: string; object: string } }>('/storage/v1/b/:bucket/o/:object', async (req, reply) => {
    if (!vertexAuthorized(req)) return gError(reply, 401, 'Anonymous caller does not have storage.objects.get access.');
    const id = /([a-f0-9]{16})\.mp4$/.exec(decodeURIComponent(req.params.object))?.[1] ?? '';
    const job = ctx.jobs.get(id);
    if (!job || statusOf(job).state !== 'succeeded') return gError(reply, 404, 'No such object');
    const joined = extensions.get(job.id)?.video;
    if (joined) return reply.header('content-type', 'video/mp4').send(joined);
    return ctx.sendVideo(job, reply);
  });
}
