import type { ProviderConfig } from '../config.js';
import { httpError, snippet } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

interface QueryAnswer {
  id?: string;
  status?: string;
  video_url?: string | null;
  detail?: { video_url?: string; error_message?: string; video_generation_error?: string; upsample_video_url?: string };
}

const RUNNING = new Set(['pending', 'image_downloading', 'video_generating', 'video_upsampling', 'processing', 'queued']);
const DONE = new Set(['completed', 'video_generation_completed', 'video_upsampling_completed', 'success', 'succeeded']);

/**
 * kkiai-style resellers (kkiai, vectorengine, yunwu and the other new-api fronts that share the
 * shape): `POST /v1/video/create`, `GET /v1/video/query?id=`. Reelay sends its own (enhanced)
 * prompt and makes the upsampled rendition itself, so it asks the upstream for neither.
 */
export class KkiaiProvider extends RemoteProvider {
  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://api.kkiai.com', () => ({ authorization: `Bearer ${config.apiKey}` }), deps);
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const body = {
      model: req.model,
      prompt: req.prompt,
      ...(req.inputs.length ? { images: req.inputs.map((i) => i.url) } : {}),
      enhance_prompt: false,
      enable_upsample: false,
      aspect_ratio: req.task.spec.aspectRatio === '9:16' ? '9:16' : '16:9',
    };
    const res = await this.http.json<{ id?: unknown; status?: unknown; error?: { message?: string } }>('v1/video/create', { json: body });
    if (typeof res.id !== 'string' || !res.id) throw new TransientError(`${this.name}: create answered without an id: ${snippet(JSON.stringify(res))}`);
    if (res.status === 'failed' || res.status === 'error') throw this.failure(`create answered ${res.status}`, res.error?.message ?? '');
    return { upstreamId: res.id };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const res = await this.http.call(`v1/video/query?id=${encodeURIComponent(upstreamId)}`);
    if (res.status === 404) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost task ${upstreamId} (404)`) };
    if (res.status < 200 || res.status >= 300) throw httpError(`${this.name}: GET /v1/video/query`, res);
    const q = res.json as QueryAnswer | undefined;
    if (!q || typeof q !== 'object' || typeof q.status !== 'string') {
      throw new TransientError(`${this.name}: query answer is not the expected JSON (${snippet(res.text)})`);
    }
    if (RUNNING.has(q.status)) return { status: 'running' };
    if (DONE.has(q.status)) {
      const url = q.video_url || q.detail?.video_url;
      if (url) return { status: 'succeeded', resultUrl: url };
      // Generation finished but the file is not there yet (or upsampling is about to start).
      return { status: 'running' };
    }
    const text = q.detail?.video_generation_error || q.detail?.error_message || '';
    return { status: 'failed', error: this.failure(`task ${q.status}`, text) };
  }



  private failure(what: string, text: string) {
    const message = `${this.name}: ${what}${text ? `: ${text}` : ''}`;
    return isSafetyText(text) ? new SafetyRejectedError(message) : new TransientError(message);
  }
}
