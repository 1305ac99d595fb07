import { randomUUID } from 'node:crypto';
import { assertTransition } from '../core/states.js';
import type { Task } from '../core/task.js';
import { coerceError } from '../providers/port.js';
import type { Store } from '../store/port.js';
import { ProviderGate } from './gate.js';
import { type StepResult, Steps, type StepContext } from './steps.js';

export interface EngineOptions {
  /** How long a claimed task is ours without a heartbeat (default 30000 ms). */
  leaseMs: number;
  /** Steps running at once (default 16). */
  concurrency?: number;
  /** Tasks claimed per query (default 32). */
  batch?: number;
  /** How often the engine looks for due tasks when nothing wakes it (default 250 ms). */
  tickMs?: number;
  /**
   * Downloads of finished jobs' videos at once (default 16). They run in their own lane, beside
   * the step slots: a burst of finished jobs queues there (committed, claimed as slots free)
   * instead of holding the slots that polls need.
   */
  downloads?: number;
  /** Polls that found their job done and wait in memory for a download slot (default 8× downloads). */
  downloadQueue?: number;
}

/**
 * The download lane's slots, taken by a poll that found its job done or by a download claimed in
 * the lane. A poll that finds every slot taken waits in a bounded queue, off the step slots; when
 * the queue is full too, the task is committed to wait in the lane in the store.
 */
export class DownloadLane {
  active = 0;
  private readonly waiters: (() => void)[] = [];
  /**
   * Tasks were committed to wait in the store. Until the lane's claims have caught up with them,
   * later arrivals are committed too rather than queued in memory, where they would overtake
   * those older ones forever under a steady load.
   */
  storeQueued = false;

  constructor(
    readonly limit: number,
    readonly queueLimit: number,
    private readonly hooks: { freed(): void; parked(delta: number): void },
  ) {}

  get free(): number {
    return this.limit - this.active;
  }

  /** `true`: a slot is ours. A promise: queued, resolved with a slot. `false`: lane and queue full. */
  enter(): boolean | Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return true;
    }
    if (this.storeQueued || this.waiters.length >= this.queueLimit) {
      this.storeQueued = true;
      return false;
    }
    this.hooks.parked(1);
    return new Promise<void>((resolve) =>
      this.waiters.push(() => {
        this.hooks.parked(-1);
        resolve();
      }),
    );
  }

  finish(): void {
    const next = this.waiters.shift();
    if (next) return next(); // the slot passes to the next in the queue
    this.active--;
    this.hooks.freed();
  }
}

/**
 * The engine: claims due tasks from the store under a lease, runs one step of each, and commits the
 * result. The schedule lives in the store (`next_run_at`), so a restarted or second engine picks up
 * exactly where the work stands; a task whose engine died is claimed again when its lease expires.
 */
export class Engine {
  readonly owner = `engine-${randomUUID().slice(0, 8)}`;
  private readonly steps: Steps;
  /** Per-provider in-flight counts and submission rates (see ProviderGate). */
  readonly gate = new ProviderGate();
  /** Every task this engine holds: running a step or a download. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Of those, the ones running a step (downloads claimed in their lane are not counted). */
  private steps_ = 0;
  readonly downloads: DownloadLane;
  private fetchTicking = false;
  private fetchAgain = false;
  private fetchBacklog = false;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private ticking = false;
  private wakePending = false;
  /** The last claim found every slot taken or came back full: more may be due than was claimed. */
  private backlog = false;
  private again = false;
  private stopped = true;
  private readonly concurrency: number;
  private readonly batch: number;

  private readonly store: Store;

  constructor(
    private readonly ctx: StepContext,
    private readonly opts: EngineOptions,
  ) {
    this.store = ctx.store;
    const downloads = opts.downloads ?? 16;
    this.downloads = new DownloadLane(downloads, opts.downloadQueue ?? 8 * downloads, {
      freed: () => {
        if (this.fetchBacklog) this.wake();
      },
      // A step waiting in the lane's queue gives its step slot back while it waits.
      parked: (delta) => {
        this.steps_ -= delta;
        if (delta > 0 && this.backlog) this.wake();
      },
    });
    this.steps = new Steps({ ...ctx, downloads: this.downloads }, this.gate);
    this.concurrency = opts.concurrency ?? 16;
    this.batch = opts.batch ?? 32;
  }

  async start(): Promise<void> {
    this.gate.reset(await this.store.countInFlight());
    this.stopped = false;
    this.timer = setInterval(() => {
      void this.tick();
      void this.fetchTick();
    }, this.opts.tickMs ?? 250);
    this.heartbeat = setInterval(() => void this.extendLeases(), Math.max(250, Math.floor(this.opts.leaseMs / 3)));
    this.wake();
  }

  /** Looks for due work now instead of at the next tick. */
  wake(): void {
    if (this.stopped || this.wakePending) return;
    this.wakePending = true;
    setImmediate(() => {
      this.wakePending = false;
      void this.tick();
      void this.fetchTick();
    });
  }

