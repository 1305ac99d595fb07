import type { ProviderConfig } from '../config.js';
import { httpError, snippet, cancelAnswer } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, PermanentError, SafetyRejectedError, type SubmitRequest, TransientError } from '../port.js';
import { isSafetyText } from '../safety.js';

/**
 * fal's queue (`queue.fal.run`): `POST {model id}` with the model's input, then
 * `GET {owner}/{app}/requests/{id}/status`, the result at `GET …/requests/{id}`, and
 * `PUT …/requests/{id}/cancel`. The upstream id is `{owner}/{app}|{request id}`, enough to find
 * the request again after a restart. Auth is `Authorization: Key …`.
 */
export class FalProvider extends RemoteProvider {
  private readonly extraInput: Record<string, unknown>;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://queue.fal.run', () => ({ authorization: `Key ${config.apiKey}` }), deps);
    this.extraInput = (config.options.input as Record<string, unknown> | undefined) ?? {};
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const spec = req.task.spec;
    const input = {
      prompt: req.prompt,
      aspect_ratio: spec.aspectRatio === '9:16' ? '9:16' : '16:9',
      duration: `${spec.durationSeconds}s`,
      seed: spec.seed,
      generate_audio: true,
      ...(req.inputs[0] ? { image_url: req.inputs[0].url } : {}),
      ...(req.inputs[1] ? { last_frame_url: req.inputs[1].url } : {}),
      ...this.extraInput,
    };
    const res = await this.http.json<{ request_id?: unknown }>(req.model, { json: input });
    if (typeof res.request_id !== 'string' || !res.request_id) throw new TransientError(`${this.name}: submit answered without a request_id`);
    return { upstreamId: `${req.model.split('/').slice(0, 2).join('/')}|${res.request_id}` };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const res = await this.http.call(`${this.path(upstreamId)}/status`);
    if (res.status === 404) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost request ${upstreamId} (404)`) };
    if (res.status < 200 || res.status >= 300) throw httpError(`${this.name}: GET …/requests/{id}/status`, res);
    const s = res.json as { status?: string; error?: string; error_type?: string } | undefined;
    if (!s || typeof s.status !== 'string') throw new TransientError(`${this.name}: the status answer is not the expected JSON`);
    if (s.status === 'IN_QUEUE' || s.status === 'IN_PROGRESS') return { status: 'running' };
    if (s.status !== 'COMPLETED') return { status: 'failed', error: new TransientError(`${this.name}: request ${s.status}`) };
    // COMPLETED: the result says whether it worked.
    const result = await this.http.call(this.path(upstreamId));
    if (result.status >= 200 && result.status < 300) {
      const url = (result.json as { video?: { url?: unknown } } | undefined)?.video?.url;
      if (typeof url === 'string') return { status: 'succeeded', resultUrl: url };
      return { status: 'failed', error: new TransientError(`${this.name}: the result has no video.url (${snippet(result.text)})`) };
    }
    const message = `${this.name}: request failed (${result.status}): ${s.error ?? snippet(result.text)}`;
    if (s.error_type === 'content_policy_violation' || isSafetyText(result.text)) return { status: 'failed', error: new SafetyRejectedError(message) };
    if (result.status === 422) return { status: 'failed', error: new PermanentError(message) };
    return { status: 'failed', error: new TransientError(message) };
  }


  async cancel(upstreamId: string): Promise<void> {
    const path = `${this.path(upstreamId)}/cancel`;
    // A request that already ended answers 400 ALREADY_COMPLETED: nothing is left to stop.
    cancelAnswer(`${this.name}: PUT /${path}`, await this.http.call(path, { method: 'PUT' }), (r) => r.status === 400 && /ALREADY_COMPLETED/.test(r.text));
  }


  private path(upstreamId: string): string {
    const [appId, requestId] = upstreamId.split('|');
    return `${appId}/requests/${encodeURIComponent(requestId ?? '')}`;
  }
}
