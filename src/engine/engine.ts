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
  private readonly inflight = new Map<string, Promise<void>>();
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
    this.steps = new Steps(ctx, this.gate);
    this.concurrency = opts.concurrency ?? 16;
    this.batch = opts.batch ?? 32;
  }

  async start(): Promise<void> {
    this.gate.reset(await this.store.countInFlight());
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 250);
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
        const free = this.concurrency - this.inflight.size;
        if (free <= 0) {
          this.backlog = true;
          break;
        }
        const tasks = await this.store.claimDue(this.owner, Date.now(), this.opts.leaseMs, Math.min(free, this.batch));
        for (const task of tasks) {
          this.inflight.set(task.id, this.execute(task).finally(() => {
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
      const step = task.state === 'generating' && task.upstreamId ? 'poll' : task.state === 'generating' || task.state === 'queued' ? 'submit' : 'other';
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
    const continueNow = mayContinue && !this.stopped && typeof due === 'number' && due <= Date.now() && state !== 'succeeded' && state !== 'failed';
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