  /** Stops claiming; waits for running steps to commit. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.inflight.values()]);
    clearInterval(this.heartbeat);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      do {
        this.again = false;
        const free = this.concurrency - this.steps_;
        if (free <= 0) {
          this.backlog = true;
          break;
        }
        const tasks = await this.store.claimDue(this.owner, Date.now(), this.opts.leaseMs, Math.min(free, this.batch));
        for (const task of tasks) {
          this.steps_++;
          this.inflight.set(task.id, this.execute(task).finally(() => {
            this.steps_--;
            this.inflight.delete(task.id);
            // A slot came free while due work was waiting for one: claim now, not at the next tick.
            if (this.backlog) this.wake();
          }));
        }
        this.backlog = tasks.length === Math.min(free, this.batch);
        if (this.backlog) this.again = true;
      } while (this.again && !this.stopped);
    } catch (e) {
      this.ctx.log.error({ err: coerceError(e).message }, 'engine tick failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Claims finished jobs waiting in the download lane while it has free slots. */
  private async fetchTick(): Promise<void> {
    if (this.stopped) return;
    if (this.fetchTicking) {
      this.fetchAgain = true;
      return;
    }
    this.fetchTicking = true;
    try {
      do {
        this.fetchAgain = false;
        const want = Math.min(this.downloads.free, this.batch);
        if (want <= 0) {
          this.fetchBacklog = true;
          break;
        }
        // The slots are taken before the claim: a poll may take one while the claim runs.
        this.downloads.active += want;
        let tasks: Task[] = [];
        try {
          tasks = await this.store.claimDue(this.owner, Date.now(), this.opts.leaseMs, want, 'fetch');
        } finally {
          this.downloads.active -= want - tasks.length;
        }
        for (const task of tasks) {
          this.inflight.set(task.id, this.executeStep(task, false).then(() => undefined).finally(() => {
            this.inflight.delete(task.id);
            this.downloads.finish();
          }));
        }
        this.fetchBacklog = tasks.length === want;
        if (!this.fetchBacklog) this.downloads.storeQueued = false;
        if (this.fetchBacklog) this.fetchAgain = true;
      } while (this.fetchAgain && !this.stopped);
    } catch (e) {
      this.ctx.log.error({ err: coerceError(e).message }, 'download lane claim failed');
    } finally {
      this.fetchTicking = false;
    }
  }

  /**
   * Runs a claimed task's step and commits it. When the next step is due at once (a submission
   * whose first poll is due now, inputs fetched, an upsample to start), it runs in the same claim:
   * the commit keeps the lease, and the task as committed is the input of the next step. At most
   * four steps per claim, so one task cannot hold a slot for long.
   */
  private async execute(claimed: Task): Promise<void> {
    let task = claimed;
    for (let hop = 0; hop < 4; hop++) {
      const next = await this.executeStep(task, hop < 3);
      if (!next) return;
      task = next;
    }
  }

  /** One step; returns the task as committed when its next step should run now in this claim. */
  private async executeStep(task: Task, mayContinue: boolean): Promise<Task | undefined> {
    const now = Date.now();
    if (this.ctx.metrics) {
      const step =
        task.state === 'generating' && task.upstreamId
          ? task.resultUrl !== null ? 'download' : 'poll'
          : task.state === 'generating' || task.state === 'queued' ? 'submit' : 'other';
      if (task.nextRunAt !== null) this.ctx.metrics.lateness.observe({ step }, Math.max(0, now - task.nextRunAt) / 1000);
      this.ctx.metrics.steps.inc({ step });
    }
    let result: StepResult;
    try {
      result = await this.steps.run(task, now);
      // The transition table is the law: a step that breaks it is a bug, handled like a failed step.
      if (result.patch.state) assertTransition(task.state, result.patch.state);
    } catch (e) {
      // A bug or an unexpected I/O error: treat it like a transient failure of this step.
      const err = coerceError(e);
      this.ctx.log.error({ taskId: task.id, state: task.state, err: err.message }, 'step threw');
      result = this.steps.retry(task, now, err, 'engine', {});
    }
    const due = result.patch.nextRunAt;
    const state = result.patch.state ?? task.state;
    // A finished job queued for the download lane is left to that lane's claim.
    const queuedForDownload = typeof result.patch.resultUrl === 'string';
    const continueNow = mayContinue && !this.stopped && !queuedForDownload && typeof due === 'number' && due <= Date.now() && state !== 'succeeded' && state !== 'failed';
    if (continueNow) result.keepLeaseUntil = Date.now() + this.opts.leaseMs;
    const deliverer = this.ctx.deliverer;
    const handOver = !!result.deliveries?.length && !!deliverer?.hasRoom(result.deliveries.length);
    if (handOver) result.deliveriesLeasedUntil = Date.now() + deliverer!.leaseMs;
    try {
      const ok = await this.store.commitStep(this.owner, result);
      this.gate.settle(task, ok ? result.patch : undefined);
      if (!ok) {
        this.ctx.log.warn({ taskId: task.id }, 'lease lost before commit; the step result was dropped');
        return undefined;
      }
      result.afterCommit?.();
      if (handOver) deliverer!.adopt(result.deliveries!);
      else if (result.deliveries?.length) deliverer?.wake();
      if (continueNow) return { ...task, ...result.patch } as Task;
      if (typeof due === 'number' && due <= Date.now() + 5) this.wake();
    } catch (e) {
      this.gate.settle(task, undefined);
      this.ctx.log.error({ taskId: task.id, err: coerceError(e).message }, 'commit failed');
    }
    return undefined;
  }

  private async extendLeases(): Promise<void> {
    if (this.inflight.size === 0) return;
    try {
      await this.store.extendLeases(this.owner, [...this.inflight.keys()], Date.now() + this.opts.leaseMs);
    } catch (e) {
      this.ctx.log.error({ err: coerceError(e).message }, 'lease heartbeat failed');
    }
  }
}
