import { ReelayError, WaitTimeoutError, endError } from './errors.js';
import { type Transport, follows, retryable, sleep } from './http.js';
import { readEvents } from './sse.js';
import { type Task, isTerminal } from './types.js';

/** What `wait` takes. */
export interface WaitOptions {
  signal?: AbortSignal;
  /** Gives up after this long with a `WaitTimeoutError`; the task keeps running. No limit by default. */
  timeoutMs?: number;
  /** Called with the task each time its state, progress or cancel outcome changes. */
  onUpdate?: (task: Task) => void;
}

/** The first and the longest pause between two polls when the stream is not there. */
const POLL_FIRST_MS = 1_000;
const POLL_MAX_MS = 5_000;
/** A stream silent this long is taken for dead (the server sends a comment every 15 s). */
const STREAM_IDLE_MS = 45_000;

/** Transient errors (no answer, 5xx) for this long in a row end a wait with the last of them. */
const UNREACHABLE_MS = 120_000;

/** Why a wait's own abort fired: its `timeoutMs`. */
class WaitTimedOut extends Error {}

/** An error of the caller's `onUpdate`, carried out of the stream's reading unchanged. */
class Listener {
  constructor(readonly error: unknown) {}
}

/**
 * Follows a task to its end: its event stream (`GET /tasks/{id}/stream`), and polling
 * `GET /tasks/{id}` (1 s, growing to 5 s) whenever the stream cannot be opened or drops, trying
 * the stream again after each poll unless the server has none. Resolves with the task once it
 * succeeded; rejects with its end's error otherwise.
 */
export async function waitForTask(transport: Transport, id: string, seen: Task | undefined, opts: WaitOptions = {}): Promise<Task> {
  const { ctl, dispose } = follows(opts.signal);
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => ctl.abort(new WaitTimedOut()), opts.timeoutMs);
  let last = seen;
  const stamp = (t: Task) => `${t.state}|${t.progress}|${t.cancel_outcome}|${t.updated_at}`;
  /** Takes a task read; true once it has ended. */
  const take = (t: Task): boolean => {
    if (!last || stamp(t) !== stamp(last)) {
      last = t;
      opts.onUpdate?.(t);
    }
    return isTerminal(t.state);
  };
  const finish = (t: Task): Task => {
    const err = endError(t);
    if (err) throw err;
    return t;
  };
  try {
    if (last && isTerminal(last.state)) return finish(last);
    let streamUsable = true;
    let pause = POLL_FIRST_MS;
    let failingSince: number | undefined;
    for (;;) {
      if (streamUsable) {
        const outcome = await follow(transport, id, ctl.signal, take);
        if (outcome === 'ended') return finish(last!);
        if (outcome === 'unsupported') streamUsable = false;
        if (outcome === 'streamed') pause = POLL_FIRST_MS;
      }
      // The stream dropped, ended early or is not there: read the task, then wait a little.
      let t: Task | undefined;
      try {
        t = await transport.json<Task>({ method: 'GET', path: `/tasks/${encodeURIComponent(id)}`, signal: ctl.signal, taskId: id });
        failingSince = undefined;
      } catch (e) {
        // The server may be restarting: keep trying a while, as long as the error may go away by itself.
        if (!(e instanceof ReelayError) || !retryable(e)) throw e;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > UNREACHABLE_MS) throw e;
      }
      if (t && take(t)) return finish(t);
      await sleep(pause, ctl.signal);
      pause = Math.min(POLL_MAX_MS, pause * 2);
    }
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (ctl.signal.aborted && ctl.signal.reason instanceof WaitTimedOut) throw new WaitTimeoutError(id, opts.timeoutMs!, last);
    if (e instanceof ReelayError && e.taskId === undefined) e.taskId = id;
    throw e;
  } finally {
    clearTimeout(timer);
    dispose();
    if (!ctl.signal.aborted) ctl.abort();
  }
}

/**
 * Reads the task's stream until the task ends (`ended`), or the stream ends or drops having
 * sent something (`streamed`) or nothing (`failed`); `unsupported` when the server answered but
 * not with a stream. Errors that say the task is not there (401, 404) are thrown.
 */
async function follow(transport: Transport, id: string, signal: AbortSignal, take: (t: Task) => boolean): Promise<'ended' | 'streamed' | 'failed' | 'unsupported'> {
  const { ctl, dispose } = follows(signal);
  let idle: ReturnType<typeof setTimeout> | undefined;
  const alive = () => {
    clearTimeout(idle);
    idle = setTimeout(() => ctl.abort(new Error('the stream went quiet')), STREAM_IDLE_MS);
  };
  let got = false;
  try {
    let res: Response;
    try {
      res = await transport.open({ method: 'GET', path: `/tasks/${encodeURIComponent(id)}/stream`, headers: { accept: 'text/event-stream' }, signal: ctl.signal, taskId: id, maxRetries: 0 });
    } catch (e) {
      if (signal.aborted) throw e;
      if (e instanceof ReelayError && e.status !== null && !retryable(e)) {
        // The task's own errors end the wait; any other answer means this server has no stream here.
        if (e.code === 'unauthorized' || (e.code === 'not_found' && e.param === 'id')) throw e;
        return 'unsupported';
      }
      return 'failed';
    }
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream') || !res.body) {
      await res.body?.cancel().catch(() => {});
      return 'unsupported';
    }
    alive();
    for await (const ev of readEvents(res.body, alive)) {
      if (ev.event === 'end') break;
      if (ev.event !== 'task') continue;
      got = true;
      const task = JSON.parse(ev.data) as Task;
      try {
        if (take(task)) return 'ended';
      } catch (e) {
        throw new Listener(e);
      }
    }
    return got ? 'streamed' : 'failed';
  } catch (e) {
    if (signal.aborted) throw e;
    // `onUpdate` threw: the wait ends with its error.
    if (e instanceof Listener) throw e.error;
    if (e instanceof ReelayError && e.code !== 'network' && e.code !== 'timeout') throw e;
    // A dropped connection, or one gone quiet: the caller polls, then opens it again.
    return got ? 'streamed' : 'failed';
  } finally {
    clearTimeout(idle);
    dispose();
    if (!ctl.signal.aborted) ctl.abort();
  }
}
