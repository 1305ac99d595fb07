import type { Logger } from 'pino';
import type { CancelOutcome } from '../core/states.js';
import type { Artifact, Task } from '../core/task.js';
import type { Binaries } from '../media/ffmpeg.js';
import type { GuardedFetcher } from '../net/fetch.js';
import type { Exchange } from '../providers/exchanges.js';
import { type Provider, type ProviderError, RateLimitedError, type Succeeded, TransientError, coerceError } from '../providers/port.js';
import type { Route, Router } from '../routing/router.js';
import { type ResultFiles, hdFileName } from '../results/files.js';
import { ObjectStoreError } from '../storage/port.js';
import type { NewDelivery, StepCommit, Store, TaskPatch } from '../store/port.js';
import type { Metrics } from '../metrics.js';
import type { Deliverer } from './deliveries.js';
import { ProviderGate } from './gate.js';
import { fetchImage } from './inputs.js';
import { Outputs, hdSize } from './outputs.js';
import {
  type FailOptions,
  type FailedRoute,
  type PolicyContext,
  type ProviderErrorOptions,
  type RetryOptions,
  STAGE_OF,
  abandonedJob,
  attempt,
  fail,
  nextPollAt,
  onProviderError,
  retryOrFail,
  stalled,
  succeed,
  waitForStorage,
} from './policy.js';

export interface StepContext {
  store: Store;
  router: Router;
  files: ResultFiles;
  fetcher: GuardedFetcher;
  binaries: Binaries;
  imageMaxBytes: number;
  /**
   * Builds the callbacks owed when a task ends (dialect-specific bodies), or, with `uhd`, when
   * the 4k rendition asked for after success is stored or failed.
   */
  notify: (task: Task, event?: 'uhd') => NewDelivery[];
  log: Logger;
  /** Where the engine records its figures (optional). */
  metrics?: Metrics;
  /**
   * Where callbacks go once committed: handed over directly when the deliverer has room (inserted
   * leased to it), else it is woken to claim them.
   */
  deliverer?: Pick<Deliverer, 'hasRoom' | 'leaseMs' | 'adopt' | 'wake'>;
  /** The engine's lease owner name (a shared store's submission slots are held under it). */
  owner?: string;
  /** The shortest wait between two polls of one job (default 1000 ms; tests use less). */
  minPollMs: number;
  /**
   * Tasks of one key being worked on at once (`REELAY_KEY_MAX_IN_FLIGHT`; 0 or absent: no
   * limit). A queued task past it stays queued and asks again (`Store.admitTenant`).
   */
  keyMaxInFlight?: number;
  /**
   * The download lane's slots (see the engine). Without one, a poll that finds the job done
   * always downloads at once.
   */
  downloads?: { enter(): boolean | Promise<void>; finish(): void };
}

/** How long a queued task of a key at its `keyMaxInFlight` waits before it asks again (once to twice this). */
const KEY_QUEUE_WAIT_MS = 1000;

/** What one step decided, plus work to do once the commit is durable. */
export interface StepResult extends StepCommit {
  afterCommit?: () => void;
}

/**
 * A poll found its job finished while the download lane and its queue were full: the task waits
 * for the lane. The engine keeps it in memory, leased, with nothing committed; or, when it cannot,
 * commits `commit`, which leaves the job's result URL in the store for the lane's claim.
 */
export interface AwaitDownload {
  kind: 'await-download';
  commit: StepResult;
}

/**
 * The engine's steps: given a claimed task, do the next piece of work and say what to commit.
 * Each step is safe to run again after a crash: a step that completed is not redone because its
 * effect is either committed (the state moved on) or recognisable in the result storage (a stored
 * file, see `Outputs`) or idempotent upstream (the same submission id).
 */
export class Steps {
  private readonly outputs: Outputs;

  constructor(
    private readonly ctx: StepContext,
    private readonly gate: ProviderGate = new ProviderGate(),
  ) {
    this.outputs = new Outputs(ctx);
  }

  /** The exchanges of the step this view runs (see `run`); none on `Steps` itself. */
  private readonly trace?: Exchange[];

