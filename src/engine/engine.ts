import { randomUUID } from 'node:crypto';
import { closingOf } from '../core/credits.js';
import { assertTransition } from '../core/states.js';
import type { Task } from '../core/task.js';
import type { Exchange } from '../providers/exchanges.js';
import { coerceError } from '../providers/port.js';
import type { Store } from '../store/port.js';
import { ClaimLoop } from './claim-loop.js';
import { DownloadLane } from './download-lane.js';
import { ProviderGate } from './gate.js';
import { hold } from './policy.js';
import { type Held, HeldTasks } from './held.js';
import { type AwaitDownload, type StepResult, Steps, type StepContext } from './steps.js';

/** A task its step leaves with the engine: held for its next step, or waiting for a download slot. */
type Kept = Held & { download?: true };

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
   * the step slots: a burst of finished jobs queues there (in memory, or in the store when
   * memory is full) instead of holding the slots that polls need.
   */
  downloads?: number;
  /** Polls that found their job done and wait in memory for a download slot (default 8× downloads). */
  downloadQueue?: number;
  /**
   * A task whose next step is due within this long stays with the engine after its commit:
   * leased (until that time plus `leaseMs`) and started from memory on time, without a claim
   * (default 120000 ms).
   */
  holdMs?: number;
  /** The most tasks held in memory between steps (default 200000); past it, tasks are released. */
  maxHeld?: number;
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
  private fetchBacklog = false;
  private timer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private wakePending = false;
  /** The last claim found every slot taken or came back full: more may be due than was claimed. */
  private backlog = false;
  private stopped = true;
  private readonly stepClaims = new ClaimLoop(() => this.claimSteps(), (e) => this.ctx.log.error({ err: coerceError(e).message }, 'engine tick failed'));
  private readonly fetchClaims = new ClaimLoop(() => this.claimDownloads(), (e) => this.ctx.log.error({ err: coerceError(e).message }, 'download lane claim failed'));
  private readonly concurrency: number;
  private readonly batch: number;

  private readonly store: Store;
  /** Tasks kept between steps, waiting for their time (see `holdMs`). */
  private readonly held = new HeldTasks();
  /**
   * Finished jobs waiting for a download slot, oldest first: leased to this engine, their store
   * rows untouched (a restart polls the job again and finds it done). Counted with `held`.
   */
  private readonly awaiting = new HeldTasks();
  /**
   * Canceled tasks claimed while a step of theirs still ran here: the step that stops their work
   * follows that run (which cannot commit: the task is canceled).
   */
  private readonly followUps = new Map<string, Held>();
  /**
   * Jobs that a submit made for a task canceled meanwhile (its commit was refused): stopped at
   * once, and named to the task's cancel step when it runs here, which records them.
   */
  private readonly orphans = new Map<string, { provider: string; upstreamId: string; at: number }>();
  private dueTimer?: NodeJS.Timeout;
  private dueTimerAt = Infinity;
  private unsubscribe?: () => void;

  constructor(
    private readonly ctx: StepContext,
    private readonly opts: EngineOptions,
  ) {
    this.store = ctx.store;
    const downloads = opts.downloads ?? 16;
    this.downloads = new DownloadLane(downloads, opts.downloadQueue ?? 8 * downloads, {
      freed: () => {
        if (this.awaiting.size > 0) this.dispatchDownloads();
        else if (this.fetchBacklog) this.wake();
      },
      // A step waiting in the lane's queue gives its step slot back while it waits.
      parked: (delta) => {
        this.steps_ -= delta;
        if (delta > 0) this.slotFreed();
      },
    });
    this.steps = new Steps({ ...ctx, downloads: this.downloads, owner: this.owner }, this.gate);
    this.concurrency = opts.concurrency ?? 16;
    this.batch = opts.batch ?? 32;
  }

  async start(): Promise<void> {
    this.gate.reset(await this.store.countInFlight());
    this.stopped = false;
    // Other processes sharing the store say when work is due, or when a job this engine may hold
    // has news (its upstream's callback reached one of them).
    this.unsubscribe = this.store.onSignal?.((s) => {
      if (s.kind === 'due') this.wake();
      else if (s.kind === 'canceled') this.canceled(s.taskId);
      else this.wakeHeld(s.provider, s.upstreamId);
    });
    this.timer = setInterval(() => {
      this.tick();
      this.fetchTick();
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
      this.tick();
      this.fetchTick();
    });
  }

  /**
   * Stops claiming; waits for running steps to commit, then gives the held tasks' leases back so
   * another engine can take them at their time.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearInterval(this.timer);
    clearTimeout(this.dueTimer);
    await Promise.allSettled([...this.inflight.values()]);
    clearInterval(this.heartbeat);
    const ids = [...this.held.ids(), ...this.awaiting.ids()];
    for (const id of ids) this.forget(id);
    this.followUps.clear();
    this.orphans.clear();
    if (ids.length > 0) {
      await this.store.releaseLeases(this.owner, ids).catch((e: unknown) => this.ctx.log.error({ err: coerceError(e).message }, 'releasing held tasks failed'));
    }
  }

  /**
   * A lease for a task about to be created in this process, if this engine takes new tasks now
   * (it runs and holds fewer than its limit); see `adopt`.
   */
  offer(): { owner: string; until: number } | undefined {
    if (this.stopped || this.heldFull()) return undefined;
    return { owner: this.owner, until: Date.now() + this.opts.leaseMs };
  }

  /** Takes a task that was inserted leased to this engine (`offer`): it starts from memory, due now. */
  adopt(task: Task, leaseUntil: number): void {
    if (this.stopped) return; // its lease ends soon and a claim finds it
    this.held.add(task, leaseUntil);
    this.dispatch();
  }

  /**
   * An upstream says its job changed (a callback, the local renderer finishing): its task is
   * polled now, whether it waits in this engine or in the store.
   */
  async wakeUpstream(provider: string, upstreamId: string): Promise<void> {
    if (this.wakeHeld(provider, upstreamId)) return;
    // Not held here: due now in the store (for whichever engine claims it), and told to the other
    // processes, one of which may hold it in memory.
    await this.store.wakeByUpstream(provider, upstreamId, Date.now());
    this.store.signal?.({ kind: 'upstream', provider, upstreamId });
    this.wake();
  }

  /**
   * A task was canceled (its lease taken away in the store): a copy held here is let go, and a
   * claim takes the task now to stop its work. A step of it running now finds its commit refused.
   */
  canceled(taskId: string, before?: Task): void {
    // The job it ran no longer counts against its provider's maxInFlight (this engine's own
    // count, on a single-writer store; a shared store counts generating tasks only).
    if (before) this.gate.settle(before, { state: 'canceled' });
    if (this.stopped) return;
    this.forget(taskId);
    this.wake();
  }

  /** Runs a held task's next poll now, if this engine holds the task of that job. */
  private wakeHeld(provider: string, upstreamId: string): boolean {
    const task = this.held.findUpstream(provider, upstreamId);
    if (!task) return false;
    this.held.reschedule(task.id, Date.now());
    this.dispatch();
    return true;
  }

  /** Starts held tasks that are due, while step slots are free; arms the timer for the next one. */
  private dispatch(): void {
    if (this.stopped) return;
    const now = Date.now();
    while (this.steps_ < this.concurrency) {
      const due = this.held.takeDue(now);
      if (!due) break;
      this.run(due.task, due.leaseUntil);
    }
    const next = this.held.nextDue();
    // A due task waiting for a slot starts when a step finishes (see run), not on a timer.
    if (next === Infinity || next <= now || next >= this.dueTimerAt) return;
    clearTimeout(this.dueTimer);
    this.dueTimerAt = next;
    this.dueTimer = setTimeout(() => {
      this.dueTimerAt = Infinity;
      this.dispatch();
    }, next - now);
  }

  /** Tasks kept in memory (between steps or waiting for a download) reached `maxHeld`. */
  private heldFull(): boolean {
    return this.held.size + this.awaiting.size >= (this.opts.maxHeld ?? 200_000);
  }

  /** Starts downloads of finished jobs waiting in memory, oldest first, while the lane has slots. */
  private dispatchDownloads(): void {
    while (!this.stopped && this.awaiting.size > 0 && this.downloads.reserve(1) === 1) {
      const next = this.awaiting.takeDue(Infinity)!;
      this.runDownload(next.task, next.leaseUntil);
    }
    if (this.awaiting.size === 0 && !this.fetchBacklog) this.downloads.caughtUp();
  }

  /** Runs a finished job's download in the lane slot taken for it. */
  private runDownload(task: Task, leaseUntil: number): void {
    this.launch(task, leaseUntil, () => {
      this.downloads.finish();
      this.dispatch();
    });
  }

  /** Drops a task kept in memory (claimed back from the store, or released). */
  private forget(id: string): void {
    this.held.remove(id);
    this.awaiting.remove(id);
  }

  /** Runs a task's step in a step slot; its lease lasts at least until `leaseUntil`. */
  private run(task: Task, leaseUntil: number): void {
    this.steps_++;
    this.launch(task, leaseUntil, () => {
      this.steps_--;
      this.dispatch();
      this.slotFreed();
    });
  }

  /**
   * Runs a task's step, tracked in `inflight`, then `done`. A task its step keeps is held (or
   * queued for a download) only once this run has left `inflight`, so no dispatch can start it
   * while it is still running.
   */
  private launch(task: Task, leaseUntil: number, done: () => void): void {
    let next: Kept | undefined;
    const p: Promise<void> = this.executeStep(task, leaseUntil).then((h) => void (next = h)).finally(() => {
      if (this.inflight.get(task.id) === p) this.inflight.delete(task.id);
      const follow = this.followUps.get(task.id);
      if (follow) {
        this.followUps.delete(task.id);
        next = follow;
      }
      if (next?.download) this.awaiting.add(next.task, next.leaseUntil);
      else if (next) this.held.add(next.task, next.leaseUntil);
      done();
      if (next?.download) this.dispatchDownloads();
    });
    this.inflight.set(task.id, p);
  }

  /**
   * Slots came free while due work waited in the store: claim now rather than at the next tick,
   * once enough are free for a claim worth its transaction (an eighth of the slots, at most a
   * batch): a claim per finished step cost more than the steps it started.
   */
  private slotFreed(): void {
    if (!this.backlog) return;
    const worth = Math.max(1, Math.min(this.batch, Math.floor(this.concurrency / 8)));
    if (this.concurrency - this.steps_ >= worth) this.wake();
  }

  /** Starts this engine's due held tasks, then claims due tasks from the store while slots are free. */
  private tick(): void {
    if (this.stopped) return;
    // Held tasks that are due go first: they are this engine's own.
    this.dispatch();
    void this.stepClaims.run();
  }

  /** One claim for the step slots; `true` when it filled its batch (more may be due). */
  private async claimSteps(): Promise<boolean> {
    if (this.stopped) return false;
    const free = this.concurrency - this.steps_;
    if (free <= 0) {
      this.backlog = true;
      return false;
    }
    const claimedAt = Date.now();
    const tasks = await this.store.claimDue(this.owner, claimedAt, this.opts.leaseMs, Math.min(free, this.batch));
    for (const task of tasks) {
      // Our own task again (its lease ran out while it ran here, or it was canceled meanwhile):
      // run it once; a canceled one's stop step follows the run (see `followUps`).
      if (this.inflight.has(task.id)) {
        if (task.state === 'canceled') this.followUps.set(task.id, { task, leaseUntil: claimedAt + this.opts.leaseMs });
        continue;
      }
      this.forget(task.id);
      this.run(task, claimedAt + this.opts.leaseMs);
    }
    this.backlog = tasks.length === Math.min(free, this.batch);
    return this.backlog;
  }

  /** Claims finished jobs waiting in the download lane while it has free slots. */
  private fetchTick(): void {
    if (this.stopped) return;
    void this.fetchClaims.run();
  }

  /** One claim for the download lane; `true` when it filled its batch. */
  private async claimDownloads(): Promise<boolean> {
    if (this.stopped) return false;
    // Jobs kept in memory go first; the store's turn comes once they are all started (its tasks
    // are older only when memory was full, or when another engine left them).
    this.dispatchDownloads();
    if (this.awaiting.size > 0) {
      this.fetchBacklog = true;
      return false;
    }
    // The slots are taken before the claim (a poll may want one while the claim runs), and those
    // the claim did not fill are given back, to a poll waiting in the queue if any.
    const want = this.downloads.reserve(this.batch);
    if (want <= 0) {
      this.fetchBacklog = true;
      return false;
    }
    let tasks: Task[] = [];
    const claimedAt = Date.now();
    try {
      tasks = await this.store.claimDue(this.owner, claimedAt, this.opts.leaseMs, want, 'fetch');
    } finally {
      for (let i = tasks.length; i < want; i++) this.downloads.finish();
    }
    for (const task of tasks) {
      if (this.inflight.has(task.id)) {
        this.downloads.finish();
        continue;
      }
      this.forget(task.id);
      this.runDownload(task, claimedAt + this.opts.leaseMs);
    }
    this.fetchBacklog = tasks.length === want;
    if (!this.fetchBacklog && this.awaiting.size === 0) this.downloads.caughtUp();
    return this.fetchBacklog;
  }

  /**
   * Runs a task's step and commits it. When the next step is due within `holdMs` (a submission
   * whose first poll is due now or in a minute, a poll, inputs fetched, an upsample to start), the
   * commit keeps the lease until then and the task as committed waits in memory for its time.
   */
  private async executeStep(task: Task, leaseUntil: number): Promise<Kept | undefined> {
    const orphan = task.state === 'canceled' ? this.orphans.get(task.id) : undefined;
    if (orphan) {
      this.orphans.delete(task.id);
      if (!task.upstreamId) task = { ...task, provider: orphan.provider, upstreamId: orphan.upstreamId };
    }
    const now = Date.now();
    if (this.ctx.metrics) {
      const step =
        task.state === 'generating' && task.upstreamId
          ? task.resultUrl !== null ? 'download' : 'poll'
          : task.state === 'generating' || task.state === 'queued' ? 'submit' : 'other';
      if (task.nextRunAt !== null) this.ctx.metrics.lateness.observe({ step }, Math.max(0, now - task.nextRunAt) / 1000);
      this.ctx.metrics.steps.inc({ step });
    }
    let decided: StepResult | AwaitDownload;
    const exchanges: Exchange[] = [];
    try {
      decided = await this.steps.run(task, now, exchanges);
      // The transition table is the law: a step that breaks it is a bug, handled like a failed step.
      const next = 'kind' in decided ? decided.commit.patch.state : decided.patch.state;
      if (next) assertTransition(task.state, next);
    } catch (e) {
      // A bug or an unexpected I/O error: treat it like a transient failure of this step.
      const err = coerceError(e);
      this.ctx.log.error({ taskId: task.id, state: task.state, err: err.message }, 'step threw');
      decided = task.state === 'canceled' ? this.steps.retryStop(task, now, err) : this.steps.retry(task, now, err, { step: 'engine' });
    }
    // A finished job that found the download lane and its queue full waits for the lane.
    const awaitsDownload = 'kind' in decided;
    const result = 'kind' in decided ? decided.commit : decided;
    if (awaitsDownload && !this.stopped && !this.heldFull()) {
      // It waits in memory for a download slot, still leased, with nothing to commit: should this
      // engine die, the task is polled again at its lease's end and its job found done.
      this.gate.settle(task, result.patch);
      return { task: { ...task, ...result.patch } as Task, leaseUntil, download: true };
    }
    const due = result.patch.nextRunAt;
    const state = result.patch.state ?? task.state;
    const held = awaitsDownload
      ? { keep: false as const }
      : hold({ due, state, now: Date.now(), leaseUntil, leaseMs: this.opts.leaseMs, holdMs: this.opts.holdMs ?? 120_000, mayHold: !this.stopped && !this.heldFull() });
    if (held.keep) {
      if (held.keepLease) result.keepLease = true;
      if (held.keepLeaseUntil !== undefined) result.keepLeaseUntil = held.keepLeaseUntil;
    }
    // The upstream's requests and answers, as this step made them, redacted of the keys it knows.
    for (const x of exchanges) {
      const clean = (v: string | null) => (v === null ? null : this.ctx.router.redact(v));
      const { at, ...exchange } = x;
      (result.events ??= []).push({ taskId: task.id, at, kind: 'upstream', actor: 'engine', from: null, to: null, detail: { provider: result.patch.provider ?? task.provider, ...exchange, url: clean(x.url), request: clean(x.request), response: clean(x.response), ...(x.error ? { error: clean(x.error) } : {}) } });
    }
    const to = result.patch.state;
    if (to && to !== task.state) (result.events ??= []).push({ taskId: task.id, at: Date.now(), kind: 'state', actor: 'engine', from: task.state, to, detail: { reason: transitionReason(task, result) } });
    // A metered task's reservation closes with the step that ends it (or says what its cancel stopped).
    const close = closingOf(task, result.patch, result.artifacts, this.ctx.router.refund, Date.now());
    if (close) result.close = close;
    const deliverer = this.ctx.deliverer;
    const handOver = !!result.deliveries?.length && !!deliverer?.hasRoom(result.deliveries.length);
    if (handOver) result.deliveriesLeasedUntil = Date.now() + deliverer!.leaseMs;
    try {
      const ok = await this.store.commitStep(this.owner, result);
      this.gate.settle(task, ok ? result.patch : undefined);
      if (!ok) {
        this.ctx.log.warn({ taskId: task.id }, 'lease lost before commit; the step result was dropped');
        await this.stopOrphan(task, result);
        return undefined;
      }
      result.afterCommit?.();
      if (handOver) deliverer!.adopt(result.deliveries!, task.tenantId);
      else if (result.deliveries?.length) deliverer?.wake();
      // Held again: it waits in memory for its time, once this run has left `inflight`.
      if (held.keep) return { task: { ...task, ...result.patch } as Task, leaseUntil: held.leaseUntil };
      if (typeof due === 'number' && due <= Date.now() + 5) this.wake();
    } catch (e) {
      this.gate.settle(task, undefined);
      this.ctx.log.error({ taskId: task.id, err: coerceError(e).message }, 'commit failed');
    }
    return undefined;
  }

  /** Keeps an orphaned job for its task's cancel step; entries another engine's step made moot go after 10 minutes. */
  private keepOrphan(taskId: string, job: { provider: string; upstreamId: string }): void {
    const now = Date.now();
    if (this.orphans.size >= 1000) for (const [id, o] of this.orphans) if (now - o.at > 600_000) this.orphans.delete(id);
    if (this.orphans.size < 10_000) this.orphans.set(taskId, { ...job, at: now });
  }

  /**
   * A step whose commit was refused had started an upstream job (a submission): when the task was
   * canceled meanwhile, no record will ever name that job, so its provider is told to stop it
   * here. (A task taken over by another engine is left alone: its next submit names the same
   * submission, and so the same job where the provider is idempotent.)
   */
  private async stopOrphan(task: Task, result: StepResult): Promise<void> {
    const upstreamId = result.patch.upstreamId;
    if (!upstreamId || upstreamId === task.upstreamId) return;
    const label = result.patch.provider ?? task.provider;
    const provider = this.ctx.router.provider(label);
    try {
      const now = await this.store.getTask(task.tenantId, task.id);
      if (now && now.state !== 'canceled') return;
      // Named to the cancel step when it runs here (a provider with no cancel included: its job
      // runs on, and the step says so).
      if (now?.cancelOutcome === 'pending') this.keepOrphan(task.id, { provider: label, upstreamId });
      if (!provider?.cancel) return;
      await provider.cancel(upstreamId);
      this.ctx.log.info({ taskId: task.id, provider: label, upstreamId }, 'stopped the job a canceled task had just submitted');
    } catch (e) {
      this.ctx.log.warn({ taskId: task.id, provider: label, upstreamId, err: coerceError(e).message }, 'could not stop the job of a canceled task');
    }
  }

  /**
   * The heartbeat: extends the leases of running tasks, and of held tasks whose lease would end
   * soon (they are overdue, waiting for a slot). A held task whose lease was lost is let go.
   */
  private async extendLeases(): Promise<void> {
    const now = Date.now();
    const ending = now + this.opts.leaseMs / 2;
    const overdue = [...this.held.leasesEndingBefore(ending), ...this.awaiting.leasesEndingBefore(ending)];
    if (this.inflight.size === 0 && overdue.length === 0) return;
    const until = now + this.opts.leaseMs;
    try {
      const kept = new Set(await this.store.extendLeases(this.owner, [...this.inflight.keys(), ...overdue], until));
      for (const id of overdue) {
        for (const list of [this.held, this.awaiting]) {
          if (kept.has(id)) list.setLease(id, until);
          else list.remove(id);
        }
      }
    } catch (e) {
      this.ctx.log.error({ err: coerceError(e).message }, 'lease heartbeat failed');
    }
  }
}

/** Why a step moved its task on, for the audit trail. */
function transitionReason(task: Task, result: StepResult): string {
  const p = result.patch;
  switch (p.state) {
    case 'fetching':
      return 'input files to fetch and check';
    case 'generating':
      if (p.upstreamId) return `submitted to ${p.provider ?? task.provider} as ${p.upstreamId}`;
      return task.state === 'fetching' ? 'inputs fetched and checked' : 'to be submitted again';
    case 'generated':
      return `the video of ${task.provider} is stored; the upsample is owed`;
    case 'upsampling':
      return 'upsample started';
    case 'succeeded':
      return task.state === 'upsampling' ? 'the upsampled video is stored' : `the video of ${task.provider} is stored`;
    case 'failed':
      return p.lastError ?? result.attempt?.error ?? 'failed';
    default:
      return p.state ?? '';
  }
}
