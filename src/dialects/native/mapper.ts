import type { ApiError, ApiErrorKind } from '../../app/errors.js';
import { isTerminal } from '../../core/states.js';
import type { Attempt, Task, TaskEvent } from '../../core/task.js';
import type { Delivery } from '../../store/port.js';
import type { TaskUrls } from '../../results/files.js';

/**
 * Reelay's own view of a task, whichever door made it: the state machine's words as they are
 * (`queued` … `succeeded`, `failed`, `canceled`, `expired`), with where and why it failed, what a
 * cancel found upstream, and the URLs of its files.
 */
export interface NativeTask {
  id: string;
  object: 'task';
  /** The door the task was created through (`kie`, `kkiai`, `openai`, `gemini`, `reelay`). */
  dialect: string;
  model: string;
  state: Task['state'];
  /** 0–100; the provider's own progress while it generates. */
  progress: number;
  prompt: string;
  images: number;
  seconds: number;
  resolution: string;
  aspect_ratio: string;
  provider: string;
  /** The video came from a route other than the first (a failover). */
  fallback: boolean;
  attempts: number;
  retries: number;
  error: { kind: string | null; stage: string | null; message: string } | null;
  /** The last error seen, kept after a later success. */
  last_error: string | null;
  cancel_outcome: Task['cancelOutcome'];
  /** The credits the task reserved of a metered key at create (null: it costs nothing); see `GET /ledger`. */
  credits_reserved: number | null;
  outputs: { video: string | null; video_720p: string | null; video_1080p: string | null; video_4k: string | null };
  created_at: string;
  updated_at: string;
  completed_at: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toNative(task: Task, urls: TaskUrls): NativeTask {
  const ended = task.state === 'failed' || task.state === 'canceled' || (task.state === 'expired' && task.failureStage !== null);
  return {
    id: task.id,
    object: 'task',
    dialect: task.dialect,
    model: task.model,
    state: task.state,
    progress: task.state === 'succeeded' ? 100 : isTerminal(task.state) ? task.progress : Math.min(99, task.progress),
    prompt: task.spec.prompt,
    images: task.spec.images.length,
    seconds: task.spec.durationSeconds,
    resolution: task.spec.upsample ? task.spec.resolution : '720p',
    aspect_ratio: task.spec.aspectRatio,
    provider: task.provider,
    fallback: task.fallback,
    attempts: task.attemptCount,
    retries: task.retryCount,
    error: ended ? { kind: task.lastErrorKind, stage: task.failureStage, message: task.lastError ?? 'the task failed' } : null,
    last_error: task.lastError,
    cancel_outcome: task.cancelOutcome,
    credits_reserved: task.charge?.credits ?? null,
    outputs: { video: urls.final, video_720p: urls.video, video_1080p: urls.hd1080, video_4k: urls.uhd },
    created_at: iso(task.createdAt)!,
    updated_at: iso(task.updatedAt)!,
    completed_at: iso(task.completedAt),
  };
}

/** The event a task's end is: its webhook's `type`. */
export function eventType(task: Task): 'video.completed' | 'video.failed' | 'video.canceled' {
  return task.state === 'succeeded' ? 'video.completed' : task.state === 'canceled' ? 'video.canceled' : 'video.failed';
}

/** The body of a native webhook: `{type, timestamp, data}`, the task as `GET /tasks/{id}` gives it. */
export function toEvent(task: Task, urls: TaskUrls) {
  return { type: eventType(task), timestamp: new Date(task.updatedAt).toISOString(), data: toNative(task, urls) };
}

/** HTTP status and title of each error, for the problem details envelope. */
const PROBLEMS: Record<ApiErrorKind, [number, string]> = {
  unauthorized: [401, 'Unauthorized'],
  not_found: [404, 'Not Found'],
  validation: [400, 'Bad Request'],
  too_large: [413, 'Content Too Large'],
  content_policy: [400, 'Bad Request'],
  image_fetch: [400, 'Bad Request'],
  expired: [410, 'Gone'],
  not_ready: [409, 'Conflict'],
  conflict: [409, 'Conflict'],
  unsupported: [400, 'Bad Request'],
  maintenance: [503, 'Service Unavailable'],
  in_progress: [409, 'Conflict'],
  key_reused: [422, 'Unprocessable Content'],
  rate_limited: [429, 'Too Many Requests'],
  insufficient_credits: [402, 'Payment Required'],
  internal: [500, 'Internal Server Error'],
};

/**
 * RFC 9457 problem details, `application/problem+json`: `type` names the error (`code` says the
 * same for code), `detail` says what happened; `param` is the request field at fault. A cancel
 * that came too late carries the task as it ended.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ApiErrorKind;
  param?: string;
  task?: NativeTask;
}

export function toProblem(err: ApiError, extra?: { task?: NativeTask }): Problem {
  const [status, title] = PROBLEMS[err.kind];
  return { type: `urn:reelay:error:${err.kind}`, title, status, detail: err.message, code: err.kind, ...(err.param ? { param: err.param } : {}), ...extra };
}

/** One entry of `GET /tasks/{id}/events`. */
export interface NativeEvent {
  at: string;
  kind: 'created' | 'attempt' | TaskEvent['kind'];
  actor: TaskEvent['actor'];
  from: string | null;
  to: string | null;
  detail: Record<string, unknown> | null;
}

/**
 * A task's audit trail, oldest first: its creation, then its transitions, attempts (each try of a
 * step: provider, upstream id, outcome, error) and callback tries, merged by time (an attempt
 * before the transition it led to, at the same millisecond).
 */
export function toEvents(task: Task, events: TaskEvent[], attempts: Attempt[]): NativeEvent[] {
  const created: [number, number, NativeEvent] = [task.createdAt, 0, { at: iso(task.createdAt)!, kind: 'created', actor: 'api', from: null, to: 'queued', detail: { dialect: task.dialect, model: task.model } }];
  const tried = attempts.map((a): [number, number, NativeEvent] => [a.endedAt ?? a.startedAt, 1, {
    at: iso(a.endedAt ?? a.startedAt)!,
    kind: 'attempt',
    actor: 'engine',
    from: null,
    to: null,
    detail: { n: a.n, step: a.step, provider: a.provider, upstream_id: a.upstreamId, outcome: a.outcome, error: a.error, ms: a.endedAt === null ? null : a.endedAt - a.startedAt },
  }]);
  const logged = events.map((e): [number, number, NativeEvent] => [e.at, 2, { at: iso(e.at)!, kind: e.kind, actor: e.actor, from: e.from, to: e.to, detail: e.detail }]);
  return [created, ...tried, ...logged].sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, , e]) => e);
}

/** One of a task's callbacks (`GET /tasks/{id}/deliveries`): where, how it went, and its `webhook-id`. */
export function toDelivery(d: Delivery) {
  return {
    id: d.id,
    webhook_id: `msg_${d.taskId}_${d.id}`,
    url: d.url,
    status: d.status,
    attempts: d.attempts,
    last_status: d.lastStatus,
    last_error: d.lastError,
    created_at: iso(d.createdAt),
    next_attempt_at: iso(d.nextAttemptAt === null ? null : Math.round(d.nextAttemptAt)),
    delivered_at: iso(d.deliveredAt),
  };
}
