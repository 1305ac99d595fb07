/**
 * The shapes of Reelay's own API (`/reelay/v1`) as they come over the wire: answers keep the
 * server's snake_case field names; the parameters a caller passes are camelCase.
 */

/**
 * A task's state. It moves `queued` → `fetching` (input images) → `generating` → `generated` →
 * `upsampling` (above 720p) → `succeeded`, or ends `failed` or `canceled`; `expired` once its
 * files are gone.
 */
export type TaskState = 'queued' | 'fetching' | 'generating' | 'generated' | 'upsampling' | 'succeeded' | 'failed' | 'canceled' | 'expired';

/** The states a task never leaves. */
export const TERMINAL_STATES: readonly TaskState[] = Object.freeze(['succeeded', 'failed', 'canceled', 'expired'] as const);

/** True when `state` is one a task never leaves. */
export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** Why a task failed: `content_policy`, `image_fetch`, `timeout`, `upstream`, `internal`, `canceled`. */
export type ErrorKind = 'content_policy' | 'image_fetch' | 'timeout' | 'upstream' | 'internal' | 'canceled';

/** What a cancel found where the task's work ran (`pending` until the engine has acted on it). */
export type CancelOutcome = 'pending' | 'not_submitted' | 'upstream_canceled' | 'upstream_uncancelable' | 'upstream_finished' | 'upstream_cancel_failed';

/** A task as `GET /reelay/v1/tasks/{id}` gives it, whichever door made it. Times are ISO 8601. */
export interface Task {
  id: string;
  object: 'task';
  /** The door the task was created through (`kie`, `kkiai`, `openai`, `gemini`, `reelay`). */
  dialect: string;
  model: string;
  state: TaskState;
  /** 0–100. */
  progress: number;
  prompt: string;
  /** How many input images it was given. */
  images: number;
  seconds: number;
  resolution: string;
  aspect_ratio: string;
  provider: string;
  /** The video came from a route other than the first (a failover). */
  fallback: boolean;
  attempts: number;
  retries: number;
  /** Set once it failed or was canceled: why (`kind`), where (`stage`: `input`, `generation`, `upsample`). */
  error: { kind: ErrorKind | null; stage: 'input' | 'generation' | 'upsample' | null; message: string } | null;
  /** The last error seen, kept after a later success. */
  last_error: string | null;
  cancel_outcome: CancelOutcome | null;
  /** Credits reserved at create on a metered key; null when it costs nothing. */
  credits_reserved: number | null;
  /** Absolute URLs of its files; `video` is the final MP4. */
  outputs: { video: string | null; video_720p: string | null; video_1080p: string | null; video_4k: string | null };
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

/** What `create` takes; mapped to the wire's snake_case. */
export interface CreateParams {
  /** Any public model name of the server's routing file (the local renderer makes any other). */
  model: string;
  prompt: string;
  /** Up to 3 image URLs or `data:` URLs. */
  images?: string[];
  /** `frames` (first and last frame; the default for up to 2 images) or `reference`. */
  imageMode?: 'frames' | 'reference';
  /** Default `16:9`. */
  aspectRatio?: '16:9' | '9:16' | 'auto';
  /** Default 8. */
  seconds?: 4 | 6 | 8;
  /** Default `720p`; above it, the server upsamples. */
  resolution?: '720p' | '1080p' | '4k';
  seed?: number;
  enhancePrompt?: boolean;
  watermark?: string;
  /** Called back once the task ends, signed (see `Reelay.webhooks.verify`). */
  webhookUrl?: string;
}

/** Which file of a task: `video` (the final one), or a rendition by its height. */
export type Variant = 'video' | '720p' | '1080p' | '4k';

/** The filters and page of `list`. */
export interface ListParams {
  /** One state, or any of several. */
  state?: TaskState | TaskState[];
  model?: string;
  provider?: string;
  /** The door that made it: `kie`, `kkiai`, `openai`, `gemini`, `reelay`. */
  dialect?: string;
  createdFrom?: Date | string;
  createdTo?: Date | string;
  /** Default `desc` (newest first). */
  order?: 'asc' | 'desc';
  /** 1–100 a page (default 20). */
  limit?: number;
  /** The id of the task the page starts after (a page's `nextCursor`). */
  after?: string;
}

/** One page of tasks. */
export interface Page<T> {
  data: T[];
  /** The `after` of the next page; null on the last. */
  nextCursor: string | null;
  hasMore: boolean;
}

/** One entry of a task's audit trail (`GET /tasks/{id}/events`), oldest first. */
export interface TaskEvent {
  at: string;
  kind: 'created' | 'attempt' | 'state' | 'delivery' | 'upstream' | 'ledger';
  actor: 'api' | 'engine' | 'deliverer' | 'sweeper';
  from: string | null;
  to: string | null;
  detail: Record<string, unknown> | null;
}

/** One of a task's callbacks (`GET /tasks/{id}/deliveries`). */
export interface Delivery {
  id: number;
  /** The `webhook-id` it is sent with, the same on every try. */
  webhook_id: string;
  url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
}

/** The key's credits (`GET /balance`): `metered` false and `credits` null until its first top-up. */
export interface Balance {
  object: 'balance';
  metered: boolean;
  credits: number | null;
  updated_at: string | null;
}

/** One entry of the key's credits ledger; the amounts add up to the balance. */
export interface LedgerEntry {
  id: number;
  object: 'ledger_entry';
  kind: 'topup' | 'reserve' | 'settle' | 'refund';
  /** What a task's entry is for: `video`, `extend`, `hd:1`, `uhd:1`, …; null for a top-up. */
  item: string | null;
  amount: number;
  charged: number | null;
  task_id: string | null;
  note: string | null;
  at: string;
}

/** One page of the ledger, newest first. */
export interface LedgerPage {
  data: LedgerEntry[];
  hasMore: boolean;
  /** The `before` of the next page; null on the last. */
  nextBefore: string | null;
}

/** The body of a native callback (`webhook_url`, or a webhook endpoint of the key). */
export interface WebhookEvent {
  type: 'video.completed' | 'video.failed' | 'video.canceled';
  timestamp: string;
  data: Task;
}
