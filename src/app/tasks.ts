import { randomInt } from 'node:crypto';
import { enhancePrompt } from '../core/enhance.js';
import { fileToken, mediaId } from '../core/ids.js';
import type { Task } from '../core/task.js';
import { ApiError } from './errors.js';
import { BlockedUrlError, type UrlGuard } from '../net/guard.js';
import type { Store } from '../store/port.js';

export interface TaskServiceOptions {
  taskDeadlineMs: number;
  errorSleepMs: number;
  maxRetries: number;
}

/** What a dialect hands over to create a task; everything else starts at its initial value. */
export type NewTask = Pick<Task, 'id' | 'tenantId' | 'dialect' | 'model' | 'spec' | 'request'> & {
  callbackUrl?: string | undefined;
};

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

  constructor(
    private readonly store: Store,
    private readonly guard: UrlGuard,
    private readonly opts: TaskServiceOptions,
  ) {}

  /** A random kie-style seed (10000–99999) for requests that give none. */
  static randomSeed(): number {
    return randomInt(10000, 100000);
  }

  async create(input: NewTask): Promise<Task> {
    if (this.draining) throw new ApiError('maintenance', 'Reelay is draining for maintenance; try again shortly');
    for (const url of input.spec.images) await this.checkImageUrl(url);
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
    };
    const lease = this.engine?.offer();
    if (!(await this.store.createTask(task, lease))) {
      throw new ApiError('internal', 'task id collision; please retry');
    }
    if (lease) this.engine!.adopt(task, lease.until);
    else this.wakeEngine();
    return task;
  }

  async get(tenantId: string, id: string): Promise<Task | undefined> {
    return this.store.getTask(tenantId, id);
  }

  /**
   * Asks for the 1080p rendition of a succeeded task (a no-op while one exists or is being made)
   * and wakes the engine; returns the task as it now stands.
   */
  async requestHd(task: Task): Promise<Task> {
    const now = await this.store.requestHd(task.tenantId, task.id, Date.now());
    this.wakeEngine();
    return now ?? task;
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

  private async checkCallbackUrl(url: string): Promise<void> {
    try {
      await this.guard.check(url);
    } catch (e) {
      // A host that does not resolve yet may resolve later: only a definite refusal is an error.
      if (e instanceof BlockedUrlError && !e.message.startsWith('cannot resolve')) {
        throw new ApiError('validation', `callback URL refused: ${e.message}`, 'callBackUrl');
      }
    }
  }
}
