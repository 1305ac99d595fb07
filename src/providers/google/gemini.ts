import type { ProviderConfig } from '../config.js';
import { type UpstreamHttp, httpError } from '../http.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { type PollOutcome, PermanentError, type SubmitRequest, TransientError } from '../port.js';
import { type Operation, operationOutcome, predictBody } from './veo.js';

/**
 * Veo on the Gemini API: `POST v1beta/models/{model}:predictLongRunning`, then the operation at
 * `GET v1beta/{name}`, then the file at its `video.uri` (with the key; Google redirects to
 * storage). Model ids come from the route, so a retired preview id is a configuration change.
 */
export class GeminiProvider extends RemoteProvider {
  /** Veo continues a video given as `instances[0].video` (see `predictBody`). */
  readonly extends = true;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    super(config, 'https://generativelanguage.googleapis.com', () => ({ 'x-goog-api-key': config.apiKey ?? '' }), deps);
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const model = req.model.replace(/^models\//, '');
    const res = await this.call(`v1beta/models/${encodeURIComponent(model)}:predictLongRunning`, predictBody(req, false));
    if (typeof res.name !== 'string' || !res.name.includes('/operations/')) throw new TransientError(`${this.name}: predictLongRunning answered without an operation name`);
    return { upstreamId: res.name };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    let op: Operation;
    try {
      op = await this.call(`v1beta/${upstreamId}`);
    } catch (e) {
      if (e instanceof PermanentError && / 404:/.test(e.message)) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost operation ${upstreamId} (404)`) };
      throw e;
    }
    return operationOutcome(this.name, op, (r) => r.generatedSamples?.[0]?.video?.uri ?? (r.generatedSamples?.[0]?.video?.encodedVideo ? `data:video/mp4;base64,${r.generatedSamples[0].video.encodedVideo}` : undefined));
  }

  /**
   * Google's long-running operation cancel, `POST v1beta/{name}:cancel` (an empty body and
   * answer): the operation then ends with `error.code` 1 (CANCELLED). One that is gone (404) has
   * nothing left to stop.
   */
  async cancel(upstreamId: string): Promise<void> {
    await cancelOperation(this.name, this.http, `v1beta/${upstreamId}:cancel`);
  }

  private async call(path: string, json?: unknown): Promise<Operation> {
    const res = await this.http.call(path, json === undefined ? {} : { json });
    const where = `${this.name}: ${json === undefined ? 'GET' : 'POST'} /${path}`;
    if (res.status < 200 || res.status >= 300) throw googleError(where, res);
    if (!res.json || typeof res.json !== 'object') throw new TransientError(`${where}: the answer is not JSON`);
    return res.json as Operation;
  }
}

/** `POST {name}:cancel` of a long-running operation, on the Gemini API or Vertex AI. */
export async function cancelOperation(label: string, http: UpstreamHttp, path: string): Promise<void> {
  const res = await http.call(path, { json: {} });
  if (res.status === 404 || (res.status >= 200 && res.status < 300)) return;
  throw googleError(`${label}: POST /${path}`, res);
}

/** Google's error envelope (`{error:{code,message,status}}`) through the common HTTP mapping. */
export function googleError(where: string, res: { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: unknown }) {
  const err = (res.json as { error?: { message?: string; status?: string } } | undefined)?.error;
  const text = err?.message ? `${err.status ?? ''} ${err.message}`.trim() : res.text;
  return httpError(where, { ...res, text });
}
