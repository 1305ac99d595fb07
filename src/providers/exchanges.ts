/**
 * The upstream HTTP exchanges of one engine step, for the task's audit trail: the step asks its
 * provider for a traced view (`Provider.traced`), whose `UpstreamHttp.call` notes every request
 * it makes into the step's list (a call of the provider itself notes nothing). The list is handed
 * down explicitly: an AsyncLocalStorage scope would do it implicitly, but on Node 20 it turns on
 * promise hooks for the whole process, which cost a third of the engine's CPU in
 * `bench/lifecycle.ts`. What is kept holds no credential:
 * headers are not kept, query values whose names say key or token are masked, and bodies are cut
 * to `MAX_BODY` characters with long base64 runs (images, videos) replaced by their length.
 */
export interface Exchange {
  /** When the answer came (or the request failed). */
  at: number;
  method: string;
  /** Origin and path; the query with its secret-looking values masked. */
  url: string;
  /** The HTTP status, or null when no answer came (`error` says why). */
  status: number | null;
  ms: number;
  request: string | null;
  response: string | null;
  error?: string;
}

/** The most exchanges a step keeps (a step makes one or two). */
const MAX_PER_STEP = 10;
export const MAX_BODY = 2048;

/** Notes an exchange into a step's list (up to `MAX_PER_STEP`). */
export function noteExchange(list: Exchange[], e: Omit<Exchange, 'at' | 'url' | 'request' | 'response'> & { url: string; request?: string | Buffer | undefined; response?: string | undefined }, secret?: string): void {
  if (list.length >= MAX_PER_STEP) return;
  const cut = (text: string) => cutBody(text, secret);
  list.push({
    at: Date.now(),
    method: e.method,
    url: cut(maskQuery(e.url)),
    status: e.status,
    ms: Math.round(e.ms),
    request: e.request === undefined ? null : typeof e.request === 'string' ? cut(e.request) : `<${e.request.length} bytes>`,
    response: e.response === undefined ? null : cut(e.response),
    ...(e.error ? { error: e.error } : {}),
  });
}

const SECRET_NAME = /key|token|secret|signature|sig|auth|password/i;

function maskQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) if (SECRET_NAME.test(name)) params.set(name, '[redacted]');
  const rest = params.toString();
  return rest ? `${url.slice(0, q)}?${rest}` : url.slice(0, q);
}

/**
 * A body as kept: the provider's key and the tokens of Reelay's own upstream-callback URLs
 * (which a kie submit carries) masked first, then base64 runs of 200 characters or more as their
 * length, then cut to `MAX_BODY`.
 */
export function cutBody(text: string, secret?: string): string {
  let safe = secret && secret.length >= 6 ? text.split(secret).join('[redacted]') : text;
  safe = safe.replace(/(\/upstream-callbacks\/[^/\s"]+\/)[^/\s"?&]+/g, '$1[redacted]');
  const slim = safe.replace(/[A-Za-z0-9+/_-]{200,}={0,2}/g, (m) => `<${m.length} base64 characters>`);
  return slim.length > MAX_BODY ? `${slim.slice(0, MAX_BODY)}… (${slim.length} characters)` : slim;
}