  /**
   * Runs the task's next step. With `trace`, the step runs on a view of this object whose
   * providers note their upstream HTTP exchanges there (`providerOf`).
   */
  async run(task: Task, now: number, trace?: Exchange[]): Promise<StepResult | AwaitDownload> {
    if (trace && !this.trace) return (Object.create(this, { trace: { value: trace } }) as Steps).run(task, now);
    let result;
    try {
      result = await this.step(task, now);
    } catch (e) {
      // The result storage failed where a step does not decide itself (storing inputs, reading
      // them for a submit): wait for it, as every step does.
      if (!(e instanceof ObjectStoreError)) throw e;
      result = this.waitForStorage(task, now, e);
    }
    // Nothing more is due (the task ended, or its renditions are made): this machine's copies of
    // its stored files can go once that is committed.
    if (!('kind' in result) && nothingDue(task, result.patch)) {
      const before = result.afterCommit;
      result.afterCommit = () => {
        before?.();
        this.ctx.files.release(task).catch((e: unknown) => this.ctx.log.warn({ taskId: task.id, err: coerceError(e).message }, 'could not drop the work copies'));
      };
    }
    return result;
  }

  private async step(task: Task, now: number): Promise<StepResult | AwaitDownload> {
    if (task.state === 'canceled') return this.stopWork(task, now);
    if (task.state !== 'succeeded' && now >= task.deadlineAt) {
      const minutes = Math.round((task.deadlineAt - task.createdAt) / 60_000);
      if (task.state === 'generating' && task.upstreamId) this.abandon(task.provider, task.upstreamId);
      return this.fail(task, now, { kind: 'timeout', stage: STAGE_OF[task.state], step: 'deadline', message: `Timeout: the task did not finish within ${minutes} minutes (it was ${task.state})` });
    }
    switch (task.state) {
      case 'queued':
        if (this.ctx.keyMaxInFlight && !(await this.ctx.store.admitTenant(task.tenantId, task.id, this.ctx.keyMaxInFlight))) {
          // The key has as many tasks under way as it may: this one waits its turn, queued.
          return { taskId: task.id, patch: { nextRunAt: now + KEY_QUEUE_WAIT_MS * (1 + Math.random()) } };
        }
        return task.images.length > 0 || task.spec.video !== undefined
          ? { taskId: task.id, patch: { state: 'fetching', nextRunAt: now, updatedAt: now } }
          : this.submit(task, now);
      case 'fetching':
        return this.fetchInputs(task, now);
      case 'generating':
        if (!task.upstreamId) return this.submit(task, now);
        return task.resultUrl !== null ? this.fetchQueued(task, now) : this.poll(task, now);
      case 'generated':
        return { taskId: task.id, patch: { state: 'upsampling', nextRunAt: now, updatedAt: now } };
      case 'upsampling':
        return this.upsample(task, now);
      case 'succeeded':
        if (task.hdState === 'pending') return this.renderHd(task, now);
        if (task.uhdState === 'pending') return this.renderUhd(task, now);
        return { taskId: task.id, patch: { nextRunAt: null } };
      default:
        return { taskId: task.id, patch: { nextRunAt: null } };
    }
  }

  private async fetchInputs(task: Task, now: number): Promise<StepResult> {
    const images = task.images.map((i) => ({ ...i }));
    const artifacts: Artifact[] = [];
    for (const [i, img] of images.entries()) {
      if (img.status === 'completed') continue;
      let got;
      try {
        got = await fetchImage(this.ctx.fetcher, img.url, this.ctx.imageMaxBytes);
      } catch (e) {
        const err = e as ProviderError;
        if (err.retryable === true) return this.retry(task, now, err, { step: 'fetch', extra: { images }, artifacts });
        img.status = 'failed';
        const result = this.fail(task, now, { kind: 'image_fetch', stage: 'input', step: 'fetch', message: `Failed to fetch the image: ${err.message}`, extra: { images } });
        return { ...result, artifacts };
      }
      try {
        artifacts.push(await this.outputs.storeImage(task, i, got));
      } catch (e) {
        // The images stored so far are committed with the wait, so they are not fetched again.
        if (e instanceof ObjectStoreError) return this.waitForStorage(task, now, e, { images }, artifacts);
        throw e;
      }
      img.status = 'completed';
    }
    if (task.spec.video !== undefined) {
      try {
        artifacts.push(await this.outputs.storeSource(task));
      } catch (e) {
        if (e instanceof ObjectStoreError) return this.waitForStorage(task, now, e, { images }, artifacts);
        const err = coerceError(e);
        const result = this.fail(task, now, { kind: 'image_fetch', stage: 'input', step: 'fetch', message: `The video to extend cannot be used: ${err.message}`, extra: { images } });
        return { ...result, artifacts };
      }
    }
    const patch: TaskPatch = { state: 'generating', images, upstreamId: null, nextRunAt: now, updatedAt: now };
    if (task.spec.aspectRatio === 'auto') patch.spec = { ...task.spec, aspectRatio: await this.outputs.aspectOfFirstImage(task, artifacts) };
    return { taskId: task.id, patch, artifacts };
  }

