import type { ErrorKind, FailureStage, TaskState } from '../core/states.js';
import type { Artifact, Attempt, Task } from '../core/task.js';
import type { ProviderConfig } from '../providers/config.js';
import { type ProviderError, RateLimitedError, SafetyRejectedError } from '../providers/port.js';
import type { Route } from '../routing/router.js';
import type { NewDelivery, StepCommit, TaskPatch } from '../store/port.js';

/**
 * The engine's decisions, as pure functions of the task, the error and the time: what to commit
 * when a step fails, when to poll next, when a job counts as stalled, how long to keep a lease.
 * Nothing here reads a clock, a file or the store; `engine/steps.ts` does the I/O and calls these.
 */
export interface PolicyContext {
  /** The callbacks owed when a task ends (pure: bodies built from the task). */
  notify(task: Task): NewDelivery[];
  /** The next usable route of the task's plan at or after position `from` (wrapping around). */
  next(from: number): { route: Route; wrapped: boolean } | undefined;
  /** Whether a safety rejection moves to the next route instead of failing the task. */
  failoverOnSafety: boolean;
  /** When the step that decides ended (an attempt's `endedAt`). */
  endedAt: number;
}

/** Where a task that fails in a state failed. */
export const STAGE_OF: Record<TaskState, FailureStage> = {
  queued: 'input',
  fetching: 'input',
  generating: 'generation',
  generated: 'upsample',
  upsampling: 'upsample',
  succeeded: 'upsample',
  failed: 'generation',
  canceled: 'generation',
  expired: 'generation',
};

export interface AttemptOf {
  step: Attempt['step'];
  provider: string;
  upstreamId: string | null;
  outcome: Attempt['outcome'];
  error: string | null;
}

/** The attempt a step logs (its number is set by the store). */
export function attempt(task: Task, now: number, endedAt: number, a: AttemptOf): Attempt {
  return { taskId: task.id, n: 0, step: a.step, provider: a.provider, upstreamId: a.upstreamId, startedAt: now, endedAt, outcome: a.outcome, error: a.error };
}

export interface FailOptions {
  kind: ErrorKind;
  stage: FailureStage;
  step: Attempt['step'];
  message: string;
  /** Other fields the commit changes. */
  extra?: TaskPatch;
  /** The provider and upstream job the attempt names (the task's own by default). */
  provider?: string;
  upstreamId?: string | null;
}

/** The task fails: terminal, with its callbacks owed. */
export function fail(ctx: PolicyContext, task: Task, now: number, o: FailOptions): StepCommit {
  const patch: TaskPatch = {
    ...o.extra,
    state: 'failed',
    failureStage: o.stage,
    lastError: o.message,
    lastErrorKind: o.kind,
    completedAt: now,
    nextRunAt: null,
    updatedAt: now,
  };
  const ended = { ...task, ...patch } as Task;
  return {
    taskId: task.id,
    patch,
    attempt: attempt(task, now, ctx.endedAt, { step: o.step, provider: o.provider ?? task.provider, upstreamId: o.upstreamId === undefined ? task.upstreamId : o.upstreamId, outcome: 'failed', error: o.message }),
    deliveries: ctx.notify(ended),
  };
}

export interface RetryOptions {
  step: Attempt['step'];
  extra?: TaskPatch;
  artifacts?: Artifact[];
  /** The wait before the next try (the task's `error_sleep` by default). */
  waitMs?: number;
  provider?: string;
  upstreamId?: string | null;
  /** The error's kind (by default from the step: inputs, internal steps, else upstream). */
  kind?: ErrorKind;
  /** What the attempt says happened (`retry`; `abandoned` when a running job was given up). */
  outcome?: 'retry' | 'abandoned';
}

