import type { ProviderConfig } from '../config.js';
import { httpError, cancelAnswer } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

interface Prediction {
  id?: string;
  status?: string;
  output?: unknown;
  error?: unknown;
  logs?: string;
}

/**
 * Replicate predictions: `POST v1/models/{owner}/{name}/predictions` (a route model `owner/name`)
 * or `POST v1/predictions` with a version (a route model that is a 64-hex version id), then
 * `GET v1/predictions/{id}` and `POST …/cancel`. The input is `{prompt, aspect_ratio, duration,
 * seed, image}`, which the Veo and other video models on Replicate take; `options.input` adds or
 * overrides fields for a model that names them differently.
 */
export class ReplicateProvider extends RemoteProvider {
  private readonly extraInput: Record<string, unknown>;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://api.replicate.com', () => ({ authorization: `Bearer ${config.apiKey}` }), deps);
    this.extraInput = (config.options.input as Record<string, unknown> | undefined) ?? {};
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const spec = req.task.spec;
    const input = {
      prompt: req.prompt,
      aspect_ratio: spec.aspectRatio === '9:16' ? '9:16' : '16:9',
      duration: spec.durationSeconds,
      seed: spec.seed,
      ...(req.inputs[0] ? { image: req.inputs[0].url } : {}),
      ...(req.inputs[1] ? { last_frame: req.inputs[1].url } : {}),
      ...this.extraInput,
    };
    const versioned = /^[0-9a-f]{64}$/.test(req.model);
    const res = versioned
      ? await this.http.json<Prediction>('v1/predictions', { json: { version: req.model, input } })
      : await this.http.json<Prediction>(`v1/models/${req.model.split('/').map(encodeURIComponent).join('/')}/predictions`, { json: { input } });
    if (typeof res.id !== 'string' || !res.id) throw new TransientError(`${this.name}: create answered without a prediction id`);
    return { upstreamId: res.id };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const res = await this.http.call(`v1/predictions/${encodeURIComponent(upstreamId)}`);
    if (res.status === 404) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost prediction ${upstreamId} (404)`) };
    if (res.status < 200 || res.status >= 300) throw httpError(`${this.name}: GET /v1/predictions/{id}`, res);
    const p = res.json as Prediction | undefined;
    if (!p || typeof p.status !== 'string') throw new TransientError(`${this.name}: the prediction answer is not the expected JSON`);
    if (p.status === 'starting' || p.status === 'processing') return { status: 'running' };
    if (p.status === 'succeeded') {
      const url = outputUrl(p.output);
      if (!url) return { status: 'failed', error: new TransientError(`${this.name}: the prediction succeeded without a file in its output`) };
      return { status: 'succeeded', resultUrl: url };
    }
    const message = `${this.name}: prediction ${p.status}: ${typeof p.error === 'string' ? p.error : JSON.stringify(p.error ?? '')}`;
    return { status: 'failed', error: isSafetyText(message) ? new SafetyRejectedError(message) : new TransientError(message) };
  }


  async cancel(upstreamId: string): Promise<void> {
    const path = `v1/predictions/${encodeURIComponent(upstreamId)}/cancel`;
    cancelAnswer(`${this.name}: POST /${path}`, await this.http.call(path, { method: 'POST' }));
  }

}

/** A prediction's output: a URL, a list of URLs, or an object holding one (`{video: url}`). */
function outputUrl(output: unknown): string | undefined {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) return output.map(outputUrl).find(Boolean);
  if (output && typeof output === 'object') return Object.values(output).map(outputUrl).find(Boolean);
  return undefined;
}
