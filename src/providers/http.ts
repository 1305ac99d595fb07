import { open, rm, writeFile } from 'node:fs/promises';
import { Agent, type Dispatcher, request } from 'undici';
import { Mp4Scanner } from '../media/mp4.js';
import type { UrlGuard } from '../net/guard.js';
import type { ProviderConfig } from '../routing/config.js';
import { type FetchedResult, PermanentError, type ProviderError, RateLimitedError, TransientError } from './port.js';

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, or undefined when the body was empty. */
  json: unknown;
  text: string;
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A JSON body (sent with `content-type: application/json`). */
  json?: unknown;
  /** A raw body with its own content type (multipart, form). */
  body?: { data: Buffer | string; contentType: string };
  headers?: Record<string, string>;
  /** A full URL instead of a path under the base URL (status URLs that an upstream hands out). */
  url?: string;
}

/**
 * The HTTP side of a remote provider: one connection pool per provider, a timeout per request,
 * JSON in and out, and the common mapping of failures to typed errors. Requests go to the
 * configured base URL, which the operator chose, so they are not checked against the private
 * address block; result files on any other host are (see `download`).
 *
 * Error messages name the provider, the method and the path, never a header: keys stay out of
 * logs and task records.
 */
export class UpstreamHttp {
  private readonly agent: Agent;
  private readonly guarded: Agent;
  readonly base: URL;

  constructor(
    readonly config: ProviderConfig,
    defaultBase: string,
    private readonly auth: () => Record<string, string> | Promise<Record<string, string>>,
    private readonly guard: UrlGuard,
  ) {
    this.base = new URL(`${(config.baseUrl ?? defaultBase).replace(/\/+$/, '')}/`);
    const timeouts = { headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs, connectTimeout: Math.min(config.timeoutMs, 10_000) };
    this.agent = new Agent({ ...timeouts, keepAliveTimeout: 10_000, connections: 64 });
    this.guarded = new Agent({ ...timeouts, connect: { lookup: guard.lookup as never } });
  }

  /** `path` is relative to the base URL (`api/v1/veo/generate`); a leading slash is dropped. */
  url(path: string): URL {
    return new URL(path.replace(/^\/+/, ''), this.base);
  }

