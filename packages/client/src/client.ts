import { ShortBodyError, urlOf, writeAtomically } from './download.js';
import { ReelayError } from './errors.js';
import { type Call, Transport } from './http.js';
import { TaskPage } from './pages.js';
import type { Balance, CreateParams, Delivery, LedgerEntry, LedgerPage, ListParams, Page, Task, TaskEvent, Variant } from './types.js';
import { type WaitOptions, waitForTask } from './wait.js';
import { webhooks } from './webhooks.js';

/** How a client reaches its server. */
export interface ClientOptions {
  /** The server, e.g. `http://localhost:8080` (a trailing `/reelay/v1` is fine too). */
  baseURL: string;
  /** A key of the server (`sk-…`), sent as `Authorization: Bearer`. */
  apiKey: string;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** How long one try of a request may take to answer (default 60 000 ms). */
  timeoutMs?: number;
  /**
   * How many times a request is tried again (default 2): after no answer, a 409 `in_progress`,
   * a 429 or a 5xx, waiting what `Retry-After` asks. Other 4xx are never tried again.
   */
  maxRetries?: number;
  /**
   * The longest `Retry-After` a retry waits for (default 10 000 ms). A longer one (a key's create
   * rate spent for the minute) is thrown at once as the `ReelayError`, whose `retryAfterMs` says it.
   */
  maxRetryDelayMs?: number;
}

/** What `create` takes besides the task. */
export interface CreateOptions {
  /** Sent as `Idempotency-Key` (default: a new random UUID), the same on every retry. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** What `generate` takes besides the task. */
export interface GenerateOptions extends WaitOptions, CreateOptions {
  /** Where to write the video once the task succeeded (no file when absent). */
  to?: string;
  /** Which file to write (default `video`, the final one). */
  variant?: Variant;
  /** Called with the new task before any waiting: its `id` is known even if the wait fails. */
  onCreated?: (task: Task) => void;
}

/** What `download` takes. */
export interface DownloadOptions {
  /** The file to write; made atomically (a temporary file, then a rename). */
  to: string;
  /** Default `video`, the final one. */
  variant?: Variant;
  signal?: AbortSignal;
}

/** What `ledger` takes. */
export interface LedgerParams {
  /** 1–100 entries (default 20). */
  limit?: number;
  /** The id of the entry the page goes back from (a page's `nextBefore`). */
  before?: string;
  taskId?: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RETRY_DELAY_MS = 10_000;
const DEFAULT_MAX_RETRIES = 2;
const API_PATH = '/reelay/v1';

const time = (v: Date | string | undefined) => (v === undefined ? undefined : v instanceof Date ? v.toISOString() : v);
const num = (v: number | undefined) => (v === undefined ? undefined : String(v));
const taskPath = (id: string) => `/tasks/${encodeURIComponent(id)}`;

/** The wire body of a create: snake_case, without the fields left out. */
function createBody(p: CreateParams): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: p.model,
    prompt: p.prompt,
    images: p.images,
    image_mode: p.imageMode,
    aspect_ratio: p.aspectRatio,
    seconds: p.seconds,
    resolution: p.resolution,
    seed: p.seed,
    enhance_prompt: p.enhancePrompt,
    watermark: p.watermark,
    webhook_url: p.webhookUrl,
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  return body;
}

/**
 * A client of Reelay's own API (`/reelay/v1`): every task of its key, whichever door made it.
 *
 * @example
 *   const reelay = new Reelay({ baseURL: 'http://localhost:8080', apiKey: process.env.REELAY_API_KEY! });
 *   const { task, file } = await reelay.generate({ model: 'veo3.1-fast', prompt: 'A lighthouse at dusk', seconds: 4 },
 *     { to: 'lighthouse.mp4', onCreated: (t) => console.log('created', t.id) });
 */
export class Reelay {
  /** Standard Webhooks verification of Reelay's callbacks, without a client. */
  static readonly webhooks = webhooks;
  /** The same as `Reelay.webhooks`. */
  readonly webhooks = webhooks;
  private readonly http: Transport;

