import type { CancelOutcome, ErrorKind, FailureStage, TaskState } from './states.js';

/**
 * Glossary
 * - **tenant**: the owner of an API key; a key sees only its tenant's tasks.
 * - **task**: one request to make a video, whatever dialect created it. One record, one state machine.
 * - **dialect**: a public wire format (kie, kkiai). A dialect maps requests to a `TaskSpec` and
 *   renders any task of the tenant in its own vocabulary.
 * - **provider**: what makes the video: the local ffmpeg renderer, or an upstream API (kie.ai, a
 *   kkiai-style reseller, Google's Veo, …). Each configured provider has a label (`kie-main`).
 * - **route**: one way to serve a public model: a provider and the upstream model id. A model has
 *   an ordered list of routes; a task moves to the next one when its provider fails (failover),
 *   keeping its id. The local renderer is the only route when nothing is configured.
 * - **upstream job**: what a provider accepted for one submission, named by its `upstreamId`.
 * - **attempt**: one try of a step of a task (fetch the inputs, submit, poll, upsample), logged with
 *   the provider, the upstream id and the error; `n` numbers them from 1 per task.
 * - **artifact**: a file Reelay stores for a task: an input image, the video, the upsampled video.
 * - **delivery**: one callback to a client URL, with its own retries.
 */

export type AspectRatio = '16:9' | '9:16';
/** `auto`: 16:9 or 9:16, whichever the first input image is closer to (16:9 without images). */
export type RequestedAspect = AspectRatio | 'auto';
export type Resolution = '720p' | '1080p' | '4k';
/** A rendition asked for after success: not asked, being made, stored, or failed to be made. */
export type RenditionState = 'none' | 'pending' | 'ready' | 'failed';

/** What to generate: the dialect-neutral request. */
export interface TaskSpec {
  prompt: string;
  /** Input image URLs (http(s) or data:), at most 3. */
  images: string[];
  /** How images are used: none, first (and last) frame, or reference images. */
  mode: 'text' | 'frames' | 'reference';
  aspectRatio: RequestedAspect;
  /** The resolution of the final video; anything above 720p is made by the upsample step. */
  resolution: Resolution;
  /** Whether an upsampled rendition is part of the lifecycle (kkiai `enable_upsample`, kie `resolution`). */
  upsample: boolean;
  seed: number;
  durationSeconds: number;
  enhancePrompt: boolean;
  watermark?: string;
  /**
   * A video this task continues (extend). The task's video is that video followed by a new part of
   * `durationSeconds`, made from its last frame with this prompt. One of:
   * - `task:<id>`: the final video of a succeeded task of the same tenant;
   * - `data:video/mp4;base64,…`, as a dialect hands it over; `TaskService.create` stores the bytes
   *   as the task's `source.mp4` and keeps `upload` here instead, so no task record holds a video;
   * - `source:<id>`: the video that task `<id>` of the same tenant continued (a remix of an
   *   extension extends the same video again).
   */
  video?: string;
  /**
   * The upstream job that made the video a `task:<id>` extension continues (set at create from
   * the source task), for a provider that can extend only the videos it made itself (kie's
   * extend takes its own task id).
   */
  videoJob?: { provider: string; upstreamId: string };
  /**
   * An exact frame size other than the standard 16:9 and 9:16 ones (OpenAI `1024x1792`). With it,
   * `upsample` is set and the final rendition has this size.
   */
  frame?: { width: number; height: number };
}

export interface ImageStatus {
  url: string;
  status: 'pending' | 'completed' | 'failed';
  mediaId: string;
}

