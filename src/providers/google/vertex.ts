import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config-error.js';
import type { ProviderConfig } from '../config.js';
import { type PollOutcome, PermanentError, type SubmitRequest, TransientError } from '../port.js';
import { RemoteProvider, type RemoteDeps } from '../remote.js';
import { ServiceAccountTokens, parseServiceAccount } from './auth.js';
import { cancelOperation, googleError } from './gemini.js';
import { type Operation, operationOutcome, predictBody } from './veo.js';

/**
 * Veo on Vertex AI: `…/publishers/google/models/{model}:predictLongRunning`, then
 * `…:fetchPredictOperation` with the operation name, authenticated by a service account's OAuth
 * token. Results come inline (base64) or, with `options.storageUri` (`gs://bucket/prefix`), in a
 * bucket read through the Cloud Storage JSON API with the same token.
 *
 * Options: `project` (required), `location` (default `us-central1`), `credentialsFile` or the key
 * JSON in the variable named by `apiKeyEnv`, `storageUri`, `storageBaseUrl`.
 */
export class VertexProvider extends RemoteProvider {
  /** Veo continues a video given as `instances[0].video` (see `predictBody`). */
  readonly extends = true;
  private readonly prefix: string;
  private readonly storageBase: URL;
  private readonly storageUri?: string;

  constructor(config: ProviderConfig, deps: RemoteDeps) {
    const o = config.options;
    const at = `provider ${config.label}`;
    if (typeof o.project !== 'string' || !o.project) throw new ConfigError(`${at}: a vertex provider needs options.project`);
    const location = typeof o.location === 'string' && o.location ? o.location : 'us-central1';
    const tokens = serviceAccountTokens(config, at);
    const host = location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${location}-aiplatform.googleapis.com`;
    super(config, host, () => tokens.header(), deps);
    this.prefix = `v1/projects/${o.project}/locations/${location}/publishers/google/models`;
    this.storageBase = new URL(typeof o.storageBaseUrl === 'string' ? o.storageBaseUrl : 'https://storage.googleapis.com');
    // Bucket results are read with the same token.
    this.downloadAuthHosts = [this.storageBase.host];
    if (typeof o.storageUri === 'string') {
      if (!o.storageUri.startsWith('gs://')) throw new ConfigError(`${at}: options.storageUri must be gs://bucket/prefix`);
      this.storageUri = o.storageUri;
    }
  }

  async submit(req: SubmitRequest): Promise<{ upstreamId: string }> {
    const res = await this.call(`${this.prefix}/${encodeURIComponent(req.model)}:predictLongRunning`, predictBody(req, true, this.storageUri ? `${this.storageUri.replace(/\/+$/, '')}/${req.task.id}/` : undefined));
    if (typeof res.name !== 'string' || !res.name.includes('/operations/')) throw new TransientError(`${this.name}: predictLongRunning answered without an operation name`);
    return { upstreamId: res.name };
  }

  async poll(upstreamId: string): Promise<PollOutcome> {
    const model = /\/models\/([^/]+)\/operations\//.exec(upstreamId)?.[1];
    if (!model) return { status: 'failed', error: new PermanentError(`${this.name}: not a Vertex operation name: ${upstreamId}`) };
    let op: Operation;
    try {
      op = await this.call(`${this.prefix}/${model}:fetchPredictOperation`, { operationName: upstreamId });
    } catch (e) {
      if (e instanceof PermanentError && / 404:/.test(e.message)) return { status: 'failed', error: new TransientError(`${this.name}: the upstream lost operation ${upstreamId} (404)`) };
      throw e;
    }
    return operationOutcome(this.name, op, (r) => {
      const v = r.videos?.[0];
      if (v?.bytesBase64Encoded) return `data:${v.mimeType ?? 'video/mp4'};base64,${v.bytesBase64Encoded}`;
      if (v?.gcsUri) return this.storageUrl(v.gcsUri);
      return undefined;
    });
  }

  /** The operation's cancel, `POST v1/{name}:cancel`, as on the Gemini API (see `GeminiProvider.cancel`). */
  async cancel(upstreamId: string): Promise<void> {
    await cancelOperation(this.name, this.http, `v1/${upstreamId}:cancel`);
  }

  /** `gs://bucket/a/b.mp4` → the Cloud Storage JSON API media URL. */
  private storageUrl(gcsUri: string): string {
    const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(gcsUri);
    if (!m) return gcsUri;
    return new URL(`storage/v1/b/${m[1]}/o/${encodeURIComponent(m[2]!)}?alt=media`, this.storageBase).toString();
  }

  private async call(path: string, json: unknown): Promise<Operation> {
    const res = await this.http.call(path, { json });
    const where = `${this.name}: POST /${path}`;
    if (res.status < 200 || res.status >= 300) throw googleError(where, res);
    if (!res.json || typeof res.json !== 'object') throw new TransientError(`${where}: the answer is not JSON`);
    return res.json as Operation;
  }
}

/** The service account's token source: its key from `options.credentialsFile` or the `apiKeyEnv` variable. */
function serviceAccountTokens(config: ProviderConfig, at: string): ServiceAccountTokens {
  const o = config.options;
  let keyText: string;
  if (typeof o.credentialsFile === 'string') {
    try {
      keyText = readFileSync(o.credentialsFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`${at}: cannot read options.credentialsFile: ${(e as Error).message}`);
    }
  } else if (config.apiKey) {
    keyText = config.apiKey;
  } else {
    throw new ConfigError(`${at}: a vertex provider needs options.credentialsFile or apiKeyEnv holding the service-account key JSON`);
  }
  try {
    return new ServiceAccountTokens(parseServiceAccount(keyText, at), config.label, config.timeoutMs);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}
