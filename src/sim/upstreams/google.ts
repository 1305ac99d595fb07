import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from '../../core/ids.js';
import type { SimJob, SimStatus } from '../jobs.js';
import type { Refuse, SimContext } from '../context.js';

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
  instances?: { prompt?: unknown; image?: unknown }[];
  parameters?: { aspectRatio?: unknown; storageUri?: unknown };
}

function readPredict(req: FastifyRequest): { prompt: string; aspect: '16:9' | '9:16'; storageUri?: string } | string {
  const body = (req.body ?? {}) as PredictBody;
  if (!Array.isArray(body.instances) || body.instances.length !== 1) return 'instances must hold exactly one instance';
  const prompt = body.instances[0]?.prompt;
  if (typeof prompt !== 'string' || !prompt.trim()) return 'instances[0].prompt is required';
  const aspect = body.parameters?.aspectRatio ?? '16:9';
  if (aspect !== '16:9' && aspect !== '9:16') return `parameters.aspectRatio must be "16:9" or "9:16", got ${JSON.stringify(aspect)}`;
  const storageUri = typeof body.parameters?.storageUri === 'string' ? body.parameters.storageUri : undefined;
  return { prompt, aspect, ...(storageUri ? { storageUri } : {}) };
}

/** The operation as Google answers it: `done` absent while running. */
function operation(name: string, s: SimStatus, response: () => unknown) {
  if (s.state === 'running') return { name, metadata: { progressPercent: s.progress } };
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
 */
export async function googleSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  // --- Gemini API -------------------------------------------------------------------------
  app.post<{ Params: { spec: string } }>('/v1beta/models/:spec', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const [model, method] = req.params.spec.split(':');
    if (method !== 'predictLongRunning' || !model) return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    if (!/^veo-/.test(model)) return gError(reply, 404, `models/${model} is not found for API version v1beta, or is not supported for predictLongRunning.`);
    const input = readPredict(req);
    if (typeof input === 'string') return gError(reply, 400, input);
    const id = opId();
    const job = await ctx.admit(req, reply, { id, upstream: 'gemini', model, prompt: input.prompt, aspect: input.aspect, request: req.body }, refuse);
    if (!job) return reply;
    return { name: `models/${model}/operations/${id}` };
  });

  app.get<{ Params: { model: string; id: string } }>('/v1beta/models/:model/operations/:id', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const job = ctx.jobs.get(req.params.id);
    const name = `models/${req.params.model}/operations/${req.params.id}`;
    if (!job || job.upstream !== 'gemini') return gError(reply, 404, `Operation ${name} not found`);
    const s = ctx.jobs.status(job, Date.now());
    if (s.state === 'lost') return gError(reply, 404, `Operation ${name} not found`);
    if (ctx.pollFails(job)) return gError(reply, 500, 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting');
    return operation(name, s, () => ({
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse',
      generateVideoResponse: { generatedSamples: [{ video: { uri: `${ctx.base(req)}/v1beta/files/${job.id}:download?alt=media`, encoding: 'video/mp4' } }] },
    }));
  });

  app.get<{ Params: { spec: string } }>('/v1beta/files/:spec', async (req, reply) => {
    if (!ctx.authorized(req)) return gError(reply, 403, 'Method doesn\'t allow unregistered callers. Please use an API key.');
    const id = req.params.spec.split(':')[0]!;
    const job = ctx.jobs.get(id);
    if (!job || ctx.jobs.status(job, Date.now()).state !== 'succeeded') return gError(reply, 404, `File ${id} not found`);
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

  app.post<{ Params: { project: string; location: string; spec: string } }>('/v1/projects/:project/locations/:location/publishers/google/models/:spec', async (req, reply) => {
    if (!vertexAuthorized(req)) return gError(reply, 401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.');
    const [model, method] = req.params.spec.split(':');
    const prefix = `projects/${req.params.project}/locations/${req.params.location}/publishers/google/models/${model}`;
    if (method === 'fetchPredictOperation') {
      const opName = (req.body as { operationName?: unknown } | undefined)?.operationName;
      const id = typeof opName === 'string' && opName.startsWith(`${prefix}/operations/`) ? opName.split('/operations/')[1]! : '';
      const job = ctx.jobs.get(id);
      if (!job || job.upstream !== 'vertex') return gError(reply, 404, `Operation ${String(opName)} not found`);
      const s = ctx.jobs.status(job, Date.now());
      if (s.state === 'lost') return gError(reply, 404, `Operation ${String(opName)} not found`);
      if (ctx.pollFails(job)) return gError(reply, 503, 'The service is currently unavailable.');
      const video = await vertexVideo(ctx, job);
      return operation(opName as string, s, () => ({ '@type': 'type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse', videos: [video] }));
    }
    if (method !== 'predictLongRunning' || !model) return gError(reply, 404, `${req.params.spec} is not a method of this API`);
    const input = readPredict(req);
    if (typeof input === 'string') return gError(reply, 400, input);
    const id = opId();
    const job = await ctx.admit(req, reply, { id, upstream: 'vertex', model, prompt: input.prompt, aspect: input.aspect, request: req.body }, refuse);
    if (!job) return reply;
    return { name: `${prefix}/operations/${id}` };
  });

  app.get<{ Params: { bucket: string; object: string } }>('/storage/v1/b/:bucket/o/:object', async (req, reply) => {
    if (!vertexAuthorized(req)) return gError(reply, 401, 'Anonymous caller does not have storage.objects.get access.');
    const id = /([a-f0-9]{16})\.mp4$/.exec(decodeURIComponent(req.params.object))?.[1] ?? '';
    const job = ctx.jobs.get(id);
    if (!job || ctx.jobs.status(job, Date.now()).state !== 'succeeded') return gError(reply, 404, 'No such object');
    return ctx.sendVideo(job, reply);
  });
}

/** A Vertex result: in the bucket named by `storageUri`, else inline base64. */
async function vertexVideo(ctx: SimContext, job: SimJob): Promise<Record<string, string>> {
  const storageUri = (job.request as PredictBody).parameters?.storageUri;
  if (typeof storageUri === 'string' && storageUri.startsWith('gs://')) {
    return { gcsUri: `${storageUri.replace(/\/+$/, '')}/${job.id}.mp4`, mimeType: 'video/mp4' };
  }
  return { bytesBase64Encoded: (await ctx.videos.bytes(job.aspect)).toString('base64'), mimeType: 'video/mp4' };
}
