import type { Task } from '../core/task.js';

/**
 * The provider port: how the engine talks to whatever makes the video. Each provider lives in its
 * own folder under `src/providers/`. The engine never looks inside a provider; it reacts to the
 * typed outcomes and errors below.
 */
export interface Provider {
  readonly name: string;
  /**
   * Starts generating. Must be idempotent for the same `submissionId`: submitting again after a
   * crash returns the same upstream id and does not start a second generation.
   */
  submit(req: SubmitRequest): Promise<{ upstreamId: string }>;
  /** Where an upstream job is now. */
  poll(upstreamId: string): Promise<PollOutcome>;
  /** Copies the finished video to `destFile` (atomically: a partial file never appears there). */
  fetchResult(upstreamId: string, destFile: string): Promise<void>;
  /** Called once the result is stored and committed: the provider may drop its copy. */
  release?(upstreamId: string): void;
  /** Lets the provider say "this job has news" so the engine polls it now, not at the next tick. */
  onWake?(fn: (upstreamId: string) => void): void;
  close?(): Promise<void>;
}

export interface SubmitRequest {
  /** Stable across retries of the same submission: `<taskId>#<attempt>`. */
  submissionId: string;
  task: Task;
  /** The prompt to generate from (the enhanced one when enhancement was asked for). */
  prompt: string;
  /** Input images already fetched and checked by Reelay, as local files. */
  inputs: { path: string; contentType: string }[];
}

/**
 * - `running`: poll again after `pollAfterMs` (or the engine's default);
 * - `succeeded`: `fetchResult` can copy the video;
 * - `failed`: the upstream job ended without a video. A retryable error makes the engine submit
 *   again (a new attempt); any other ends the task.
 * A poll that *throws* means the poll itself failed (network, 5xx): the engine polls again later.
 */
export type PollOutcome =
  | { status: 'running'; progress?: number; pollAfterMs?: number }
  | { status: 'succeeded' }
  | { status: 'failed'; error: ProviderError };

/** Base of the typed provider errors: each says what the engine should do. */
export abstract class ProviderError extends Error {
  abstract readonly retryable: boolean;
}

/** Worth retrying after `error_sleep` (connection reset, 5xx, a crashed render). */
export class TransientError extends ProviderError {
  override name = 'TransientError';
  readonly retryable = true;
}

/** Will fail again the same way: fail the task now. */
export class PermanentError extends ProviderError {
  override name = 'PermanentError';
  readonly retryable = false;
}

/** The prompt or an image was rejected for safety: fail now with a content-policy error. */
export class SafetyRejectedError extends ProviderError {
  override name = 'SafetyRejectedError';
  readonly retryable = false;
}

/** The upstream asked us to slow down; retry after `retryAfterMs`. */
export class RateLimitedError extends ProviderError {
  override name = 'RateLimitedError';
  readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** Normalises anything thrown into an Error. */
export function coerceError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : JSON.stringify(e));
}
