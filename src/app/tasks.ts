import { randomInt } from 'node:crypto';
import { chargeOf, type Price } from '../core/credits.js';
import { enhancePrompt } from '../core/enhance.js';
import { fileToken, mediaId } from '../core/ids.js';
import { isTerminal } from '../core/states.js';
import type { Attempt, Task, TaskCharge, TaskEvent } from '../core/task.js';
import { ApiError } from './errors.js';
import { CreateRate } from './rate.js';
import { checkHookUrl } from './webhooks.js';
import { BlockedUrlError, type UrlGuard } from '../net/guard.js';
import { type ResultFiles, SOURCE_FILE } from '../results/files.js';
import { type CreditAccount, type Delivery, InsufficientCreditsError, type KeyRef, type LedgerEntry, type Store, type StoredAnswer, type TaskPage } from '../store/port.js';

export interface TaskServiceOptions {
  taskDeadlineMs: number;
  errorSleepMs: number;
  maxRetries: number;
  /** Creates per minute per key (0 or absent: no limit). */
  keyCreatesPerMinute?: number;
}

/** `spec.video` of a task whose video to extend was uploaded: the bytes are its `source.mp4`. */
export const UPLOADED = 'upload';

/** What a dialect hands over to create a task; everything else starts at its initial value. */
export type NewTask = Pick<Task, 'id' | 'tenantId' | 'dialect' | 'model' | 'spec' | 'request'> & {
  callbackUrl?: string | undefined;
};

/**
 * A create answered once per idempotency key (`http/idempotency.ts`): the key the request holds,
 * and its answer for the task, which is stored with the task in one transaction.
 */
export interface Once {
  ref: KeyRef;
  answer(task: Task): StoredAnswer;
}

/** The application side of tasks: what every dialect's routes call to create and read them. */
export class TaskService {
  /** While draining for maintenance, creates are refused (kie 455). */
  draining = false;
  /** Tells the engine there is new work (a task stored, a rendition asked for), so it starts at once. */
  wakeEngine: () => void = () => {};
  /**
   * The engine of this process, when new tasks go straight to it: the task is inserted leased to
   * it and handed over, so no claim has to find it.
   */
  engine?: { offer(): { owner: string; until: number } | undefined; adopt(task: Task, leaseUntil: number): void };
  /**
   * Tells the engines a task was canceled: the one that holds it lets it go, and one claims it
   * to stop its work (this process's engine, and the others through the store's signal).
   */
  canceled: (taskId: string, before?: Task) => void = () => {};
  /** Tells this process's deliverer a delivery is due now (a resend); others find it at their tick. */
  wakeDeliverer: () => void = () => {};
  /**
   * Whether a model's routes include a provider that can extend a video (set from the router);
   * a task that extends one is refused before it is stored when none can.
   */
  extendable: (model: string, spec: Pick<Task['spec'], 'video' | 'videoJob'>) => boolean = () => true;
  /** What a task of a model costs a metered key (set from the router); undefined: free. */
  price: (model: string) => Price | undefined = () => undefined;

  constructor(
    private readonly store: Store,
    private readonly guard: UrlGuard,
    private readonly opts: TaskServiceOptions,
    /** Where the tasks' files are; `remove` deletes them. */
    private readonly files?: ResultFiles,
  ) {
    this.rate = new CreateRate(opts.keyCreatesPerMinute ?? 0);
  }

  private readonly rate: CreateRate;

  /** A random kie-style seed (10000–99999) for requests that give none. */
  static randomSeed(): number {
    return randomInt(10000, 100000);
  }