  private async submit(task: Task, now: number): Promise<StepResult> {
    const plan = this.ctx.router.plan(task);
    const next = this.ctx.router.next(plan, task.routeIndex);
    if (!next) {
      const labels = [...new Set(plan.map((r) => r.provider.label))].join(', ');
      return this.fail(task, now, { kind: 'upstream', stage: 'generation', step: 'submit', message: `No usable route for model ${task.model}: ${labels} disabled or not configured` });
    }
    const { route } = next;
    const provider = this.providerOf(route.provider.label)!;
    // The inputs' local paths first: a store that fails waits (see `run`) before a slot is taken.
    let files;
    try {
      files = await this.outputs.submitInputs(task);
    } catch (e) {
      if (e instanceof ObjectStoreError) throw e;
      return this.retry(task, now, coerceError(e), { step: 'submit' });
    }
    // A store shared by many processes counts every engine's jobs; else this engine's gate does.
    const p = route.provider;
    const admitted = this.ctx.store.admitSubmission
      ? await this.ctx.store.admitSubmission({ provider: p.label, taskId: task.id, owner: this.ctx.owner ?? '', maxInFlight: p.maxInFlight, ...(p.ratePerSecond !== undefined ? { ratePerSecond: p.ratePerSecond } : {}), now })
      : this.gate.admit(p, now, task.id);
    if (!admitted.ok) {
      // The provider is full: ask again shortly. Not a failure, so nothing is counted.
      return { taskId: task.id, patch: { nextRunAt: now + admitted.waitMs } };
    }
    const resumed = await this.resume(task, now, route, provider);
    if (resumed) return resumed;
    const submissionId = `${task.id}#${task.attemptCount + 1}`;
    try {
      const { upstreamId } = await provider.submit({
        submissionId,
        task,
        model: route.model,
        prompt: task.spec.enhancePrompt ? task.enhancedPrompt : task.spec.prompt,
        inputs: files.inputs,
        ...(files.source ? { source: files.source } : {}),
      });
      return {
        taskId: task.id,
        patch: {
          ...onJob(route, upstreamId, now, { progress: 0, nextRunAt: now + route.provider.typicalMs * (0.9 + 0.2 * Math.random()) }),
          attemptCount: task.attemptCount + 1,
        },
        attempt: attempt(task, now, Date.now(), { step: 'submit', provider: provider.name, upstreamId, outcome: 'submitted', error: null }),
      };
    } catch (e) {
      return this.providerFailure(task, now, e, plan, { step: 'submit', route, upstreamId: null, extra: { state: 'generating', upstreamId: null, routeIndex: route.index } });
    }
  }

  /**
   * Before a task is submitted again to a provider that cannot cancel (kie), the job it abandoned
   * there (stalled, or its provider was disabled) is polled once: a late result beats a second
   * charge. A job that finished, or still runs, is taken back, with a new stall time; one that
   * failed or cannot be reached is left, and a new job is submitted.
   */
  private async resume(task: Task, now: number, route: Route, provider: Provider): Promise<StepResult | undefined> {
    if (provider.cancel || task.retryCount === 0) return undefined;
    const upstreamId = abandonedJob(await this.ctx.store.listAttempts(task.id), provider.name);
    if (!upstreamId) return undefined;
    let outcome;
    try {
      outcome = await provider.poll(upstreamId);
    } catch {
      return undefined;
    }
    if (outcome.status === 'failed') return undefined;
    this.ctx.log.info({ taskId: task.id, provider: provider.name, upstreamId, status: outcome.status }, 'taking back an abandoned job instead of submitting again');
    const running = outcome.status === 'running' ? outcome : undefined;
    return {
      taskId: task.id,
      patch: onJob(route, upstreamId, now, {
        progress: Math.max(task.progress, running?.progress ?? 0),
        nextRunAt: running ? nextPollAt(route.provider, { submittedAt: now }, now, this.ctx.minPollMs, running.pollAfterMs) : now,
      }),
      attempt: attempt(task, now, Date.now(), { step: 'submit', provider: provider.name, upstreamId, outcome: 'resumed', error: null }),
    };
  }

