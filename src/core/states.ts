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
  'expired',
] as const;

export type TaskState = (typeof STATES)[number];

/** Every allowed move. A state may also stay where it is (a retry, a poll that saw progress). */
export const TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: ['fetching', 'generating', 'failed'],
  fetching: ['generating', 'failed'],
  generating: ['generated', 'succeeded', 'failed'],
  generated: ['upsampling', 'failed'],
  upsampling: ['succeeded', 'failed'],
  succeeded: ['expired'],
  failed: ['expired'],
  expired: [],
};

export const TERMINAL: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'expired']);

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
 */
export type ErrorKind = 'content_policy' | 'image_fetch' | 'timeout' | 'upstream' | 'internal';