/** Tries the step again after a wait, or fails the task when its retries are used up. */
export function retryOrFail(ctx: PolicyContext, task: Task, now: number, err: Error, o: RetryOptions): StepCommit {
  const kind: ErrorKind = o.kind ?? (o.step === 'fetch' ? 'image_fetch' : o.step === 'upsample' || o.step === 'engine' ? 'internal' : 'upstream');
  const provider = o.provider ?? task.provider;
  const upstreamId = o.upstreamId === undefined ? task.upstreamId : o.upstreamId;
  if (task.retryCount >= task.maxRetries) {
    const stage = o.step === 'fetch' ? 'input' : o.step === 'upsample' ? 'upsample' : STAGE_OF[task.state];
    const message = o.step === 'fetch' ? `Failed to fetch the image: ${err.message}` : err.message;
    const failed = fail(ctx, task, now, { kind, stage, step: o.step, message, extra: o.extra ?? {}, provider, upstreamId });
    return { ...failed, artifacts: o.artifacts ?? [] };
  }
  return {
    taskId: task.id,
    patch: {
      ...o.extra,
      retryCount: task.retryCount + 1,
      lastError: err.message,
      lastErrorKind: kind,
      nextRunAt: now + (o.waitMs ?? task.errorSleepMs),
      updatedAt: now,
    },
    attempt: attempt(task, now, ctx.endedAt, { step: o.step, provider, upstreamId, outcome: o.outcome ?? 'retry', error: err.message }),
    artifacts: o.artifacts ?? [],
  };
}

/**
 * The result storage failed (unreachable, timing out, refusing a write): not the task's fault, so
 * the step is tried again after `error_sleep` without counting a retry, like a provider that is
 * full; the task's deadline still bounds the wait. `lastError` says why. No attempt is logged:
 * an outage would log one per task and try.
 */
export function waitForStorage(task: Task, now: number, err: Error, extra: TaskPatch = {}): StepCommit {
  return {
    taskId: task.id,
    patch: { ...extra, lastError: `result storage unavailable: ${err.message}`, lastErrorKind: 'internal', nextRunAt: now + task.errorSleepMs, updatedAt: now },
  };
}

/** The route a failed submission or job was on (only its place and its provider's limits matter). */
export interface FailedRoute {
  index: number;
  provider: Pick<ProviderConfig, 'label' | 'rateLimitBudgetMs'>;
}

export interface ProviderErrorOptions {
  step: Attempt['step'];
  route: FailedRoute;
  upstreamId: string | null;
  extra: TaskPatch;
  /** `abandoned`: the job was running and is given up (stalled, or its provider left). */
  outcome?: 'retry' | 'abandoned';
}

/** What a decision moved the task to, for the log. */
export interface Move {
  from: string;
  to: string;
}

/**
 * What a provider's error means for the task:
 * - safety rejection: the task fails (or, when configured, moves to the next route);
 * - permanent: the task fails;
 * - rate limited before acceptance: wait as asked on the same route while the wait is within
 *   the provider's budget, else move on;
 * - anything else retryable: move to the next usable route at once (failover); with one route,
 *   or after a full round over them, wait `error_sleep` first.
 * Every move counts as a retry; the task fails when the retries are used up.
 */
export function onProviderError(ctx: PolicyContext, task: Task, now: number, err: ProviderError, o: ProviderErrorOptions): StepCommit & { moved?: Move } {
  const label = o.route.provider.label;
  const safety = err instanceof SafetyRejectedError;
  const base = { provider: label, upstreamId: o.upstreamId };
  if (safety && !ctx.failoverOnSafety) {
    return fail(ctx, task, now, { kind: 'content_policy', stage: 'generation', step: o.step, message: err.message, extra: o.extra, ...base });
  }
  if (!safety && err.retryable === false) {
    return fail(ctx, task, now, { kind: 'upstream', stage: 'generation', step: o.step, message: err.message, extra: o.extra, ...base });
  }
  const outcome = o.outcome ?? 'retry';
  if (err instanceof RateLimitedError && o.step === 'submit' && err.retryAfterMs <= o.route.provider.rateLimitBudgetMs) {
    return retryOrFail(ctx, task, now, err, { step: o.step, extra: { ...o.extra, routeIndex: o.route.index }, waitMs: err.retryAfterMs, ...base, outcome });
  }
  const next = ctx.next(o.route.index + 1);
  if (!next) return retryOrFail(ctx, task, now, err, { step: o.step, extra: o.extra, ...base, outcome });
  const moved = next.route.index !== o.route.index;
  // A new route is tried at once; the same route again (or a new round) after error_sleep.
  const wait = moved && !next.wrapped ? 0 : undefined;
  const decided = retryOrFail(ctx, task, now, err, {
    step: o.step,
    extra: { ...o.extra, routeIndex: next.route.index },
    ...(wait !== undefined ? { waitMs: wait } : {}),
    ...base,
    outcome,
    ...(safety ? { kind: 'content_policy' as const } : {}),
  });
  return moved && decided.patch.state !== 'failed' ? { ...decided, moved: { from: label, to: next.route.provider.label } } : decided;
}

