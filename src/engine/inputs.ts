import { sniffImage } from '../media/images.js';
import { BlockedUrlError } from '../net/guard.js';
import { type GuardedFetcher, TooLargeError, blockedCause } from '../net/fetch.js';
import { PermanentError, type ProviderError, TransientError } from '../providers/port.js';

export interface FetchedImage {
  bytes: Buffer;
  contentType: string;
  ext: string;
}


/** An image that cannot be used. `retryable` when the cause may pass (a 5xx, a timeout). */
export function imageError(message: string, retryable: boolean): ProviderError {
  return retryable ? new TransientError(message) : new PermanentError(message);
}

/**
 * Fetches one input image (an http(s) URL through the guarded fetcher, or a `data:` URI) and checks
 * its size and type. Throws a retryable error for 5xx, 429, timeouts and network errors; a
 * permanent one for blocked URLs, 4xx, oversize and non-images.
 */
export async function fetchImage(fetcher: GuardedFetcher, url: string, maxBytes: number): Promise<FetchedImage> {
  let bytes: Buffer;
  if (url.startsWith('data:')) {
    const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(url);
    if (!m) throw imageError('malformed data: URI', false);
    bytes = m[2] ? Buffer.from(m[3]!, 'base64') : Buffer.from(decodeURIComponent(m[3]!), 'latin1');
    if (bytes.length > maxBytes) throw imageError(`image is ${bytes.length} bytes, over the limit of ${maxBytes}`, false);
  } else {
    try {
      const res = await fetcher.fetch(url, { maxBytes, timeoutMs: 30_000 });
      if (res.status >= 400) {
        const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
        throw imageError(`image URL answered HTTP ${res.status}`, retryable);
      }
      bytes = res.body;
    } catch (e) {
      if (e instanceof TransientError || e instanceof PermanentError) throw e;
      const blocked = e instanceof BlockedUrlError ? e : blockedCause(e);
      if (blocked) throw imageError(blocked.message, false);
      if (e instanceof TooLargeError) throw imageError(`image ${e.message}`, false);
      throw imageError(`image fetch failed: ${(e as Error).message}`, true);
    }
  }
  const kind = sniffImage(bytes);
  if (!kind) throw imageError('the URL did not return a PNG, JPEG, WebP or GIF image', false);
  return { bytes, contentType: kind.type, ext: kind.ext };
}