  constructor(opts: ClientOptions) {
    if (!opts.baseURL) throw new TypeError('baseURL is required, e.g. http://localhost:8080');
    if (!opts.apiKey) throw new TypeError('apiKey is required');
    const base = opts.baseURL.replace(/\/+$/, '');
    this.http = new Transport({
      apiURL: base.endsWith(API_PATH) ? base : `${base}${API_PATH}`,
      apiKey: opts.apiKey,
      fetch: opts.fetch ?? ((...args) => fetch(...args)),
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxRetries: opts.maxRetries ?? DEFAULT_MAX_RETRIES,
      maxRetryDelayMs: opts.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
    });
  }

  /**
   * Creates a task (`POST /tasks`). Always sends an `Idempotency-Key`, the same on each retry, so
   * a retried create makes one task and pays for one video.
   */
  async create(params: CreateParams, opts: CreateOptions = {}): Promise<Task> {
    return (await this.createWithReplay(params, opts)).task;
  }

  /**
   * `create`, telling whether the answer is a replay (`Idempotent-Replayed: true`): the key was
   * used before, so the task is the one the earlier request made, as it was answered then.
   */
  async createWithReplay(params: CreateParams, opts: CreateOptions = {}): Promise<{ task: Task; replayed: boolean }> {
    const key = opts.idempotencyKey ?? crypto.randomUUID();
    const { body, headers } = await this.http.answer<Task>({ method: 'POST', path: '/tasks', body: createBody(params), headers: { 'idempotency-key': key }, signal: opts.signal });
    return { task: body, replayed: headers.get('idempotent-replayed') === 'true' };
  }

  /** The task as it is now (`GET /tasks/{id}`). */
  get(id: string, opts: { signal?: AbortSignal } = {}): Promise<Task> {
    return this.http.json<Task>({ method: 'GET', path: taskPath(id), signal: opts.signal, taskId: id });
  }

  /** The key's tasks, newest first unless `order: 'asc'`: await it for one page, `for await` it for all. */
  list(params: ListParams = {}): TaskPage<Task> {
    const states = params.state === undefined ? undefined : Array.isArray(params.state) ? params.state.join(',') : params.state;
    const query = {
      state: states || undefined,
      model: params.model,
      provider: params.provider,
      dialect: params.dialect,
      created_from: time(params.createdFrom),
      created_to: time(params.createdTo),
      order: params.order,
      limit: num(params.limit),
    };
    return new TaskPage<Task>(async (after) => {
      const page = await this.http.json<{ data: Task[]; has_more: boolean; next_cursor: string | null }>({ method: 'GET', path: '/tasks', query: { ...query, after } });
      return { data: page.data, nextCursor: page.next_cursor, hasMore: page.has_more } satisfies Page<Task>;
    }, params.after);
  }

  /**
   * Waits for the task to end, following its event stream (polling when the stream is not there).
   * Resolves with the task once it `succeeded`.
   * @throws TaskFailedError, TaskCanceledError, TaskExpiredError (each with `.task`) as it ended;
   *   WaitTimeoutError after `timeoutMs` (the task keeps running); the signal's reason on abort.
   */
  wait(idOrTask: string | Task, opts: WaitOptions = {}): Promise<Task> {
    const id = typeof idOrTask === 'string' ? idOrTask : idOrTask.id;
    return waitForTask(this.http, id, typeof idOrTask === 'string' ? undefined : idOrTask, opts);
  }