/** The task succeeded: terminal, with its callbacks owed. */
export function succeed(ctx: PolicyContext, task: Task, now: number, extra: TaskPatch, artifacts: Artifact[]): StepCommit {
  const patch: TaskPatch = { ...extra, state: 'succeeded', progress: 100, completedAt: now, nextRunAt: null, updatedAt: now };
  const ended = { ...task, ...patch } as Task;
  return { taskId: task.id, patch, artifacts, deliveries: ctx.notify(ended) };
}

/**
 * When to poll a running job again: as the provider asked (`Retry-After`, a hint), else not before
 * the provider's typical duration, then at a fifth of the time it has been running, between
 * `minMs` and the provider's ceiling. Long jobs are polled rarely, short ones promptly. The
 * computed waits are spread by ±10 % (`u` in [0, 1)), so jobs submitted together are not all
 * polled in the same instant.
 */
export function pollDelay(config: ProviderConfig, elapsedMs: number, minMs: number, hintMs?: number, u = Math.random()): number {
  if (hintMs !== undefined) return Math.min(Math.max(hintMs, minMs), config.pollMaxMs);
  const spread = 0.9 + 0.2 * u;
  if (elapsedMs < config.typicalMs) return Math.max((config.typicalMs - elapsedMs) * spread, minMs);
  return Math.min(Math.max((elapsedMs / 5) * spread, minMs), config.pollMaxMs);
}

/** A job has run past its provider's stall time (`stallSeconds`) since it was accepted. */
export function stalled(config: ProviderConfig, task: Pick<Task, 'submittedAt'>, now: number): boolean {
  return now - (task.submittedAt ?? now) > config.stallMs;
}

/**
 * When to poll a running job next: after `pollDelay`, but never past its stall time. The poll that
 * decides whether a job stalled comes just after that time, so a job that finished within it is
 * found finished, not thrown away because the poll before said "running".
 */
export function nextPollAt(config: ProviderConfig, task: Pick<Task, 'submittedAt'>, now: number, minMs: number, hintMs?: number, u = Math.random()): number {
  const submittedAt = task.submittedAt ?? now;
  const at = now + pollDelay(config, now - submittedAt, minMs, hintMs, u);
  const stallAt = submittedAt + config.stallMs + 1;
  return stallAt > now ? Math.min(at, stallAt) : at;
}

/**
 * The attempt of a job this task gave up while it ran on this provider (stalled, or its provider
 * left) and never took back, newest first: an upstream that cannot cancel may still finish it.
 */
export function abandonedJob(attempts: readonly Attempt[], provider: string): string | undefined {
  for (let i = attempts.length - 1; i >= 0; i--) {
    const a = attempts[i]!;
    if (a.provider !== provider || a.upstreamId === null) continue;
    if (a.outcome === 'resumed' || a.outcome === 'submitted') return undefined;
    if (a.outcome === 'abandoned') return a.upstreamId;
  }
  return undefined;
}

export interface HoldInput {
  /** When the committed task is due next (`nextRunAt`), if at all. */
  due: number | null | undefined;
  state: TaskState;
  now: number;
  /** The lease the engine holds on the task. */
  leaseUntil: number;
  leaseMs: number;
  holdMs: number;
  /** The engine may keep one more task in memory (it runs, and holds fewer than its limit). */
  mayHold: boolean;
}

export type Hold = { keep: false } | { keep: true; leaseUntil: number; keepLease?: true; keepLeaseUntil?: number };

/**
 * Whether the engine keeps a task in memory after its commit (its next step is due within
 * `holdMs`), and the lease it keeps. The lease must outlast the next run's start by half a lease at
 * least (then the heartbeat takes over). A lease that already does is left alone; else it is set a
 * whole lease further, so the next few polls need not touch it: a changed `lease_until` costs an
 * index write.
 */
export function hold(h: HoldInput): Hold {
  if (!h.mayHold || typeof h.due !== 'number' || h.due > h.now + h.holdMs || h.state === 'succeeded' || h.state === 'failed' || h.state === 'canceled') return { keep: false };
  const needed = Math.max(h.due, h.now) + h.leaseMs / 2;
  if (h.leaseUntil >= needed) return { keep: true, leaseUntil: h.leaseUntil, keepLease: true };
  const until = needed + 1.5 * h.leaseMs;
  return { keep: true, leaseUntil: until, keepLeaseUntil: until };
}