  private async poll(task: Task, now: number): Promise<StepResult | AwaitDownload> {
    const plan = this.ctx.router.plan(task);
    const route = plan[task.routeIndex]?.provider.label === task.provider ? plan[task.routeIndex]! : undefined;
    const upstreamId = task.upstreamId!;
    const provider = this.providerOf(task.provider);
    const config = this.ctx.router.config.providers.get(task.provider);
    // The job's provider was disabled or removed from the configuration: move the task on.
    if (!provider || !config || !route || !this.ctx.router.usable(task.provider)) {
      if (provider) this.abandon(task.provider, upstreamId);
      const err = new TransientError(`provider ${task.provider} is disabled or no longer routes model ${task.model}`);
      return this.providerFailure(task, now, err, plan, { step: 'poll', route: route ?? goneRoute(task), upstreamId, extra: { upstreamId: null }, outcome: 'abandoned' });
    }
    // Past its stall time, a job is polled once more before it is given up: one that finished
    // within the time is found finished.
    const overdue = stalled(config, task, now);
    const giveUp = (why: string): StepResult => {
      this.abandon(task.provider, upstreamId);
      const err = new TransientError(`${task.provider} gave no result within ${Math.round(config.stallMs / 1000)} s (stalled job ${upstreamId}${why})`);
      return this.providerFailure(task, now, err, plan, { step: 'poll', route, upstreamId, extra: { upstreamId: null }, outcome: 'abandoned' });
    };
    let outcome;
    try {
      outcome = await provider.poll(upstreamId);
    } catch (e) {
      // The poll itself failed (network, 5xx, 429): the job may be fine. Poll again later; a job
      // that stays unreachable past its stall time is given up.
      const err = this.clean(e);
      if (overdue) return giveUp(`; its status could not be read: ${err.message}`);
      const at = err instanceof RateLimitedError ? now + err.retryAfterMs : nextPollAt(config, task, now, this.ctx.minPollMs);
      this.ctx.log.warn({ taskId: task.id, provider: task.provider, err: err.message }, 'poll failed; will poll again');
      return { taskId: task.id, patch: { lastError: err.message, lastErrorKind: 'upstream', nextRunAt: at } };
    }
    if (outcome.status === 'running') {
      if (overdue) return giveUp('');
      return {
        taskId: task.id,
        // A job's progress never goes back within one submission (an upstream may report less on a later poll).
        patch: { progress: Math.max(task.progress, outcome.progress ?? 0), nextRunAt: nextPollAt(config, task, now, this.ctx.minPollMs, outcome.pollAfterMs) },
      };
    }
    if (outcome.status === 'failed') {
      // The upstream job is over: a retry is a new submission (on the next route, if any).
      return this.providerFailure(task, now, outcome.error, plan, { step: 'poll', route, upstreamId, extra: { upstreamId: null } });
    }
    // The job is done. Its video is downloaded when the download lane has a slot, after a wait in
    // the lane's queue (off the step slots), or, with the queue full too, the task is committed to
    // wait in the lane: a burst of finished jobs cannot hold the slots that polls need.
    const lane = this.ctx.downloads;
    const entered = lane ? lane.enter() : true;
    if (entered === false) {
      return { kind: 'await-download', commit: { taskId: task.id, patch: { resultUrl: outcome.resultUrl ?? '', progress: Math.max(task.progress, 95), nextRunAt: now, updatedAt: now } } };
    }
    if (entered !== true) await entered;
    try {
      return await this.download(task, now, provider, upstreamId, outcome, route, plan);
    } finally {
      lane?.finish();
    }
  }

  /** A finished job whose download waited in the lane (claimed by the engine's download lane). */
  private async fetchQueued(task: Task, now: number): Promise<StepResult> {
    const plan = this.ctx.router.plan(task);
    const route = plan[task.routeIndex]?.provider.label === task.provider ? plan[task.routeIndex]! : undefined;
    const provider = this.providerOf(task.provider);
    if (!provider || !route) {
      // The provider left the configuration while the video waited: nothing can fetch it now.
      const err = new TransientError(`provider ${task.provider} is no longer configured for model ${task.model}; its finished job cannot be fetched`);
      return this.providerFailure(task, now, err, plan, { step: 'poll', route: route ?? goneRoute(task), upstreamId: task.upstreamId, extra: { upstreamId: null, resultUrl: null } });
    }
    const outcome: Succeeded = task.resultUrl ? { status: 'succeeded', resultUrl: task.resultUrl } : { status: 'succeeded' };
    return this.download(task, now, provider, task.upstreamId!, outcome, route, plan);
  }

