/**
 * The task state machine, written down once.
 *
 * States (see ARCHITECTURE.md for the glossary):
 * - `queued`      accepted and stored; nothing done yet.
 * - `fetching`    input images are being downloaded and checked.
 * - `generating`  submitted to a provider; the engine polls it at `next_run_at`.
 * - `generated`   the base video is stored; an upsample is still to be made.
 * - `upsampling`  the higher-resolution rendition is being made.
 * - `succeeded`   terminal: every requested rendition is stored.
 * - `failed`      terminal: `failure_stage` and `error_kind` say where and why.
 * - `canceled`    terminal: the client canceled it before it ended. The work is stopped where it
 *                 runs by one more step of the engine (`cancel_outcome` says what it found).
 * - `expired`     the retention sweeper removed the files; only a tombstone remains.
 *
 * Retries do not leave the state they happen in: a transient error keeps the state, bumps
 * `retry_count` and pushes `next_run_at` by `error_sleep`.
 */
export const STATES = [
  'queued',
  'fetching',
  'generating',
  'generated',
  'upsampling',
  'succeeded',
  'failed',
  'canceled',
  'expired',
] as const;

export type TaskState = (typeof STATES)[number];

/** Every allowed move. A state may also stay where it is (a retry, a poll that saw progress). */
export const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: ['fetching', 'generating', 'failed', 'canceled'],
  fetching: ['generating', 'failed', 'canceled'],
  generating: ['generated', 'succeeded', 'failed', 'canceled'],
  generated: ['upsampling', 'failed', 'canceled'],
  upsampling: ['succeeded', 'failed', 'canceled'],
  succeeded: ['expired'],
  failed: ['expired'],
  canceled: ['expired'],
  expired: [],
};

export const TERMINAL: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'canceled', 'expired']);

export function isTerminal(state: TaskState): boolean {
  return TERMINAL.has(state);
}

export function canTransition(from: TaskState, to: TaskState): boolean {
  return from === to ? !isTerminal(from) : TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: TaskState,
    readonly to: TaskState,
  ) {
    super(`illegal task transition ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function assertTransition(from: TaskState, to: TaskState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

/** Where a failed task stopped. Dialects derive their failure vocabulary from it. */
export type FailureStage = 'input' | 'generation' | 'upsample';

/**
 * Why a task failed (or why its last attempt failed).
 * - `content_policy`  the prompt or an image was rejected for safety.
 * - `image_fetch`     an input image could not be fetched or is not an acceptable image.
 * - `timeout`         the task passed its deadline.
 * - `upstream`        the provider failed to generate.
 * - `internal`        Reelay itself failed.
 * - `canceled`        the client canceled the task (its state is `canceled`, or `expired` after it).
 */
export type ErrorKind = 'content_policy' | 'image_fetch' | 'timeout' | 'upstream' | 'internal' | 'canceled';

/**
 * What a cancel found where the task's work ran, once the engine has acted on it:
 * - `pending`                 canceled; the engine has yet to stop the work (a step is due);
 * - `not_submitted`           no provider held a job of the task: nothing ran upstream;
 * - `upstream_canceled`       the provider was told to stop the job, and took the cancel;
 * - `upstream_uncancelable`   the provider offers no cancel (kie, kkiai-style): its job may run on;
 * - `upstream_finished`       the provider had already made the video (it was being stored or upscaled);
 * - `upstream_cancel_failed`  the provider's cancel kept failing; its job may run on.
 */
export type CancelOutcome = 'pending' | 'not_submitted' | 'upstream_canceled' | 'upstream_uncancelable' | 'upstream_finished' | 'upstream_cancel_failed';
export const CANCEL_OUTCOMES: readonly CancelOutcome[] = ['pending', 'not_submitted', 'upstream_canceled', 'upstream_uncancelable', 'upstream_finished', 'upstream_cancel_failed'];