  async create(input: NewTask, once?: Once): Promise<Task> {
    if (this.draining) throw new ApiError('maintenance', 'Reelay is draining for maintenance; try again shortly');
    const wait = this.rate.take(input.tenantId);
    if (wait > 0) throw new ApiError('rate_limited', `this key may create ${this.opts.keyCreatesPerMinute} tasks a minute; try again in ${wait} s`, undefined, wait);
    for (const url of input.spec.images) await this.checkImageUrl(url);
    if (input.spec.video !== undefined) {
      const videoJob = await this.checkSourceVideo(input.tenantId, input.spec.video);
      if (videoJob) input = { ...input, spec: { ...input.spec, videoJob } };
      if (!this.extendable(input.model, input.spec)) {
        throw new ApiError('unsupported', `model ${input.model} is served by providers that cannot extend this video`, 'video');
      }
    }
    if (input.callbackUrl) await this.checkCallbackUrl(input.callbackUrl);
    const now = Date.now();
    const task: Task = {
      id: input.id,
      tenantId: input.tenantId,
      dialect: input.dialect,
      model: input.model,
      spec: input.spec,
      request: input.request,
      state: 'queued',
      enhancedPrompt: input.spec.enhancePrompt ? enhancePrompt(input.spec.prompt) : input.spec.prompt,
      images: input.spec.images.map((url) => ({ url, status: 'pending', mediaId: mediaId() })),
      provider: 'local',
      upstreamId: null,
      attemptCount: 0,
      retryCount: 0,
      maxRetries: this.opts.maxRetries,
      errorSleepMs: this.opts.errorSleepMs,
      lastError: null,
      lastErrorKind: null,
      failureStage: null,
      callbackUrl: input.callbackUrl ?? null,
      fileToken: fileToken(),
      hdState: 'none',
      uhdState: 'none',
      uhdCallbackUrl: null,
      progress: 0,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
      deadlineAt: now + this.opts.taskDeadlineMs,
      nextRunAt: now,
      routeIndex: 0,
      submittedAt: null,
      resultUrl: null,
      fallback: false,
      cancelOutcome: null,
      deleteRequested: false,
      charge: await this.chargeFor(input),
    };
    if (task.spec.video?.startsWith('data:') && this.files) task.spec = { ...task.spec, video: await this.storeUpload(task, task.spec.video) };
    const lease = this.engine?.offer();
    let created: boolean;
    try {
      created = await this.store.createTask(task, lease, once && { ref: once.ref, answer: once.answer(task) });
    } catch (e) {
      throw creditsRefusal(e, 'this task');
    }
    if (!created) throw new ApiError('internal', 'task id collision; please retry');
    if (lease) this.engine!.adopt(task, lease.until);
    else this.wakeEngine();
    return task;
  }

  /**
   * What a new task reserves: its price (see `core/credits.ts`) when its key has a credit account;
   * nothing for a free model or a key that is not metered.
   */
  private async chargeFor(input: NewTask): Promise<TaskCharge | null> {
    const charge = chargeOf(this.price(input.model), input.spec);
    if (!charge) return null;
    return (await this.store.creditAccount(input.tenantId)) ? charge : null;
  }

  /** What a rendition asked for after success costs a metered key (its price's `hd` or `uhd`); undefined: free. */
  private async renditionPrice(task: Task, rendition: 'hd' | 'uhd'): Promise<number | undefined> {
    const credits = Math.ceil(this.price(task.model)?.[rendition] ?? 0);
    // A task made at 4k has its 4k video: asked for, only its thumbnail is made, for nothing.
    if (credits <= 0 || (rendition === 'uhd' && task.spec.upsample && task.spec.resolution === '4k' && !task.spec.frame)) return undefined;
    // Whether it is asked for at all is the store's to say (the rendition may have failed since
    // this copy of the task was read): the price goes with every ask.
    return (await this.store.creditAccount(task.tenantId)) ? credits : undefined;
  }

  /** The key's credit account (none: not metered), and a page of its ledger, newest first. */
  async credits(tenantId: string, page?: { before?: number; limit: number; taskId?: string }): Promise<{ account: CreditAccount | undefined; ledger: LedgerEntry[] }> {
    const [account, ledger] = await Promise.all([this.store.creditAccount(tenantId), page ? this.store.listLedger(tenantId, page) : []]);
    return { account, ledger };
  }

  async get(tenantId: string, id: string): Promise<Task | undefined> {
    return this.store.getTask(tenantId, id);
  }

