import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { kieTaskId } from '../../dialects/kie/ids.js';
import { kieTime } from '../../dialects/kie/mapper.js';
import type { Refuse, SimContext } from '../context.js';
import { type JoinedExtension, type SimJob, extensionStatus } from '../jobs.js';
import { joinBytesWithSample } from '../video.js';

const KIE_MODELS = ['veo3', 'veo3_fast', 'veo3_lite'];
/** Extend's models: its own words, not generate's. */
const EXTEND_MODELS = ['fast', 'quality', 'lite'];

/** kie's envelope. Business errors come with HTTP 200 and the code in the body; 500 and 504 are real. */
function envelope(reply: FastifyReply, code: number, msg: string, data: unknown = null, http = code === 500 || code === 504 ? code : 200): FastifyReply {
  return reply.status(http).send({ code, msg, data });
}

/** A create fault, as kie answers it (generate and extend alike). */
const refuse: Refuse = (r, status, message, fault) => {
  if (fault === 'recaptcha') return envelope(r, 422, `Your request was rejected by Flow(${message}). You may consider using our other fallback channels, which are likely to succeed. Please refer to the documentation.`);
  if (fault === '429') return envelope(r, 429, 'Rate Limited');
  return envelope(r, status, status === 504 ? 'Gateway Timeout' : 'Server Error - An unexpected error occurred while processing the request');
};

/**
 * Joins the source video (bytes) and the sample of the job's aspect into one video: the source
 * scaled to the sample's frame, then the sample. The same join as the Google and OpenAI
 * simulators' extensions.
 */
async function joinSource(ctx: SimContext, job: SimJob, source: Buffer): Promise<Buffer> {
  const { ffmpeg, ffprobe } = ctx.opts.binaries;
  const sample = await ctx.videos.path(job.aspect);
  return joinBytesWithSample({ ffmpeg, ffprobe, dir: ctx.opts.dir, sample, small: ctx.opts.videoSize === 'small', aspect: job.aspect }, `kie-extend-${job.id}`, source);
}

/**
 * kie.ai's Veo API: `POST /api/v1/veo/generate`, `POST /api/v1/veo/extend`,
 * `GET /api/v1/veo/record-info?taskId=`. `successFlag` 0 while generating, 1 on success
 * (`response.resultUrls`), 3 when generation failed (`errorCode` 400 for content policy, 501
 * otherwise). An unknown or lost task is `422 record is null`.
 *
 * An extension takes the `taskId` of a finished job of this simulator (unknown: 404; not finished:
 * 422 `record status is not success`), `prompt` and `model` (`fast`, `quality`, `lite`). Its video
 * is the source job's video followed by the sample, joined with ffmpeg while the job runs (the job
 * is held at running until then), served from `/sim/kie/files/<id>.mp4` and named by both
 * `response.fullResultUrls` and `response.resultUrls`.
 */
