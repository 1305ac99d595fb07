import type { FastifyInstance, FastifyReply } from 'fastify';
import { kieTaskId } from '../../dialects/kie/ids.js';
import { kieTime } from '../../dialects/kie/mapper.js';
import type { SimContext } from '../context.js';

const KIE_MODELS = ['veo3', 'veo3_fast', 'veo3_lite'];

/** kie's envelope. Business errors come with HTTP 200 and the code in the body; 500 and 504 are real. */
function envelope(reply: FastifyReply, code: number, msg: string, data: unknown = null, http = code === 500 || code === 504 ? code : 200): FastifyReply {
  return reply.status(http).send({ code, msg, data });
}

/**
 * kie.ai's Veo API: `POST /api/v1/veo/generate`, `GET /api/v1/veo/record-info?taskId=`.
 * `successFlag` 0 while generating, 1 on success (`response.resultUrls`), 3 when generation
 * failed (`errorCode` 400 for content policy, 501 otherwise). An unknown or lost task is
 * `422 record is null`.
 */
export async function kieSim(app: FastifyInstance, ctx: SimContext): Promise<void> {
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
    }, (r, status, message, fault) => {
      if (fault === 'recaptcha') return envelope(r, 422, `Your request was rejected by Flow(${message}). You may consider using our other fallback channels, which are likely to succeed. Please refer to the documentation.`);
      if (fault === '429') return envelope(r, 429, 'Rate Limited');
      return envelope(r, status, status === 504 ? 'Gateway Timeout' : 'Server Error - An unexpected error occurred while processing the request');
    });
    if (!job) return reply;
    if (typeof body.callBackUrl === 'string' && job.fault !== 'stall' && job.fault !== 'lost') {
      const target = body.callBackUrl;
      const base = ctx.base(req);
      // kie calls back when the job ends (success or failure); a callback that fails is not retried here.
      ctx.later(Math.max(0, job.readyAt - Date.now()), () => {
        const s = ctx.jobs.status(job, Date.now());
        const ok = s.state === 'succeeded';
        const payload = ok
          ? { code: 200, msg: 'Veo3.1 video generated successfully.', data: { taskId: job.id, info: { resultUrls: [`${base}/sim/files/${encodeURIComponent(job.id)}.mp4`], originUrls: null, resolution: '720p' }, fallbackFlag: false } }
          : { code: s.state === 'failed' && s.reason === 'safety' ? 400 : 501, msg: s.state === 'failed' ? s.message : 'failed', data: { taskId: job.id, fallbackFlag: false } };
        fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(15_000) }).catch(() => {});
      });
    }
    return envelope(reply, 200, 'success', { taskId: job.id });
  });

  app.get('/api/v1/veo/record-info', async (req, reply) => {
    if (!ctx.authorized(req)) return envelope(reply, 401, 'You do not have access permissions');
    const id = (req.query as { taskId?: unknown }).taskId;
    const job = typeof id === 'string' ? ctx.jobs.get(id) : undefined;
    if (!job || job.upstream !== 'kie') return envelope(reply, 422, 'record is null');
    const s = ctx.jobs.status(job, Date.now());
    if (s.state === 'lost') return envelope(reply, 422, 'record is null');
    if (ctx.pollFails(job)) return envelope(reply, 500, 'Internal Error, Please try again later.');
    const url = s.state === 'succeeded' ? ctx.fileUrl(req, job) : null;
    const safety = s.state === 'failed' && s.reason === 'safety';
    return envelope(reply, 200, 'success', {
      taskId: job.id,
      paramJson: JSON.stringify(job.request),
      completeTime: s.state === 'running' ? null : kieTime(job.readyAt),
      createTime: kieTime(job.createdAt),
      response: url ? { taskId: job.id, resultUrls: [url], originUrls: null, resolution: '720p' } : null,
      successFlag: s.state === 'running' ? 0 : s.state === 'succeeded' ? 1 : 3,
      errorCode: s.state === 'failed' ? (safety ? 400 : 501) : null,
      errorMessage: s.state === 'failed' ? (safety ? 'Your prompt was flagged by Website as violating content policies.' : s.message) : '',
      fallbackFlag: false,
    });
  });
}
