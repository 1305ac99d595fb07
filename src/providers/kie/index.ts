import type { ProviderConfig } from '../config.js';
import { httpError, snippet } from '../http.js';
import { callbackUrl } from '../callbacks.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import {
  PermanentError,
  type PollOutcome,
  type ProviderError,
  RateLimitedError,
  SafetyRejectedError,
  type SubmitRequest,
  TransientError,
} from '../port.js';
import { isSafetyText } from '../safety.js';

interface Envelope<T> {
  code?: unknown;
  msg?: unknown;
  data?: T | null;
}

interface KieRecord {
  successFlag?: unknown;
  errorCode?: unknown;
  errorMessage?: unknown;
  response?: { resultUrls?: unknown; fullResultUrls?: unknown } | null;
}

/** kie's extend names its models in its own words (generate's `veo3*` are not taken there). */
function extendModel(model: string): 'fast' | 'quality' | 'lite' {
  return model === 'veo3' ? 'quality' : model === 'veo3_lite' ? 'lite' : 'fast';
}

/** The first URL of a list, if it is one. */
function firstUrl(v: unknown): string | undefined {
  return Array.isArray(v) && typeof v[0] === 'string' && v[0] ? v[0] : undefined;
}

const GENERATION_TYPE = { text: 'TEXT_2_VIDEO', frames: 'FIRST_AND_LAST_FRAMES_2_VIDEO', reference: 'REFERENCE_2_VIDEO' } as const;

/**
 * kie.ai's Veo API. Answers carry `{code,msg,data}`, with most errors as HTTP 200 and the code in
 * the body; both forms are read. Polling `record-info` is the source of truth; with
 * `options.callbacks: true`, kie also calls Reelay back (`/upstream-callbacks/…`), which only makes
 * the task's next poll come at once.
 *
 * kie extends only the videos it made itself: `POST /api/v1/veo/extend` takes the kie `taskId` of
 * the job that made the source (`spec.videoJob`), not the video. The extension is polled like any
 * task; its `response.fullResultUrls` is the source and the new part as one video.
 */
