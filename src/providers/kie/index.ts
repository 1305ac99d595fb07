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
  response?: { resultUrls?: unknown } | null;
}

const GENERATION_TYPE = { text: 'TEXT_2_VIDEO', frames: 'FIRST_AND_LAST_FRAMES_2_VIDEO', reference: 'REFERENCE_2_VIDEO' } as const;

/**
 * kie.ai's Veo API. Answers carry `{code,msg,data}`, with most errors as HTTP 200 and the code in
 * the body; both forms are read. Polling `record-info` is the source of truth; with
 * `options.callbacks: true`, kie also calls Reelay back (`/upstream-callbacks/…`), which only makes
 * the task's next poll come at once.
 */
export class KieProvider extends RemoteProvider {
  /** Where kie calls back (when `options.callbacks` is on and Reelay has a public URL). */
  private readonly callBackUrl?: string;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://api.kie.ai', () => ({ authorization: `Bearer ${config.apiKey}` }), deps);
    const url = deps.publicUrl ? callbackUrl(deps.publicUrl, config) : undefined;
    if (url) this.callBackUrl = url;
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
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
    const res = await this.call<{ taskId?: unknown }>('api/v1/veo/generate', { json: body });
    const taskId = res.data?.taskId;
    if (typeof taskId !== 'string' || !taskId) throw new TransientError(`${this.name}: generate answered without a taskId`);
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
      const urls = rec.response?.resultUrls;
      const url = Array.isArray(urls) && typeof urls[0] === 'string' ? urls[0] : undefined;
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
