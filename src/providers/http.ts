import { close as closeFd, open as openFd, writev as writevFd } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { Agent, type Dispatcher } from 'undici';
import { Mp4Scanner } from '../media/mp4.js';
import type { UrlGuard } from '../net/guard.js';
import type { ProviderConfig } from './config.js';
import { type Exchange, noteExchange } from './exchanges.js';
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
  /** The base URL's origin and path (ending in `/`), for requests built without a URL object. */
  private readonly origin: string;
  private readonly basePath: string;

  constructor(
    readonly config: ProviderConfig,
    defaultBase: string,
    private readonly auth: () => Record<string, string> | Promise<Record<string, string>>,
    private readonly guard: UrlGuard,
  ) {
    this.base = new URL(`${(config.baseUrl ?? defaultBase).replace(/\/+$/, '')}/`);
    this.origin = this.base.origin;
    this.basePath = this.base.pathname;
    const timeouts = { headersTimeout: config.timeoutMs, bodyTimeout: config.timeoutMs, connectTimeout: Math.min(config.timeoutMs, 10_000) };
    this.agent = new Agent({ ...timeouts, keepAliveTimeout: 10_000, connections: 64 });
    this.guarded = new Agent({ ...timeouts, connect: { lookup: guard.lookup as never } });
  }

  /** Where this view notes its exchanges (see `traced`); none on the client itself. */
  private readonly trace?: Exchange[];

  /**
   * A view of this client that notes every `call` into `trace` (one step's exchanges, for the
   * task's audit trail). It shares the client's pools and everything else.
   */
  traced(trace: Exchange[]): UpstreamHttp {
    return Object.create(this, { trace: { value: trace } }) as UpstreamHttp;
  }

  /** `path` is relative to the base URL (`api/v1/veo/generate`); a leading slash is dropped. */
  url(path: string): URL {
    return new URL(path.replace(/^\/+/, ''), this.base);
  }

  /**
   * The origin and path a request goes to. A relative path made of plain URL characters (the
   * usual case: an API path and an encoded query) is appended to the base path as it is; anything
   * else is resolved by the URL parser. (Parsing a URL per request cost a third of a poll's
   * client time.)
   */
  private target(path: string, opts: CallOptions): { origin: string; path: string } {
    if (!opts.url && PLAIN_PATH.test(path) && !path.includes('://')) return { origin: this.origin, path: this.basePath + path.replace(/^\/+/, '') };
    const url = opts.url ? new URL(opts.url) : this.url(path);
    return { origin: url.origin, path: url.pathname + url.search };
  }

  /** One request; answers any HTTP status (the caller classifies), throws on network failure. */
  async call(path: string, opts: CallOptions = {}): Promise<UpstreamResponse> {
    const target = this.target(path, opts);
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
    let res: Dispatcher.ResponseData;
    const started = performance.now();
    const trace = this.trace;
    const note = (status: number | null, response?: string, error?: string) =>
      trace && noteExchange(trace, { method, url: target.origin + target.path, status, ms: performance.now() - started, request: body, ...(response !== undefined ? { response } : {}), ...(error ? { error } : {}) }, this.config.apiKey);
    try {
      // The agent's headersTimeout and bodyTimeout bound the wait (no timer per request).
      res = await this.agent.request({ origin: target.origin, path: target.path, method, headers, body });
    } catch (e) {
      const err = new TransientError(`${this.where(method, target.path)} failed: ${networkReason(e)}`);
      note(null, undefined, err.message);
      throw err;
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      const err = new TransientError(`${this.where(method, target.path)}: the answer broke off (${networkReason(e)})`);
      note(res.statusCode, undefined, err.message);
      throw err;
    }
    note(res.statusCode, text);
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
    const failed = res.status < 200 || res.status >= 300;
    if (!failed && res.json !== undefined && res.json !== null && typeof res.json === 'object') return res.json as T;
    const where = this.where(opts.method ?? (opts.json === undefined && !opts.body ? 'GET' : 'POST'), this.target(path, opts).path);
    if (failed) throw httpError(where, res);
    throw new TransientError(`${where}: the answer is not JSON (${res.status}, ${snippet(res.text)})`);
  }

  /** How errors name a request: the provider, the method and the path without its query. */
  private where(method: string, path: string): string {
    return `${this.config.label}: ${method} ${path.split('?')[0]}`;
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
        const dispatcher = own ? this.agent : this.guarded;
        res = await dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers, headersTimeout: Math.max(this.config.timeoutMs, 30_000) });
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
      const file = await openForWrite(dest);
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
            await writeAll(file, batch);
            batch = [];
            batched = 0;
          }
        }
        if (batch.length > 0) await writeAll(file, batch);
        await closeFile(file);
      } catch (e) {
        res.body.destroy();
        await closeFile(file).catch(() => {});
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

// A download's file through the callback API of node:fs: a FileHandle (node:fs/promises) cost
// 10–15 µs more CPU per small file in a micro-benchmark, mostly in its close.
function openForWrite(path: string): Promise<number> {
  return new Promise((resolve, reject) => openFd(path, 'w', (e, fd) => (e ? reject(e) : resolve(fd))));
}

function closeFile(fd: number): Promise<void> {
  return new Promise((resolve, reject) => closeFd(fd, (e) => (e ? reject(e) : resolve())));
}

/** Writes every byte of `chunks` (a short write goes on from where it stopped). */
function writeAll(fd: number, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const next = (bufs: Buffer[]) =>
      writevFd(fd, bufs, (e, written) => {
        if (e) return reject(e);
        let left = written;
        let i = 0;
        while (i < bufs.length && left >= bufs[i]!.length) left -= bufs[i++]!.length;
        if (i === bufs.length) return resolve();
        next([bufs[i]!.subarray(left), ...bufs.slice(i + 1)]);
      });
    next(chunks);
  });
}

/** A relative path of plain URL characters (see `UpstreamHttp.target`). */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*$/;

/** The typed error for an HTTP failure status. */
/**
 * The answer to a cancel: a 2xx, or a 404 (the job is gone: nothing runs), is done; any other
 * status is the typed error `httpError` makes of it, so the engine tries again or reports it.
 */
export function cancelAnswer(where: string, res: UpstreamResponse, alsoDone?: (res: UpstreamResponse) => boolean): void {
  if ((res.status >= 200 && res.status < 300) || res.status === 404 || alsoDone?.(res)) return;
  throw httpError(where, res);
}

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
