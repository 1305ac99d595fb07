import type { Exchange } from './exchanges.js';
import type { UrlGuard } from '../net/guard.js';
import type { ProviderConfig } from './config.js';
import { UpstreamHttp } from './http.js';
import { type FetchedResult, type PollOutcome, type Provider, type SubmitRequest, type Succeeded, TransientError } from './port.js';

/** What every remote provider is built with. */
export interface RemoteDeps {
  /** Checks result URLs on hosts other than the provider's own. */
  guard: UrlGuard;
  /** The largest result file downloaded. */
  maxResultBytes: number;
  /** Reelay's public base URL, for upstreams that call back (kie). */
  publicUrl?: string;
}

/**
 * What every provider that calls an upstream API shares: its label, its HTTP client (see
 * `UpstreamHttp`), the download of a finished job's video, and closing. A provider adds how it
 * submits and how it reads a job's status.
 */
export abstract class RemoteProvider implements Provider {
  readonly name: string;
  protected readonly http: UpstreamHttp;
  /** Hosts besides the base URL's that get the provider's credentials on download (a storage API). */
  protected downloadAuthHosts: string[] = [];

  constructor(
    config: ProviderConfig,
    defaultBase: string,
    auth: () => Record<string, string> | Promise<Record<string, string>>,
    private readonly deps: RemoteDeps,
  ) {
    this.name = config.label;
    this.http = new UpstreamHttp(config, defaultBase, auth, deps.guard);
  }

  /** The provider as one step uses it: its upstream calls noted into `trace` (see `Provider.traced`). */
  traced(trace: Exchange[]): this {
    return Object.create(this, { http: { value: this.http.traced(trace) } }) as this;
  }

  abstract submit(req: SubmitRequest): Promise<{ upstreamId: string }>;
  abstract poll(upstreamId: string): Promise<PollOutcome>;

  /**
   * Downloads the video from the URL the poll that saw the job finish gave, else from a fresh
   * poll's (after a restart between the poll and the download).
   */
  async fetchResult(upstreamId: string, destFile: string, done?: Succeeded): Promise<FetchedResult> {
    const outcome = done?.resultUrl ? done : await this.poll(upstreamId);
    if (outcome.status !== 'succeeded' || !outcome.resultUrl) throw new TransientError(`${this.name}: job ${upstreamId} has no video yet`);
    return this.http.download(outcome.resultUrl, destFile, this.deps.maxResultBytes, this.downloadAuthHosts);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