export interface Task {
  id: string;
  tenantId: string;
  /** The dialect the task was created through (`Dialect.name`, `dialects/index.ts`); it decides the callback body. */
  dialect: string;
  /** The public model name as the client sent it (kkiai `veo3.1-fast`, kie `veo3_fast`). */
  model: string;
  spec: TaskSpec;
  /** The create body as received, echoed by kkiai `detail.req` and kie `paramJson`. */
  request: Record<string, unknown>;
  state: TaskState;
  enhancedPrompt: string;
  images: ImageStatus[];
  provider: string;
  upstreamId: string | null;
  attemptCount: number;
  retryCount: number;
  maxRetries: number;
  errorSleepMs: number;
  /** The last error seen, kept after a later success (as the kkiai seed shows). */
  lastError: string | null;
  lastErrorKind: ErrorKind | null;
  failureStage: FailureStage | null;
  callbackUrl: string | null;
  /** Random path segment of the result URLs: unguessable, stable for the life of the task. */
  fileToken: string;
  /** The 1080p rendition asked for after success (kie get-1080p-video). */
  hdState: RenditionState;
  /** The 4k rendition asked for after success (kie get-4k-video). */
  uhdState: RenditionState;
  /** Where to send the callback of the 4k rendition, when its request named one. */
  uhdCallbackUrl: string | null;
  progress: number;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  deadlineAt: number;
  nextRunAt: number | null;
  /** Which of the task's routes (see `src/routing/`) the current or last submission went to. */
  routeIndex: number;
  /** When the current upstream job was accepted; null before a submission. */
  submittedAt: number | null;
  /** The video came from a route other than the first (a failover): kie `fallbackFlag`. */
  fallback: boolean;
  /**
   * The upstream job finished and its video waits in the download lane: where to fetch it (empty
   * for a provider that copies it without a URL). Null otherwise.
   */
  resultUrl: string | null;
  /** Set when the task was canceled: what the cancel found where the work ran (see `CancelOutcome`). */
  cancelOutcome: CancelOutcome | null;
  /**
   * The client deleted the task while it ran (OpenAI `DELETE`): it was canceled, and the step
   * that stops its work deletes it afterwards. Doors that delete hide it meanwhile.
   */
  deleteRequested: boolean;
  /**
   * What the task reserved of its tenant's credits at create (see `core/credits.ts`), closed once
   * at its end; null for a task that costs nothing (no price, or a tenant without an account).
   */
  charge: TaskCharge | null;
}

/** What a metered task reserved at create (`Task.charge`): the credits held, and the rate it was priced at. */
export interface TaskCharge {
  credits: number;
  perSecond: number;
  /** `video` (a new video) or `extend` (an extension of one): the item of the price. */
  item: 'video' | 'extend';
}

export interface Artifact {
  taskId: string;
  /** `video`, `video_hd` (1080p/4k) or `input_<n>`. */
  kind: string;
  /**
   * Where the file is: its object key in the result storage (`ab/<fileToken>-video.mp4`, see
   * `results/files.ts`). Rows written before the object store hold an absolute path in the results
   * folder; `ResultFiles.keyOf` reads both.
   */
  path: string;
  contentType: string;
  bytes: number;
  width: number | null;
  height: number | null;
  durationMs: number | null;
  codec: string | null;
  createdAt: number;
}

export interface Attempt {
  taskId: string;
  n: number;
  provider: string;
  upstreamId: string | null;
  step: 'fetch' | 'submit' | 'poll' | 'upsample' | 'deadline' | 'engine' | 'cancel';
  startedAt: number;
  endedAt: number | null;
  /**
   * `submitted` (the provider accepted it), `succeeded`, `failed` (ended the task), `retry`,
   * `abandoned` (a running job was given up: it stalled, or its provider left; counted as a retry)
   * `resumed` (an abandoned job was taken back instead of submitting again), or `interrupted`
   * (the engine stopped or lost its lease during a submit to `provider`: the upstream may hold a
   * job without a record; written by the next claim of the task, on a store whose submission gate
   * marks submits in progress: PostgreSQL), or `canceled` (the task was canceled: `error` says
   * what its provider's cancel did).
   */
  outcome: 'submitted' | 'succeeded' | 'failed' | 'retry' | 'abandoned' | 'resumed' | 'interrupted' | 'canceled';
  error: string | null;
}

/**
 * One entry of a task's audit trail (`task_events`), append-only and kept as long as the task:
 * - `state`: a transition, `from` → `to`, with the `reason` in `detail`;
 * - `delivery`: one try of a callback (`detail`: the delivery, the try, the answer's status or
 *   the error, and what became of the delivery);
 * - `upstream`: one HTTP exchange with a provider during a step (`detail`: method, URL without
 *   credentials, status, milliseconds, and both bodies redacted and cut short; see
 *   `providers/exchanges.ts`).
 * - `ledger`: an entry of the tenant's credits ledger for the task (`detail`: the entry's kind,
 *   `reserve`, `settle` or `refund`, its amount, what was charged, and why).
 * Attempts (each try of a step, with its provider and upstream id) are their own log
 * (`Attempt`); a task's events are read with them, in time order.
 */
export interface TaskEvent {
  /** Increasing across all tasks: the order of a task's events. */
  id: number;
  taskId: string;
  at: number;
  kind: 'state' | 'delivery' | 'upstream' | 'ledger';
  /** Who did it: a request (`api`), the engine, the deliverer, the retention sweeper. */
  actor: 'api' | 'engine' | 'deliverer' | 'sweeper';
  from: TaskState | null;
  to: TaskState | null;
  detail: Record<string, unknown> | null;
}
