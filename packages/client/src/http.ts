import { ReelayError, errorFromResponse } from './errors.js';

/** How a `Transport` sends: the client's options, resolved. */
export interface TransportOptions {
  /** Where `/reelay/v1` is, without a trailing slash. */
  apiURL: string;
  apiKey: string;
  fetch: typeof fetch;
  timeoutMs: number;
  maxRetries: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown, with `retryAfterMs`. */
  maxRetryDelayMs: number;
}

/** One request of the API. */
export interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  /** Under `/reelay/v1` (`/tasks/…`), or an absolute URL (a file). */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Set on the errors of a call about one task. */
  taskId?: string | undefined;
  /** Sends no `Authorization` (a file URL carries its own token). */
  anonymous?: boolean;
  /** Retries allowed (default: the client's `maxRetries`). */
  maxRetries?: number;
}

/** Why the client ended a try itself: its own timeout. */
class TimedOut extends Error {}

/**
 * Sends requests with a per-try timeout and retries: network errors, timeouts, 409 `in_progress`,
 * 429 and 5xx are tried again (after `Retry-After` when the answer gives one and it is not longer
 * than `maxRetryDelayMs`, else 0.5 s, 1 s, 2 s … with jitter); other 4xx never are. A caller's abort ends it at once, with the signal's reason.
 */
export class Transport {
  constructor(readonly opts: TransportOptions) {}

  /** The JSON answer of `call`. */
  async json<T>(call: Call): Promise<T> {
    return (await this.answer<T>(call)).body;
  }

  /** The JSON answer of `call`, with its headers. */
  async answer<T>(call: Call): Promise<{ body: T; headers: Headers }> {
    return this.retrying(call, async (res, timeout) => {
      const text = await timeout.guard(res.text());
      if (!res.ok) throw errorFromResponse(res.status, text, res.headers, call.taskId);
      try {
        return { body: JSON.parse(text) as T, headers: res.headers };
      } catch (e) {
        throw new ReelayError(`the answer to ${call.method} ${call.path} is not JSON`, { status: res.status, code: 'invalid_response', ...(call.taskId ? { taskId: call.taskId } : {}), cause: e });
      }
    });
  }

  /**
   * The answer of `call` once its head has come, its body left to read: the timeout covers the
   * head only, so a long download or stream is not cut. An error answer is thrown.
   */
  async open(call: Call): Promise<Response> {
    return this.retrying(call, async (res, timeout) => {
      if (!res.ok) throw errorFromResponse(res.status, await timeout.guard(res.text()), res.headers, call.taskId);
      timeout.release();
      return res;
    });
  }

  private url(call: Call): string {
    const url = new URL(/^https?:\/\//.test(call.path) ? call.path : `${this.opts.apiURL}${call.path}`);
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    return url.toString();
  }

  private async retrying<T>(call: Call, read: (res: Response, timeout: Try) => Promise<T>): Promise<T> {
    const retries = call.maxRetries ?? this.opts.maxRetries;
    const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
    if (!call.anonymous) headers.authorization = `Bearer ${this.opts.apiKey}`;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const url = this.url(call);
    for (let attempt = 0; ; attempt++) {
      call.signal?.throwIfAborted();
      const t = new Try(this.opts.timeoutMs, call.signal);
      let err: ReelayError;
      try {
        const res = await t.guard(this.opts.fetch(url, { method: call.method, headers, ...(body === undefined ? {} : { body }), signal: t.signal }));
        return await read(res, t);
      } catch (e) {
        if (call.signal?.aborted) throw call.signal.reason;
        err = e instanceof ReelayError ? e : transportError(e, t, call);
      } finally {
        t.done();
      }
      if (attempt >= retries || !retryable(err) || (err.retryAfterMs ?? 0) > this.opts.maxRetryDelayMs) throw err;
      await sleep(delayOf(err, attempt), call.signal);
    }
  }
}

/**
 * One try: its own abort, fired by the caller's signal or by the timeout. `release` stops the
 * timeout once the head has come (the body then runs as long as it takes); `done` lets go of the
 * caller's signal, except for a response whose body is still being read.
 */
class Try {
  private readonly ctl: AbortController;
  private readonly dispose: () => void;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private released = false;
  timedOut = false;

  constructor(
    readonly timeoutMs: number,
    outer: AbortSignal | undefined,
  ) {
    ({ ctl: this.ctl, dispose: this.dispose } = follows(outer));
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.ctl.abort(new TimedOut());
    }, timeoutMs);
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  /** `p`, or a rejection as soon as this try is aborted (some fetches ignore an abort mid-body). */
  guard<T>(p: Promise<T>): Promise<T> {
    if (this.ctl.signal.aborted) return Promise.reject(this.ctl.signal.reason);
    return new Promise<T>((resolve, reject) => {
      const stop = () => reject(this.ctl.signal.reason);
      this.ctl.signal.addEventListener('abort', stop, { once: true });
      p.then(resolve, reject).finally(() => this.ctl.signal.removeEventListener('abort', stop));
    });
  }

  release(): void {
    this.released = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  done(): void {
    clearTimeout(this.timer);
    // A released try's body is still read: the caller's abort must still reach it.
    if (!this.released) this.dispose();
  }
}

function transportError(e: unknown, t: Try, call: Call): ReelayError {
  const taskId = call.taskId ? { taskId: call.taskId } : {};
  if (t.timedOut) return new ReelayError(`${call.method} ${call.path}: no answer within ${t.timeoutMs} ms`, { code: 'timeout', ...taskId, cause: e });
  const why = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
  return new ReelayError(`${call.method} ${call.path}: ${why}`, { code: 'network', ...taskId, cause: e });
}

/** Whether an error may go away by itself: no answer, a busy key, rate limits, server errors. */
export function retryable(err: ReelayError): boolean {
  if (err.status === null) return err.code === 'network' || err.code === 'timeout';
  return err.status === 429 || err.status >= 500 || (err.status === 409 && err.code === 'in_progress');
}

function delayOf(err: ReelayError, attempt: number): number {
  if (err.retryAfterMs !== undefined) return err.retryAfterMs;
  const base = Math.min(500 * 2 ** attempt, 8_000);
  return base * (0.75 + Math.random() * 0.5);
}

/**
 * An abort of one's own that follows `outer` (at once, when it has already aborted). `dispose`
 * lets go of `outer`.
 */
export function follows(outer: AbortSignal | undefined): { ctl: AbortController; dispose(): void } {
  const ctl = new AbortController();
  if (!outer) return { ctl, dispose() {} };
  const onAbort = () => ctl.abort(outer.reason);
  if (outer.aborted) onAbort();
  else outer.addEventListener('abort', onAbort, { once: true });
  return { ctl, dispose: () => outer.removeEventListener('abort', onAbort) };
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