export async function kieSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
  const extensions = new Map<string, JoinedExtension>();
  // Joins still running when the simulator closes are waited for, so their files are removed.
  const joining = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...joining]);
  });
  /** The job's status, held at "running" until its extension is joined. */
  const statusOf = (job: SimJob) => extensionStatus(ctx.jobs.status(job, Date.now()), extensions.get(job.id));
  /** A job's video: its joined extension, else the sample. */
  const videoOf = async (job: SimJob): Promise<Buffer> => extensions.get(job.id)?.video ?? ctx.videos.bytes(job.aspect);
  /** Where a job's video is served: a joined extension here, the sample with every upstream's files. */
  const urlOf = (req: FastifyRequest, job: SimJob) => (extensions.has(job.id) ? `${ctx.base(req)}/sim/kie/files/${encodeURIComponent(job.id)}.mp4` : ctx.fileUrl(req, job));

  /**
   * kie calls back when the job ends (success or failure), an extension once it is joined; a
   * callback that fails is not retried here.
   */
  const callBack = (req: FastifyRequest, job: SimJob, target: string, extension: boolean) => {
    const send = () => {
      const s = statusOf(job);
      if (s.state === 'running') return ctx.later(100, send);
      const ok = s.state === 'succeeded';
      const url = urlOf(req, job);
      const payload = ok
        ? { code: 200, msg: extension ? 'Veo3.1 video extension successful.' : 'Veo3.1 video generated successfully.', data: { taskId: job.id, info: { resultUrls: [url], originUrls: null, resolution: '720p' }, fallbackFlag: false } }
        : { code: s.state === 'failed' && s.reason === 'safety' ? 400 : s.state === 'invalid' ? 400 : 501, msg: s.state === 'failed' || s.state === 'invalid' ? s.message : 'failed', data: { taskId: job.id, fallbackFlag: false } };
      fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(15_000) }).catch(() => {});
    };
    ctx.later(Math.max(0, job.readyAt - Date.now()), send);
  };

  app.post('/api/v1/veo/generate', async (req, reply) => {
    if (!ctx.authorized(req)) return envelope(reply, 401, 'You do not have access permissions');
    const body = (req.body ?? {}) as { prompt?: unknown; model?: unknown; aspect_ratio?: unknown; aspectRatio?: unknown; callBackUrl?: unknown };
    if (typeof body.prompt !== 'string' || !body.prompt.trim()) return envelope(reply, 422, 'prompt is required');
    const model = body.model ?? 'veo3_fast';
    if (typeof model !== 'string' || !KIE_MODELS.includes(model)) return envelope(reply, 422, `model must be one of ${KIE_MODELS.join(', ')}`);
    const aspect = body.aspect_ratio ?? body.aspectRatio;
    const job = await ctx.admit(req, reply, {
      id: kieTaskId(),
      upstream: 'kie',
      model,
      prompt: body.prompt,
      aspect: aspect === '9:16' ? '9:16' : '16:9',
      request: body,
    }, refuse);
    if (!job) return reply;
    if (typeof body.callBackUrl === 'string' && job.fault !== 'stall' && job.fault !== 'lost') callBack(req, job, body.callBackUrl, false);
    return envelope(reply, 200, 'success', { taskId: job.id });
  });

  app.post('/api/v1/veo/extend', async (req, reply) => {
    if (!ctx.authorized(req)) return envelope(reply, 401, 'You do not have access permissions');
    const body = (req.body ?? {}) as { taskId?: unknown; prompt?: unknown; model?: unknown; callBackUrl?: unknown };
    if (typeof body.taskId !== 'string' || !body.taskId) return envelope(reply, 422, 'taskId is required');
    if (typeof body.prompt !== 'string' || !body.prompt.trim()) return envelope(reply, 422, 'prompt is required');
    const model = body.model ?? 'fast';
    if (typeof model !== 'string' || !EXTEND_MODELS.includes(model)) return envelope(reply, 422, `model must be one of ${EXTEND_MODELS.join(', ')}`);
    const of = ctx.jobs.get(body.taskId);
    const was = of && of.upstream === 'kie' ? statusOf(of) : undefined;
    if (!of || !was || was.state === 'lost') return envelope(reply, 404, `Not Found: no task ${body.taskId}`);
    if (was.state !== 'succeeded') return envelope(reply, 422, 'record status is not success');
    const job = await ctx.admit(req, reply, { id: kieTaskId(), upstream: 'kie', model, prompt: body.prompt, aspect: of.aspect, request: body }, refuse);
    if (!job) return reply;
    const ext: JoinedExtension = {};
    extensions.set(job.id, ext);
    // Extensions are rare: the oldest are dropped past a thousand.
    if (extensions.size > 1000) extensions.delete(extensions.keys().next().value!);
    const joined = videoOf(of)
      .then((source) => joinSource(ctx, job, source))
      .then((video) => (ext.video = video), (e: Error) => (ext.error = `Unable to process the source video: ${e.message.split('\n')[0]}`))
      .finally(() => joining.delete(joined));
    joining.add(joined);
    if (typeof body.callBackUrl === 'string' && job.fault !== 'stall' && job.fault !== 'lost') callBack(req, job, body.callBackUrl, true);
    return envelope(reply, 200, 'success', { taskId: job.id });
  });

  app.get('/api/v1/veo/record-info', async (req, reply) => {
    if (!ctx.authorized(req)) return envelope(reply, 401, 'You do not have access permissions');
    const id = (req.query as { taskId?: unknown }).taskId;
    const job = typeof id === 'string' ? ctx.jobs.get(id) : undefined;
    if (!job || job.upstream !== 'kie') return envelope(reply, 422, 'record is null');
    const s = statusOf(job);
    if (s.state === 'lost') return envelope(reply, 422, 'record is null');
    if (ctx.pollFails(job)) return envelope(reply, 500, 'Internal Error, Please try again later.');
    const url = s.state === 'succeeded' ? urlOf(req, job) : null;
    const safety = s.state === 'failed' && s.reason === 'safety';
    // An extension's whole video (the source and the new part) is its fullResultUrls.
    const full = extensions.has(job.id) && url ? { fullResultUrls: [url] } : {};
    return envelope(reply, 200, 'success', {
      taskId: job.id,
      paramJson: JSON.stringify(job.request),
      completeTime: s.state === 'running' ? null : kieTime(job.readyAt),
      createTime: kieTime(job.createdAt),
      response: url ? { taskId: job.id, resultUrls: [url], ...full, originUrls: null, resolution: '720p' } : null,
      successFlag: s.state === 'running' ? 0 : s.state === 'succeeded' ? 1 : 3,
      // A source that could not be joined is an input error (400), as kie reports image fetches.
      errorCode: s.state === 'failed' ? (safety ? 400 : 501) : s.state === 'invalid' ? 400 : null,
      errorMessage: s.state === 'failed' ? (safety ? 'Your prompt was flagged by Website as violating content policies.' : s.message) : s.state === 'invalid' ? s.message : '',
      fallbackFlag: false,
    });
  });

  // An extension's joined video (a plain job's video is the sample, with every upstream's files).
  app.get<{ Params: { name: string } }>('/sim/kie/files/:name', async (req, reply) => {
    const job = ctx.jobs.get(req.params.name.replace(/\.mp4$/, ''));
    const video = job && job.upstream === 'kie' && statusOf(job).state === 'succeeded' ? extensions.get(job.id)?.video : undefined;
    if (!video) return reply.status(404).send({ error: 'no such file' });
    return reply.header('content-type', 'video/mp4').header('content-length', String(video.length)).send(video);
  });
}