  /** Downloads, probes and stores a finished job's video and commits the task's success. */
  private async download(task: Task, now: number, provider: Provider, upstreamId: string, outcome: Succeeded, route: Route, plan: Route[]): Promise<StepResult> {
    try {
      const { file, video } = await this.outputs.fetchVideo(task, provider, upstreamId, outcome);
      const done = attempt(task, now, Date.now(), { step: 'poll', provider: provider.name, upstreamId, outcome: 'succeeded', error: null });
      const release = () => provider.release?.(upstreamId);
      const fallback = route.index !== this.ctx.router.next(plan, 0)?.route.index;
      const { w, h } = hdSize(task);
      if (task.spec.upsample && video.width === w && video.height === h) {
        // The provider made the final size itself (the local renderer draws its scenes at the
        // target resolution): the video is the rendition, with no upscale.
        const stored = await this.outputs.storeVideo(task, file, video, { final: hdFileName(task.spec) });
        return { ...this.succeed(task, { fallback, resultUrl: null }, stored), attempt: done, afterCommit: release };
      }
      // An upsample follows, most likely here (the engine holds the task): the video stays on this machine.
      const stored = await this.outputs.storeVideo(task, file, video, { keep: task.spec.upsample });
      if (task.spec.upsample) {
        return { taskId: task.id, patch: { state: 'generated', fallback, resultUrl: null, progress: 90, nextRunAt: Date.now(), updatedAt: Date.now() }, attempt: done, artifacts: stored, afterCommit: release };
      }
      return { ...this.succeed(task, { fallback, resultUrl: null }, stored), attempt: done, afterCommit: release };
    } catch (e) {
      // The video could not be stored: download it again once the storage answers (with a fresh
      // poll, for a fresh URL where result URLs expire).
      if (e instanceof ObjectStoreError) return this.waitForStorage(task, now, e, { resultUrl: null });
      // The job succeeded but its video could not be fetched or is not a video: poll again later
      // and fetch again.
      return this.retry(task, now, this.clean(e), { step: 'poll', extra: { resultUrl: null }, provider: provider.name, upstreamId });
    }
  }

  /** A provider as this step uses it: traced when the step records its exchanges. */
  private providerOf(label: string): Provider | undefined {
    const p = this.ctx.router.provider(label);
    return p && this.trace && p.traced ? p.traced(this.trace) : p;
  }

  /** An error as an Error whose message holds no upstream secret. */
  private clean(e: unknown): Error {
    const err = coerceError(e);
    err.message = this.ctx.router.redact(err.message);
    return err;
  }

  /**
   * The step of a canceled task: stops its work where it runs (the provider's cancel: the local
   * renderer kills its ffmpeg), records what that found (`cancelOutcome`), and owes the
   * callbacks of its end. A cancel that fails in a retryable way is tried again after
   * `error_sleep`, up to the task's retries. A task its client deleted meanwhile is deleted
   * once this is committed.
   */
  private async stopWork(task: Task, now: number): Promise<StepResult> {
    if (task.cancelOutcome !== 'pending') return { taskId: task.id, patch: { nextRunAt: null }, ofCanceled: true };
    const upstreamId = task.upstreamId;
    const provider = upstreamId ? this.providerOf(task.provider) : undefined;
    let outcome: CancelOutcome;
    let error: string | null = null;
    if (!upstreamId) outcome = 'not_submitted';
    else if (task.failureStage === 'upsample') outcome = 'upstream_finished';
    else if (!provider?.cancel) outcome = 'upstream_uncancelable';
    else {
      try {
        await provider.cancel(upstreamId);
        outcome = 'upstream_canceled';
      } catch (e) {
        const err = this.clean(e) as Partial<ProviderError> & Error;
        if (err.retryable !== false && task.retryCount < task.maxRetries) {
          this.ctx.log.warn({ taskId: task.id, provider: task.provider, upstreamId, err: err.message }, 'upstream cancel failed; will try again');
          return this.retryStop(task, now, err);
        }
        outcome = 'upstream_cancel_failed';
        error = err.message;
      }
    }
    const stopped = { ...task, cancelOutcome: outcome, updatedAt: now } satisfies Task;
    return {
      taskId: task.id,
      ofCanceled: true,
      // A job the cancel found only in this engine's memory (see `Engine.orphans`) is recorded too.
      patch: { cancelOutcome: outcome, nextRunAt: null, updatedAt: now, ...(upstreamId ? { upstreamId, provider: task.provider } : {}) },
      attempt: attempt(task, now, Date.now(), { step: 'cancel', provider: task.provider, upstreamId, outcome: 'canceled', error: error ?? outcome }),
      deliveries: this.ctx.notify(stopped),
      afterCommit: () => void this.deleteIfAsked(task),
    };
  }

