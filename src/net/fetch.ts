import { Agent } from 'undici';
import { BlockedUrlError, type UrlGuard } from './guard.js';

export interface GuardedFetchOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Whole exchange, headers and body (default 15000 ms). */
  timeoutMs?: number;
  /** The largest body read; a larger one fails with TooLargeError (default 10 MiB). */
  maxBytes?: number;
  /** Redirects followed, each checked like the first URL (default 5). */
  maxRedirects?: number;
}

export interface GuardedResponse {
  status: number;
  url: string;
  contentType: string;
  body: Buffer;
}

export class TooLargeError extends Error {
  override name = 'TooLargeError';
}

/** HTTP client for URLs that clients give Reelay: every hop is checked by the guard. */
export class GuardedFetcher {
  private readonly agent: Agent;

  constructor(private readonly guard: UrlGuard) {
    this.agent = new Agent({
      connect: { lookup: guard.lookup as never },
      keepAliveTimeout: 4000,
    });
  }

  async fetch(raw: string, opts: GuardedFetchOptions = {}): Promise<GuardedResponse> {
    const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
    const signal = AbortSignal.timeout(opts.timeoutMs ?? 15_000);
    let url = this.guard.parse(raw);
    let method = opts.method ?? 'GET';
    let body = opts.body;
    for (let hop = 0; ; hop++) {
      const res = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers: opts.headers,
        body,
        signal,
      });
      const location = res.headers.location;
      // maxRedirects 0: a redirect is the answer (a callback is never sent elsewhere).
      if (opts.maxRedirects !== 0 && res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
        await res.body.dump();
        if (hop >= (opts.maxRedirects ?? 5)) throw new BlockedUrlError(`too many redirects from ${raw}`);
        url = this.guard.parse(new URL(location, url).toString());
        if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > maxBytes) {
        res.body.destroy();
        throw new TooLargeError(`${declared} bytes is over the limit of ${maxBytes}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          res.body.destroy();
          throw new TooLargeError(`body is over the limit of ${maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      const ct = res.headers['content-type'];
      return {
        status: res.statusCode,
        url: url.toString(),
        contentType: (Array.isArray(ct) ? ct[0] : ct) ?? '',
        body: Buffer.concat(chunks),
      };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** Finds a BlockedUrlError in an error or its causes (undici wraps connect errors). */
export function blockedCause(e: unknown): BlockedUrlError | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; depth++) {
    if (cur instanceof BlockedUrlError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
