import type { Task } from '../core/task.js';
import type { Mp4Scanner } from '../media/mp4.js';
import type { Exchange } from './exchanges.js';

/**
 * The provider port: how the engine talks to whatever makes the video. Each provider lives in its
 * own folder under `src/providers/`. The engine never looks inside a provider; it reacts to the
 * typed outcomes and errors below.
 */
export interface Provider {
  /** The provider's label in the routing configuration (`local`, `kie-main`, …). */
  readonly name: string;
  /**
   * Whether it can continue a video (extend, `TaskSpec.video`): any video (`true`), or only the
   * videos it made itself (`own`: the source's `spec.videoJob` names this provider). A task that
   * extends a video is routed only to providers that can; the others never see it.
   */
  readonly extends?: boolean | 'own';
  /**
   * Starts generating. Where the upstream allows it, idempotent for the same `submissionId`:
   * submitting again after a crash returns the same upstream id and does not start a second
   * generation (the local renderer does this; most remote APIs take no idempotency key).
   */
  submit(req: SubmitRequest): Promise<{ upstreamId: string }>;
  /** Where an upstream job is now. */
  poll(upstreamId: string): Promise<PollOutcome>;
  /**
   * Copies the finished video to `destFile`; a failed copy leaves no file there. `done` is the
   * poll outcome that said it succeeded (its result URLs, for remote providers). A provider that
   * streamed the bytes may say how many there were and what their MP4 boxes held, so the engine
   * need not read the file back.
   */
  fetchResult(upstreamId: string, destFile: string, done?: Succeeded): Promise<FetchedResult | void>;
  /** Asks the upstream to stop a job Reelay no longer wants (best effort; absent when unsupported). */
  cancel?(upstreamId: string): Promise<void>;
  /** Called once the result is stored and committed: the provider may drop its copy. */
  release?(upstreamId: string): void;
  /**
   * The provider as one step of one task uses it, noting each HTTP exchange it makes with its
   * upstream into `trace` (for the task's audit trail). Absent for a provider with no HTTP
   * upstream (the local renderer).
   */
  traced?(trace: Exchange[]): Provider;
  /** Lets the provider say "this job has news" so the engine polls it now, not at the next tick. */
  onWake?(fn: (upstreamId: string) => void): void;
  close?(): Promise<void>;
}

export interface SubmitRequest {
  /** Stable across retries of the same submission: `<taskId>#<attempt>`. */
  submissionId: string;
  task: Task;
  /** The upstream model id of the route (the public model name unless the route names another). */
  model: string;
  /** The prompt to generate from (the enhanced one when enhancement was asked for). */
  prompt: string;
  /** Input images already fetched and checked by Reelay. */
  inputs: SubmitInput[];
  /**
   * The video to continue, for a task that extends one (`task.spec.video`): its stored copy. The
   * result is that video followed by the new part, as one video.
   */
  source?: SubmitInput;
}

export interface SubmitInput {
  /** The stored copy. */
  path: string;
  contentType: string;
  /** The URL the client gave (http(s) or data:), for upstreams that fetch images themselves. */
  url: string;
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
  | Succeeded
  | { status: 'failed'; error: ProviderError };

/** What a download saw of the bytes it wrote. */
export interface FetchedResult {
  bytes: number;
  /** The MP4 boxes read on the way (`result()` is undefined when they are not an MP4 it reads). */
  scanned: Pick<Mp4Scanner, 'result'>;
}

/** A finished job; remote providers say where its video is. */
export interface Succeeded {
  status: 'succeeded';
  resultUrl?: string;
}

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