  /**
   * Asks for the 1080p rendition of a succeeded task (a no-op while one exists or is being made)
   * and wakes the engine; returns the task as it now stands.
   */
  async requestHd(task: Task): Promise<Task> {
    const price = await this.renditionPrice(task, 'hd');
    const now = await this.store.requestHd(task.tenantId, task.id, Date.now(), price).catch((e: unknown) => Promise.reject(creditsRefusal(e, 'the 1080p rendition')));
    this.wakeEngine();
    return now ?? task;
  }

  /**
   * One page of the tenant's tasks, every dialect's, by creation time (OpenAI list). `hasMore`
   * says whether another page follows. Undefined when `after` names no task of this tenant.
   */
  async list(tenantId: string, page: TaskPage): Promise<{ tasks: Task[]; hasMore: boolean } | undefined> {
    const rows = await this.store.listTasks(tenantId, { ...page, limit: page.limit + 1 });
    if (!rows) return undefined;
    return { tasks: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
  }

  /**
   * Cancels a task that has not ended (see `Store.cancelTask`), and tells the engines, one of
   * which stops its work: the local renderer's ffmpeg, or the upstream job through its
   * provider's cancel. A task that ended first is left as it is: `canceled` is false, and the
   * task says how it ended. Undefined when the tenant has no such task.
   */
  async cancel(tenantId: string, id: string, o?: { deleteAfter?: boolean }): Promise<{ task: Task; canceled: boolean } | undefined> {
    const r = await this.store.cancelTask(tenantId, id, Date.now(), o);
    if (r && (r.canceled || r.task.cancelOutcome === 'pending')) this.canceled(id, r.before ? { ...r.task, state: r.before } : undefined);
    return r;
  }

  /**
   * A task's audit trail, oldest first: its creation, its transitions and callback tries
   * (`TaskEvent`), and its attempts, merged by time.
   */
  async events(task: Task): Promise<{ events: TaskEvent[]; attempts: Attempt[] }> {
    const [events, attempts] = await Promise.all([this.store.listEvents(task.id), this.store.listAttempts(task.id)]);
    return { events, attempts };
  }

  /** The tenant's tasks changed at or after `since`, oldest change first (a key's event stream). */
  changed(tenantId: string, since: number, limit: number): Promise<Task[]> {
    return this.store.changedTasks(tenantId, since, limit);
  }

  /** The callbacks a task owes or owed, in the order they were owed. */
  deliveries(task: Task): Promise<Delivery[]> {
    return this.store.listDeliveries(task.id);
  }

  /** Sends one of a task's callbacks again, now: the same body and `webhook-id`, signed anew. */
  async resend(task: Task, deliveryId: number): Promise<Delivery | undefined> {
    const d = await this.store.resendDelivery(task.id, deliveryId, Date.now());
    if (d) this.wakeDeliverer();
    return d;
  }

  /**
   * Deletes a task: its records, then its files (a crash in between leaves files no record points
   * to, never a record without its files). With `cancel`, a task still being made is canceled
   * and deleted once its work is stopped (OpenAI `DELETE`); without, it is a `conflict`, as is an
   * ended one the engine holds (a rendition being made). Returns false when the task is not there.
   */
  async remove(task: Task, o?: { cancel?: boolean }): Promise<boolean> {
    if (!isTerminal(task.state) || (task.state === 'canceled' && task.cancelOutcome === 'pending')) {
      if (!o?.cancel) throw new ApiError('conflict', `task ${task.id} is ${task.state}; it can be deleted once it has completed or failed`);
      const r = await this.cancel(task.tenantId, task.id, { deleteAfter: true });
      if (!r) return false;
      // Canceled now, or still being stopped: the engine deletes it once its work is stopped.
      if (r.canceled || r.task.cancelOutcome === 'pending') return true;
      // It ended first (or its work was stopped meanwhile): delete it as it is.
      task = r.task;
    }
    if (!(await this.store.deleteTask(task.tenantId, task.id))) {
      if (await this.store.getTask(task.tenantId, task.id)) {
        throw new ApiError('conflict', `task ${task.id} is being worked on (a rendition is being made); delete it once that is done`);
      }
      return false;
    }
    await this.files?.remove(task);
    return true;
  }

  /**
   * Asks for the 4k rendition of a succeeded task (kie get-4k-video), with the URL its callback
   * goes to; wakes the engine. Gives the task as it now stands, and whether this call asked (a
   * request that raced another finds the rendition already pending).
   */
  async requestUhd(task: Task, callbackUrl?: string): Promise<{ task: Task; asked: boolean }> {
    if (callbackUrl) await this.checkCallbackUrl(callbackUrl);
    const price = await this.renditionPrice(task, 'uhd');
    const now = await this.store.requestUhd(task.tenantId, task.id, Date.now(), callbackUrl ?? null, price).catch((e: unknown) => Promise.reject(creditsRefusal(e, 'the 4k rendition')));
    if (now?.asked) this.wakeEngine();
    return now ?? { task, asked: false };
  }

  /** The task if the store holds it in memory (see `Store.peekTask`), else `undefined`. */
  peek(tenantId: string, id: string): Task | undefined {
    return this.store.peekTask?.(tenantId, id);
  }

  private async checkImageUrl(url: string): Promise<void> {
    if (url.startsWith('data:')) {
      if (!/^data:image\/[a-z0-9.+-]+(;[a-z0-9=.+-]+)*;base64,[A-Za-z0-9+/=\s]+$/i.test(url)) {
        throw new ApiError('validation', 'a data: image must be data:image/<type>;base64,<data>', 'images');
      }
      return;
    }
    try {
      await this.guard.check(url);
    } catch (e) {
      if (e instanceof BlockedUrlError) throw new ApiError('image_fetch', `Failed to fetch the image: ${e.message}`, 'images');
      throw e;
    }
  }

  /** Stores an uploaded video to extend as the task's `source.mp4`; what `spec.video` keeps instead. */
  private async storeUpload(task: Task, dataUrl: string): Promise<string> {
    const bytes = Buffer.from(dataUrl.slice(dataUrl.indexOf(';base64,') + ';base64,'.length), 'base64');
    await this.files!.storeBytes(task, SOURCE_FILE, bytes, { contentType: 'video/mp4' });
    return UPLOADED;
  }

  /**
   * A video to extend: `task:<id>`, a succeeded task of this tenant; `source:<id>`, an extension
   * of this tenant whose source is kept; or a base64 data: URL. Gives the upstream job that made
   * a `task:` source, when there was one.
   */
  private async checkSourceVideo(tenantId: string, video: string): Promise<Task['spec']['videoJob']> {
    if (video.startsWith('source:')) {
      const id = video.slice('source:'.length);
      const source = await this.store.getTask(tenantId, id);
      if (!source || source.spec.video === undefined) throw new ApiError('not_found', `no extension ${id} whose video to extend again`, 'video');
      if (source.state === 'expired') throw new ApiError('expired', `task ${id} has expired; its video is gone`, 'video');
    } else if (video.startsWith('task:')) {
      const id = video.slice('task:'.length);
      const source = await this.store.getTask(tenantId, id);
      if (!source) throw new ApiError('not_found', `no task ${id} to extend`, 'video');
      if (source.state === 'expired') throw new ApiError('expired', `task ${id} has expired; its video is gone`, 'video');
      if (source.state !== 'succeeded') {
        throw new ApiError('validation', `task ${id} is ${source.state}; only a finished video can be extended`, 'video');
      }
      if (source.upstreamId) return { provider: source.provider, upstreamId: source.upstreamId };
    } else if (!/^data:video\/(mp4|quicktime|webm)(;[a-z0-9=.+-]+)*;base64,[A-Za-z0-9+/=\s]+$/i.test(video)) {
      throw new ApiError('validation', 'the video to extend must be a Reelay task or data:video/mp4;base64,<data>', 'video');
    }
    return undefined;
  }

  private async checkCallbackUrl(url: string): Promise<void> {
    await checkHookUrl(this.guard, url, 'callback URL', 'callBackUrl');
  }
}

/** A store's refusal for credits as the API error every door words its own way; anything else as it is. */
function creditsRefusal(e: unknown, what: string): unknown {
  if (!(e instanceof InsufficientCreditsError)) return e;
  return new ApiError('insufficient_credits', `Insufficient Credits: ${what} costs ${e.needed} credits and the balance is ${e.balance}`);
}