  /**
   * A canceled task's step threw (a bug or an unexpected I/O error): tried again after
   * `error_sleep`, up to the task's retries, then given up as `upstream_cancel_failed`.
   */
  retryStop(task: Task, now: number, err: Error): StepResult {
    if (task.retryCount >= task.maxRetries) {
      return { taskId: task.id, ofCanceled: true, patch: { cancelOutcome: 'upstream_cancel_failed', nextRunAt: null, updatedAt: now }, attempt: attempt(task, now, Date.now(), { step: 'cancel', provider: task.provider, upstreamId: task.upstreamId, outcome: 'failed', error: err.message }) };
    }
    return { taskId: task.id, ofCanceled: true, patch: { retryCount: task.retryCount + 1, nextRunAt: now + task.errorSleepMs, updatedAt: now }, attempt: attempt(task, now, Date.now(), { step: 'cancel', provider: task.provider, upstreamId: task.upstreamId, outcome: 'retry', error: err.message }) };
  }

  /** Deletes a canceled task whose client deleted it (OpenAI `DELETE` of a video being made). */
  private async deleteIfAsked(task: Task): Promise<void> {
    try {
      // Read again: the delete may have been asked while this step ran.
      const now = await this.ctx.store.getTask(task.tenantId, task.id);
      if (!now?.deleteRequested) return;
      if (await this.ctx.store.deleteTask(task.tenantId, task.id)) await this.ctx.files.remove(now);
    } catch (e) {
      this.ctx.log.warn({ taskId: task.id, err: coerceError(e).message }, 'could not delete a canceled task');
    }
  }

  /** Tells a provider to stop a job the task no longer waits for; never fails the step. */
  private abandon(label: string, upstreamId: string): void {
    const provider = this.ctx.router.provider(label);
    provider?.cancel?.(upstreamId).catch((e: unknown) => this.ctx.log.warn({ provider: label, upstreamId, err: coerceError(e).message }, 'upstream cancel failed'));
  }

  private async upsample(task: Task, now: number): Promise<StepResult> {
    try {
      const hd = await this.outputs.makeHd(task);
      return this.succeed(task, {}, [hd]);
    } catch (e) {
      if (e instanceof ObjectStoreError) return this.waitForStorage(task, now, e);
      return this.retry(task, now, coerceError(e), { step: 'upsample' });
    }
  }

  /**
   * Makes the 1080p rendition asked for after success (kie get-1080p-video). One that fails, the
   * storage's failures included, is `failed`: a rendition has no deadline to bound a wait, and
   * the client may ask again.
   */
  private async renderHd(task: Task, now: number): Promise<StepResult> {
    try {
      const { frame: _frame, ...spec } = task.spec;
      const hd = await this.outputs.makeHd({ ...task, spec: { ...spec, resolution: '1080p' } }, 'video_1080p');
      return { taskId: task.id, patch: { hdState: 'ready', nextRunAt: null, updatedAt: now }, artifacts: [hd] };
    } catch (e) {
      const err = coerceError(e);
      return {
        taskId: task.id,
        patch: { hdState: 'failed', nextRunAt: null, updatedAt: now, lastError: `1080p rendition failed: ${err.message}`, lastErrorKind: 'internal' },
        attempt: attempt(task, now, Date.now(), { step: 'upsample', provider: 'local', upstreamId: null, outcome: 'failed', error: err.message }),
      };
    }
  }