export class KieProvider extends RemoteProvider {
  /** Only its own videos: the router plans it for an extend whose `spec.videoJob` names it. */
  readonly extends = 'own' as const;
  /** Where kie calls back (when `options.callbacks` is on and Reelay has a public URL). */
  private readonly callBackUrl?: string;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://api.kie.ai', () => ({ authorization: `Bearer ${config.apiKey}` }), deps);
    const url = deps.publicUrl ? callbackUrl(deps.publicUrl, config) : undefined;
    if (url) this.callBackUrl = url;
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    if (req.source) return this.extend(req);
    const spec = req.task.spec;
    const body = {
      prompt: req.prompt,
      model: req.model,
      ...(req.inputs.length ? { imageUrls: req.inputs.map((i) => i.url) } : {}),
      generationType: GENERATION_TYPE[spec.mode],
      aspect_ratio: spec.aspectRatio === '9:16' ? '9:16' : '16:9',
      // kie takes seeds in 10000–99999.
      seeds: 10000 + (Math.abs(spec.seed) % 90000),
      enableTranslation: false,
      ...(spec.watermark ? { watermark: spec.watermark } : {}),
      ...(this.callBackUrl ? { callBackUrl: this.callBackUrl } : {}),
    };
    return this.accepted(await this.call<{ taskId?: unknown }>('api/v1/veo/generate', { json: body }), 'generate');
  }

  /**
   * `POST /api/v1/veo/extend`: the kie task that made the source video (`spec.videoJob`), the
   * prompt, and the model in extend's words. The router sends only videos this provider made;
   * any other is refused here rather than sent as a task id kie never issued.
   */
  private async extend(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const spec = req.task.spec;
    const job = spec.videoJob;
    if (job?.provider !== this.name || !job.upstreamId) {
      throw new PermanentError(`${this.name}: kie extends only the videos it made; the source video ${job ? `was made by ${job.provider}` : 'names no upstream job'}`);
    }
    const body = {
      taskId: job.upstreamId,
      prompt: req.prompt,
      model: extendModel(req.model),
      // kie takes seeds in 10000–99999; another seed is not sent (kie picks one).
      ...(Number.isInteger(spec.seed) && spec.seed >= 10000 && spec.seed <= 99999 ? { seeds: spec.seed } : {}),
      ...(spec.watermark ? { watermark: spec.watermark } : {}),
      ...(this.callBackUrl ? { callBackUrl: this.callBackUrl } : {}),
    };
    return this.accepted(await this.call<{ taskId?: unknown }>('api/v1/veo/extend', { json: body }), 'extend');
  }

  private accepted(res: Envelope<{ taskId?: unknown }>, what: string): { upstreamId: string } {
    const taskId = res.data?.taskId;
    if (typeof taskId !== 'string' || !taskId) throw new TransientError(`${this.name}: ${what} answered without a taskId`);
    return { upstreamId: taskId };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    let res: Envelope<KieRecord>;
    try {
      res = await this.call<KieRecord>(`api/v1/veo/record-info?taskId=${encodeURIComponent(upstreamId)}`);
    } catch (e) {
      if (e instanceof PermanentError && /record is null/i.test(e.message)) {
        return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost task ${upstreamId} (record is null)`) };
      }
      throw e;
    }
    const rec = res.data;
    if (!rec) throw new TransientError(`${this.name}: record-info answered without data`);
    const flag = Number(rec.successFlag);
    if (flag === 0) return { status: 'running' };
    if (flag === 1) {
      // An extension's whole video (source and new part) is in fullResultUrls.
      const url = firstUrl(rec.response?.fullResultUrls) ?? firstUrl(rec.response?.resultUrls);
      if (!url) return { status: 'running' };
      return { status: 'succeeded', resultUrl: url };
    }
    const message = `${this.name}: generation failed${text(rec.errorMessage) ? `: ${text(rec.errorMessage)}` : ''}`;
    const code = Number(rec.errorCode);
    if (code === 400) {
      return { status: 'failed', error: isSafetyText(text(rec.errorMessage)) ? new SafetyRejectedError(message) : new PermanentError(message) };
    }
    return { status: 'failed', error: new TransientError(message) };
  }



  /** One call; a `code` other than 200 in the body becomes a typed error. */
  private async call<T>(path: string, opts: { json?: unknown } = {}): Promise<Envelope<T>> {
    const res = await this.http.call(path, opts);
    const where = `${this.name}: ${opts.json === undefined ? 'GET' : 'POST'} /${path.split('?')[0]}`;
    const body = res.json as Envelope<T> | undefined;
    if (!body || typeof body !== 'object' || body.code === undefined) {
      if (res.status < 200 || res.status >= 300) throw httpError(where, res);
      throw new TransientError(`${where}: the answer is not kie JSON (${res.status}, ${snippet(res.text)})`);
    }
    const code = Number(body.code);
    if (code === 200) return body;
    throw codeError(where, code, text(body.msg), res.headers['retry-after']);
  }
}

/** What a kie `code` means for Reelay. */
function codeError(where: string, code: number, msg: string, retryAfter: string | string[] | undefined): ProviderError {
  const detail = `${where} answered code ${code}: ${msg || '(no message)'}`;
  if (code === 429) return new RateLimitedError(detail, Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) * 1000 || 10_000);
  if (code === 400) return isSafetyText(msg) ? new SafetyRejectedError(detail) : new PermanentError(detail);
  // 422 "rejected by Flow …": kie itself says another channel is likely to succeed.
  if (code === 422 && /rejected by|fallback/i.test(msg)) return new TransientError(detail);
  if (code === 404 || code === 422) return new PermanentError(detail);
  // 401/402 (our account), 408, 455 (maintenance), 5xx: another route may work.
  return new TransientError(detail);
}

function text(v: unknown): string {
  return typeof v === 'string' && v !== 'null' ? v : '';
}