  /** One request; answers any HTTP status (the caller classifies), throws on network failure. */
  async call(path: string, opts: CallOptions = {}): Promise<UpstreamResponse> {
    const url = opts.url ? new URL(opts.url) : this.url(path);
    const method = opts.method ?? (opts.json === undefined && !opts.body ? 'GET' : 'POST');
    const headers: Record<string, string> = { accept: 'application/json', ...(await this.auth()), ...opts.headers };
    let body: string | Buffer | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body) {
      headers['content-type'] = opts.body.contentType;
      body = opts.body.data;
    }
    const where = `${this.config.label}: ${method} ${url.pathname}`;
    let res: Dispatcher.ResponseData;
    try {
      // The agent's headersTimeout and bodyTimeout bound the wait (no timer per request).
      res = await request(url, { method, headers, body, dispatcher: this.agent });
    } catch (e) {
      throw new TransientError(`${where} failed: ${networkReason(e)}`);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw new TransientError(`${where}: the answer broke off (${networkReason(e)})`);
    }
    let json: unknown;
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    return { status: res.statusCode, headers: res.headers, json, text };
  }

  /**
   * Like `call`, but a non-2xx status or a body that is not JSON becomes a typed error:
   * 429 → rate limited (with `Retry-After`), 5xx/408/401/403 → transient (the upstream or our
   * account with it is at fault, so another route may work), other 4xx → permanent.
   */
  async json<T = Record<string, unknown>>(path: string, opts: CallOptions = {}): Promise<T> {
    const res = await this.call(path, opts);
    const where = `${this.config.label}: ${opts.method ?? (opts.json === undefined && !opts.body ? 'GET' : 'POST')} ${opts.url ? new URL(opts.url).pathname : this.url(path).pathname}`;
    if (res.status < 200 || res.status >= 300) throw httpError(where, res);
    if (res.json === undefined || res.json === null || typeof res.json !== 'object') {
      throw new TransientError(`${where}: the answer is not JSON (${res.status}, ${snippet(res.text)})`);
    }
    return res.json as T;
  }

  /**
   * Streams a result to `dest`, reading its MP4 boxes on the way (the caller need not read the
   * file back to probe it). The file is written in place: a task shows its video only once the
   * download is committed, and a failed download removes what it wrote. A URL on the provider's
   * own host (or one of `authHosts`, such as a storage API) is fetched with its credentials; any
   * other host is an outside URL and is checked by the private-address guard on every hop, without
   * credentials. A `data:` URL (a result sent inline) is decoded.
   */
  async download(raw: string, dest: string, maxBytes: number, authHosts: string[] = []): Promise<FetchedResult> {
    const scanned = new Mp4Scanner();
    if (raw.startsWith('data:')) {
      const bytes = Buffer.from(raw.slice(raw.indexOf(',') + 1), 'base64');
      if (bytes.length > maxBytes) throw new PermanentError(`${this.config.label}: the result is over the limit of ${maxBytes} bytes`);
      await writeFile(dest, bytes);
      scanned.push(bytes);
      return { bytes: bytes.length, scanned };
    }
    let url = new URL(raw, this.base);
    for (let hop = 0; hop < 6; hop++) {
      const own = url.host === this.base.host || authHosts.includes(url.host);
      if (!own) url = this.guard.parse(url.toString());
      const headers = own ? await this.auth() : {};
      let res: Dispatcher.ResponseData;
      try {
        // A video can take minutes to arrive: the wait for headers is the API timeout, the body
        // may take as long as it keeps flowing (bodyTimeout is per chunk).
        res = await request(url, { method: 'GET', headers, dispatcher: own ? this.agent : this.guarded, headersTimeout: Math.max(this.config.timeoutMs, 30_000) });
      } catch (e) {
        throw new TransientError(`${this.config.label}: download failed: ${networkReason(e)}`);
      }
      const location = res.headers.location;
      if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
        await res.body.dump();
        url = new URL(location, url);
        continue;
      }
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        throw httpError(`${this.config.label}: download`, { status: res.statusCode, headers: res.headers, text });
      }
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
        res.body.destroy();
        throw new PermanentError(`${this.config.label}: the result is over the limit of ${maxBytes} bytes`);
      }
      const file = await open(dest, 'w');
      let size = 0;
      try {
        // Chunks are written in batches of up to 1 MiB: a small video is one write.
        let batch: Buffer[] = [];
        let batched = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) throw new PermanentError(`${this.config.label}: the result is over the limit of ${maxBytes} bytes`);
          scanned.push(chunk);
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= 1 << 20) {
            await file.writev(batch);
            batch = [];
            batched = 0;
          }
        }
        if (batch.length > 0) await file.writev(batch);
        await file.close();
      } catch (e) {
        res.body.destroy();
        await file.close().catch(() => {});
        await rm(dest, { force: true });
        throw e instanceof PermanentError ? e : new TransientError(`${this.config.label}: download broke off: ${networkReason(e)}`);
      }
      return { bytes: size, scanned };
    }
    throw new TransientError(`${this.config.label}: download: too many redirects`);
  }

  async close(): Promise<void> {
    await Promise.all([this.agent.close(), this.guarded.close()]);
  }
}

/** The typed error for an HTTP failure status. */
export function httpError(where: string, res: Pick<UpstreamResponse, 'status' | 'headers' | 'text'>): ProviderError {
  const detail = `${where} answered ${res.status}: ${snippet(res.text)}`;
  if (res.status === 429) return new RateLimitedError(detail, retryAfterMs(res.headers['retry-after']) ?? 10_000);
  if (res.status >= 500 || res.status === 408 || res.status === 401 || res.status === 403 || res.status === 409) return new TransientError(detail);
  return new PermanentError(detail);
}

/** `Retry-After` in seconds or as an HTTP date, in ms from now. */
export function retryAfterMs(v: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(v) ? v[0] : v;
  if (!raw) return undefined;
  const secs = Number(raw);
  if (Number.isFinite(secs) && secs >= 0) return Math.round(secs * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The start of an upstream answer, on one line, for error messages. */
export function snippet(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max)}…` : one || '(empty)';
}

function networkReason(e: unknown): string {
  const err = e as { code?: string; name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') return 'timed out';
  return err.cause?.code ?? err.code ?? err.cause?.message ?? err.message ?? String(e);
}