  /**
   * Makes the 4k rendition asked for after success (kie get-4k-video) and its thumbnail, and owes
   * the callback of that request either way. A task whose lifecycle made 4k already has it.
   */
  private async renderUhd(task: Task, now: number): Promise<StepResult> {
    let patch: TaskPatch;
    const artifacts: Artifact[] = [];
    let failure: string | null = null;
    try {
      const { frame: _frame, ...spec } = task.spec;
      const uhdTask = { ...task, spec: { ...spec, resolution: '4k' as const } };
      // Kept on this machine: the thumbnail is made from it next.
      if (!(task.spec.upsample && task.spec.resolution === '4k' && !task.spec.frame)) artifacts.push(await this.outputs.makeHd(uhdTask, 'video_4k', { keep: true }));
      artifacts.push(await this.outputs.uhdThumbnail(task));
      patch = { uhdState: 'ready', nextRunAt: null, updatedAt: now };
    } catch (e) {
      failure = coerceError(e).message;
      patch = { uhdState: 'failed', nextRunAt: null, updatedAt: now, lastError: `4k rendition failed: ${failure}`, lastErrorKind: 'internal' };
    }
    const ended = { ...task, ...patch } as Task;
    return {
      taskId: task.id,
      patch,
      artifacts,
      deliveries: this.ctx.notify(ended, 'uhd'),
      ...(failure ? { attempt: attempt(task, now, Date.now(), { step: 'upsample', provider: 'local', upstreamId: null, outcome: 'failed', error: failure }) } : {}),
    };
  }

  /** The policy's view of this step: pure decisions (`engine/policy.ts`) over the task's plan. */
  private policy(plan?: Route[]): PolicyContext {
    return {
      notify: (t) => this.ctx.notify(t),
      next: (from) => (plan ? this.ctx.router.next(plan, from) : undefined),
      failoverOnSafety: this.ctx.router.failoverOnSafety,
      endedAt: Date.now(),
    };
  }

  /** A provider's error, decided by the policy; a move to another route is logged. */
  private providerFailure(task: Task, now: number, e: unknown, plan: Route[], o: ProviderErrorOptions): StepResult {
    const err = this.clean(e) as ProviderError;
    const decided = onProviderError(this.policy(plan), task, now, err, o);
    const { moved, ...commit } = decided;
    if (moved) this.ctx.log.warn({ taskId: task.id, from: moved.from, to: moved.to, err: err.message }, 'failing over');
    else if (commit.patch.state !== 'failed') this.ctx.log.warn({ taskId: task.id, step: o.step, err: err.message, retry: task.retryCount + 1 }, 'step failed; will retry');
    return commit;
  }

  /** Tries the step again after `error_sleep`, or fails the task when the retries are used up. */
  retry(task: Task, now: number, err: Error, o: RetryOptions): StepResult {
    const decided = retryOrFail(this.policy(), task, now, err, o);
    if (decided.patch.state !== 'failed') this.ctx.log.warn({ taskId: task.id, step: o.step, err: err.message, retry: task.retryCount + 1 }, 'step failed; will retry');
    return decided;
  }

  /** The result storage failed: the step is tried again after `error_sleep`, not counted as a retry. */
  private waitForStorage(task: Task, now: number, err: Error, extra?: TaskPatch, artifacts?: Artifact[]): StepResult {
    this.ctx.log.warn({ taskId: task.id, state: task.state, err: err.message }, 'result storage failed; the step waits for it');
    const decided = waitForStorage(task, now, err, extra);
    return artifacts?.length ? { ...decided, artifacts } : decided;
  }

  private fail(task: Task, now: number, o: FailOptions): StepResult {
    return fail(this.policy(), task, now, o);
  }

  private succeed(task: Task, extra: TaskPatch, artifacts: Artifact[]): StepResult {
    return succeed(this.policy(), task, Date.now(), extra, artifacts);
  }
}

/** Whether a commit leaves the task with nothing to do: no next run, no rendition pending. */
function nothingDue(task: Task, patch: TaskPatch): boolean {
  return patch.nextRunAt === null && (patch.hdState ?? task.hdState) !== 'pending' && (patch.uhdState ?? task.uhdState) !== 'pending';
}

/** A task that now waits on this upstream job of the route (just submitted, or taken back), from `now`. */
function onJob(route: Route, upstreamId: string, now: number, o: { progress: number; nextRunAt: number }): TaskPatch {
  return { state: 'generating', upstreamId, provider: route.provider.label, routeIndex: route.index, submittedAt: now, resultUrl: null, progress: o.progress, nextRunAt: o.nextRunAt, updatedAt: now };
}

/** The route a job ran on, when its provider is no longer configured. */
function goneRoute(task: Task): FailedRoute {
  return { index: task.routeIndex, provider: { label: task.provider, rateLimitBudgetMs: 0 } };
}