  /**
   * Creates a task, tells `onCreated`, waits for it to succeed, and writes its video to `to` when
   * given. `timeoutMs` bounds the wait; errors are `create`'s, `wait`'s and `download`'s.
   */
  async generate(params: CreateParams, opts: GenerateOptions = {}): Promise<{ task: Task; file?: string }> {
    const created = await this.create(params, { ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    opts.onCreated?.(created);
    const task = await this.wait(created, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.onUpdate ? { onUpdate: opts.onUpdate } : {}) });
    if (opts.to === undefined) return { task };
    const { path } = await this.download(task, { to: opts.to, ...(opts.variant ? { variant: opts.variant } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return { task, file: path };
  }

  /** Writes a task's video (`variant`, default the final one) to `to`, atomically. Node only. */
  async download(idOrTask: string | Task, opts: DownloadOptions): Promise<{ path: string; bytes: number }> {
    const res = await this.content(idOrTask, opts);
    const id = typeof idOrTask === 'string' ? idOrTask : idOrTask.id;
    try {
      // The length is known only for a body sent as it is stored (not re-encoded on the way).
      const length = res.headers.get('content-encoding') ? NaN : Number(res.headers.get('content-length') ?? NaN);
      const bytes = await writeAtomically(res.body!, opts.to, opts.signal, Number.isFinite(length) ? length : undefined);
      return { path: opts.to, bytes };
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (e instanceof ReelayError) throw e;
      if (e instanceof ShortBodyError) throw new ReelayError(`the video of task ${id} ended after ${e.bytes} of ${e.expected} bytes`, { code: 'network', taskId: id });
      // A file system error has a `syscall`; anything else broke the download on its way.
      const code = e && typeof e === 'object' && 'syscall' in e ? 'file' : 'network';
      throw new ReelayError(`the video of task ${id} could not be written to ${opts.to}: ${(e as Error).message}`, { code, taskId: id, cause: e });
    }
  }

  /** The answer of a task's video (`variant`, default the final one), its body unread. */
  async content(idOrTask: string | Task, opts: { variant?: Variant; signal?: AbortSignal } = {}): Promise<Response> {
    const variant = opts.variant ?? 'video';
    let task = typeof idOrTask === 'string' ? await this.get(idOrTask, opts) : idOrTask;
    let url: string;
    try {
      url = urlOf(task, variant);
    } catch (e) {
      // A task object read before it ended: read it again once.
      if (typeof idOrTask === 'string') throw e;
      task = await this.get(task.id, opts);
      url = urlOf(task, variant);
    }
    const call: Call = { method: 'GET', path: url, headers: { accept: '*/*' }, signal: opts.signal, taskId: task.id, anonymous: true };
    return this.http.open(call);
  }

  /**
   * Cancels a task that has not ended (`POST /tasks/{id}/cancel`): it is `canceled` at once,
   * `cancel_outcome` `pending` until the work is stopped.
   * @throws ReelayError `conflict` (409) when it ended first; its `.task` is the task as it ended.
   */
  cancel(id: string): Promise<Task> {
    return this.http.json<Task>({ method: 'POST', path: `${taskPath(id)}/cancel`, taskId: id });
  }

  /** A task's audit trail, oldest first, its creation first. */
  async events(id: string): Promise<TaskEvent[]> {
    return (await this.http.json<{ data: TaskEvent[] }>({ method: 'GET', path: `${taskPath(id)}/events`, taskId: id })).data;
  }

  /** A task's callbacks: where each went and how it went. */
  async deliveries(id: string): Promise<Delivery[]> {
    return (await this.http.json<{ data: Delivery[] }>({ method: 'GET', path: `${taskPath(id)}/deliveries`, taskId: id })).data;
  }

  /**
   * Sends one of a task's callbacks again now: the same body and `webhook-id`, signed anew. Tried
   * once: a resend whose answer was lost may have been sent, and each one grants a try.
   */
  resend(id: string, delivery: number | string): Promise<Delivery> {
    return this.http.json<Delivery>({ method: 'POST', path: `${taskPath(id)}/deliveries/${encodeURIComponent(String(delivery))}/resend`, taskId: id, maxRetries: 0 });
  }

  /** The key's credits: `metered` false and `credits` null until its first top-up. */
  balance(): Promise<Balance> {
    return this.http.json<Balance>({ method: 'GET', path: '/balance' });
  }

  /** The key's credits ledger, newest first: top-ups and each metered task's reservation and close. */
  async ledger(params: LedgerParams = {}): Promise<LedgerPage> {
    const page = await this.http.json<{ data: LedgerEntry[]; has_more: boolean; next_before: number | null }>({
      method: 'GET',
      path: '/ledger',
      query: { limit: num(params.limit), before: params.before, task_id: params.taskId },
    });
    return { data: page.data, hasMore: page.has_more, nextBefore: page.next_before === null ? null : String(page.next_before) };
  }
}
