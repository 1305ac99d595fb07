import type { Task } from './types.js';

/** What a `ReelayError` is made from. */
export interface ReelayErrorInit {
  status?: number | null;
  code: string;
  param?: string;
  taskId?: string;
  task?: Task;
  requestId?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * Every error of the client but webhook verification. `code` is the server's problem `code`
 * (`validation`, `unauthorized`, `not_found`, `conflict`, `insufficient_credits`, `rate_limited`,
 * `in_progress`, `key_reused`, …), or `network` / `timeout` when no answer came (`status` null).
 * A task-scoped call's error carries `taskId`; a cancel that came too late carries `task`.
 */
export class ReelayError extends Error {
  /** The HTTP status; null when there was no answer. */
  readonly status: number | null;
  readonly code: string;
  /** The request field at fault. */
  readonly param?: string;
  taskId?: string;
  readonly task?: Task;
  /** The server's `x-request-id`, when it sends one. */
  readonly requestId?: string;
  /** When a retry may succeed (`Retry-After`), in ms. */
  readonly retryAfterMs?: number;

  constructor(message: string, init: ReelayErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status ?? null;
    this.code = init.code;
    if (init.param !== undefined) this.param = init.param;
    const taskId = init.taskId ?? init.task?.id;
    if (taskId !== undefined) this.taskId = taskId;
    if (init.task !== undefined) this.task = init.task;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }
}

/** `wait` saw the task fail: `code` is `task.error.kind` (`content_policy`, `timeout`, `upstream`, …). */
export class TaskFailedError extends ReelayError {
  declare readonly task: Task;
  declare taskId: string;
  constructor(task: Task) {
    super(`task ${task.id} failed: ${task.error?.message ?? 'no reason given'}`, { code: task.error?.kind ?? 'failed', task });
  }
}

/** `wait` saw the task canceled. */
export class TaskCanceledError extends ReelayError {
  declare readonly task: Task;
  declare taskId: string;
  constructor(task: Task) {
    super(`task ${task.id} was canceled`, { code: 'canceled', task });
  }
}

/** `wait` saw the task expired: its files are gone. */
export class TaskExpiredError extends ReelayError {
  declare readonly task: Task;
  declare taskId: string;
  constructor(task: Task) {
    super(`task ${task.id} has expired`, { code: 'expired', task });
  }
}

/**
 * `wait` gave up after its `timeoutMs`. The task keeps running on the server (it is not
 * canceled); `task` is the task as last seen, when one was seen.
 */
export class WaitTimeoutError extends ReelayError {
  declare taskId: string;
  constructor(taskId: string, timeoutMs: number, task?: Task) {
    super(`task ${taskId} did not end within ${timeoutMs} ms${task ? ` (last seen ${task.state})` : ''}; it keeps running`, { code: 'wait_timeout', taskId, ...(task ? { task } : {}) });
  }
}

/** A callback whose signature, timestamp or body does not check out. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** The error a task's end is, or undefined when it succeeded (or has not ended). */
export function endError(task: Task): ReelayError | undefined {
  switch (task.state) {
    case 'failed':
      return new TaskFailedError(task);
    case 'canceled':
      return new TaskCanceledError(task);
    case 'expired':
      return new TaskExpiredError(task);
    default:
      return undefined;
  }
}

/** The code of an error answer that has no problem body, by its status. */
function codeOf(status: number): string {
  if (status === 400) return 'validation';
  if (status === 401) return 'unauthorized';
  if (status === 402) return 'insufficient_credits';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'rate_limited';
  return status >= 500 ? 'server_error' : 'http_error';
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * The `ReelayError` of an error answer: its problem details (`{type, title, status, detail, code,
 * param?, task?}`), or the `{error: {message, code}}` the server gives outside `/reelay/v1`, or
 * just its status when the body is neither.
 */
export function errorFromResponse(status: number, text: string, headers: Headers, taskId?: string): ReelayError {
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: the status says what it can
  }
  const nested = body?.error && typeof body.error === 'object' ? (body.error as Record<string, unknown>) : undefined;
  const code = str(body?.code) ?? str(nested?.code) ?? codeOf(status);
  const message = str(body?.detail) ?? str(nested?.message) ?? str(body?.title) ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
  const task = body?.task && typeof body.task === 'object' ? (body.task as Task) : undefined;
  const retryAfterMs = retryAfter(headers.get('retry-after'));
  const requestId = headers.get('x-request-id') ?? undefined;
  const param = str(body?.param);
  const id = taskId ?? task?.id ?? headers.get('x-reelay-task-id') ?? undefined;
  return new ReelayError(message, {
    status,
    code,
    ...(param ? { param } : {}),
    ...(id ? { taskId: id } : {}),
    ...(task ? { task } : {}),
    ...(requestId ? { requestId } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** `Retry-After` (seconds, or an HTTP date) in ms from now. */
export function retryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
