import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ProviderConfig } from '../config.js';
import { httpError, cancelAnswer } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, PermanentError, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

/** The lengths OpenAI takes for an extension's new part. */
const EXTENSION_SECONDS = [4, 8, 12, 16, 20];

interface VideoResource {
  id?: string;
  status?: string;
  progress?: number;
  error?: { code?: string; message?: string } | null;
}

/**
 * OpenAI-style `/v1/videos` upstreams (OpenAI's Sora and the resellers that serve the same API):
 * create, retrieve, download `/content`, and `DELETE` to cancel. The create is JSON, or multipart
 * when an input image is sent as a file (`options.multipart: true` sends multipart always, for
 * resellers that take nothing else). A video to continue (extend) goes to `/v1/videos/extensions`
 * as an MP4 file part; the video it answers is polled and downloaded like any other.
 */
export class OpenAIVideosProvider extends RemoteProvider {
  /** `POST /v1/videos/extensions` continues a video sent as a file (see `extend`). */
  readonly extends = true;
  private readonly multipart: boolean;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://api.openai.com', () => ({ authorization: `Bearer ${config.apiKey}` }), deps);
    this.multipart = config.options.multipart === true;
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    if (req.source) return this.extend(req, req.source);
    const spec = req.task.spec;
    const fields: Record<string, string> = {
      model: req.model,
      prompt: req.prompt,
      // OpenAI takes seconds as a string: 4, 8 or 12.
      seconds: String([4, 8, 12].reduce((best, s) => (Math.abs(s - spec.durationSeconds) < Math.abs(best - spec.durationSeconds) ? s : best), 8)),
      size: spec.aspectRatio === '9:16' ? '720x1280' : '1280x720',
    };
    const image = req.inputs[0];
    let res;
    if (this.multipart || image) {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      if (image) form.append('input_reference', new Blob([readFileSync(image.path)], { type: image.contentType }), `input.${image.contentType.split('/')[1] ?? 'png'}`);
      const encoded = new Response(form);
      const data = Buffer.from(await encoded.arrayBuffer());
      res = await this.http.json<VideoResource>('v1/videos', { body: { data, contentType: encoded.headers.get('content-type')! } });
    } else {
      res = await this.http.json<VideoResource>('v1/videos', { json: fields });
    }
    return this.accepted(res, 'create');
  }

  /**
   * `POST /v1/videos/extensions` (multipart): the stored source as the `video` file, the prompt,
   * the model, and `seconds`, the new part's length (OpenAI's extension lengths are 4 to 20 in
   * steps of 4: the nearest is sent, the longer of two). The answer's `seconds` is the stitched total.
   */
  private async extend(req: SubmitRequest, source: NonNullable<SubmitRequest['source']>): Promise<{ upstreamId: string }> {
    const want = req.task.spec.durationSeconds;
    const seconds = EXTENSION_SECONDS.reduce((best, s) => (Math.abs(s - want) <= Math.abs(best - want) ? s : best));
    const form = new FormData();
    form.append('prompt', req.prompt);
    form.append('seconds', String(seconds));
    form.append('model', req.model);
    form.append('video', new Blob([await readFile(source.path)], { type: 'video/mp4' }), 'source.mp4');
    const encoded = new Response(form);
    const data = Buffer.from(await encoded.arrayBuffer());
    const res = await this.http.json<VideoResource>('v1/videos/extensions', { body: { data, contentType: encoded.headers.get('content-type')! } });
    return this.accepted(res, 'extension');
  }

  private accepted(res: VideoResource, what: string): { upstreamId: string } {
    if (typeof res.id !== 'string' || !res.id) throw new TransientError(`${this.name}: ${what} answered without an id`);
    if (res.status === 'failed') throw this.failure(res);
    return { upstreamId: res.id };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const res = await this.http.call(`v1/videos/${encodeURIComponent(upstreamId)}`);
    if (res.status === 404) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost video ${upstreamId} (404)`) };
    if (res.status < 200 || res.status >= 300) throw httpError(`${this.name}: GET /v1/videos/{id}`, res);
    const v = res.json as VideoResource | undefined;
    if (!v || typeof v.status !== 'string') throw new TransientError(`${this.name}: the video answer is not the expected JSON`);
    if (v.status === 'queued' || v.status === 'in_progress') return { status: 'running', ...(typeof v.progress === 'number' ? { progress: v.progress } : {}) };
    if (v.status === 'completed') return { status: 'succeeded', resultUrl: this.http.url(`v1/videos/${encodeURIComponent(upstreamId)}/content?variant=video`).toString() };
    return { status: 'failed', error: this.failure(v) };
  }


  async cancel(upstreamId: string): Promise<void> {
    const path = `v1/videos/${encodeURIComponent(upstreamId)}`;
    cancelAnswer(`${this.name}: DELETE /${path}`, await this.http.call(path, { method: 'DELETE' }));
  }


  private failure(v: VideoResource) {
    const code = v.error?.code ?? 'failed';
    const message = `${this.name}: video ${v.status ?? 'failed'} (${code}): ${v.error?.message ?? ''}`;
    if (code === 'moderation_blocked' || isSafetyText(`${code} ${v.error?.message ?? ''}`)) return new SafetyRejectedError(message);
    if (code === 'invalid_request' || code === 'invalid_value') return new PermanentError(message);
    return new TransientError(message);
  }
}
