import type { Task } from '../../core/task.js';
import type { Delivery, TaskPatch } from '../port.js';
import { JSON_FIELDS } from '../sql/columns.js';
import type { Row } from './db.js';

/**
 * Rows and their values. `json` columns come back parsed and `bigint` ones as numbers (the pool's
 * type parsers, `db.ts`); schedule times (`next_run_at`, `next_attempt_at`) are on the database's
 * clock and move back onto the caller's by the store's offset (`off`).
 */

/** The SQL type of each patchable column, for the casts a statement's parameters need. */
export const PATCH_TYPES: Record<keyof TaskPatch, string> = {
  state: 'text',
  spec: 'json',
  images: 'json',
  upstreamId: 'text',
  attemptCount: 'integer',
  retryCount: 'integer',
  lastError: 'text',
  lastErrorKind: 'text',
  failureStage: 'text',
  hdState: 'text',
  uhdState: 'text',
  progress: 'integer',
  completedAt: 'bigint',
  nextRunAt: 'bigint',
  updatedAt: 'bigint',
  provider: 'text',
  routeIndex: 'integer',
  submittedAt: 'bigint',
  fallback: 'boolean',
  resultUrl: 'text',
  cancelOutcome: 'text',
};

/** A patch field's value as a statement parameter; `nextRunAt` moves onto the database's clock. */
export function patchValue(field: string, value: unknown, off: number): unknown {
  if (field === 'nextRunAt') return value === null || value === undefined ? null : Math.round((value as number) + off);
  return JSON_FIELDS.has(field) ? JSON.stringify(value) : value;
}

const at = (v: unknown, off: number): number | null => (v === null || v === undefined ? null : (v as number) - off);

/**
 * The insert columns of `tasks` but the lease, in the order of `taskValues`, each with its
 * PostgreSQL type (for inserts of many rows through unnest).
 */
const TASK_INSERT: readonly (readonly [column: string, type: string])[] = [
  ['id', 'text'], ['tenant_id', 'text'], ['dialect', 'text'], ['model', 'text'], ['spec', 'json'],
  ['request', 'json'], ['state', 'text'], ['enhanced_prompt', 'text'], ['images', 'json'],
  ['provider', 'text'], ['upstream_id', 'text'], ['attempt_count', 'integer'], ['retry_count', 'integer'],
  ['max_retries', 'integer'], ['error_sleep_ms', 'integer'], ['last_error', 'text'],
  ['last_error_kind', 'text'], ['failure_stage', 'text'], ['callback_url', 'text'], ['file_token', 'text'],
  ['hd_state', 'text'], ['progress', 'integer'], ['created_at', 'bigint'], ['updated_at', 'bigint'],
  ['completed_at', 'bigint'], ['deadline_at', 'bigint'], ['next_run_at', 'bigint'], ['route_index', 'integer'],
  ['submitted_at', 'bigint'], ['fallback', 'boolean'], ['result_url', 'text'], ['uhd_state', 'text'],
  ['uhd_callback_url', 'text'], ['cancel_outcome', 'text'], ['delete_requested', 'boolean'], ['charge', 'json'],
];
export const TASK_COLUMNS = TASK_INSERT.map(([column]) => column);
export const TASK_TYPES = TASK_INSERT.map(([, type]) => type);

export function taskValues(t: Task, off: number): unknown[] {
  return [
    t.id, t.tenantId, t.dialect, t.model, JSON.stringify(t.spec), JSON.stringify(t.request), t.state, t.enhancedPrompt,
    JSON.stringify(t.images), t.provider, t.upstreamId, t.attemptCount, t.retryCount, t.maxRetries, t.errorSleepMs,
    t.lastError, t.lastErrorKind, t.failureStage, t.callbackUrl, t.fileToken, t.hdState, t.progress, t.createdAt,
    t.updatedAt, t.completedAt, t.deadlineAt, t.nextRunAt === null ? null : Math.round(t.nextRunAt + off), t.routeIndex,
    t.submittedAt, t.fallback, t.resultUrl, t.uhdState, t.uhdCallbackUrl, t.cancelOutcome, t.deleteRequested,
    t.charge === null ? null : JSON.stringify(t.charge),
  ];
}

export function taskFromRow(r: Row, off: number): Task {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    dialect: r.dialect as string,
    model: r.model as string,
    spec: r.spec as Task['spec'],
    request: r.request as Task['request'],
    state: r.state as Task['state'],
    enhancedPrompt: r.enhanced_prompt as string,
    images: r.images as Task['images'],
    provider: r.provider as string,
    upstreamId: r.upstream_id as string | null,
    attemptCount: r.attempt_count as number,
    retryCount: r.retry_count as number,
    maxRetries: r.max_retries as number,
    errorSleepMs: r.error_sleep_ms as number,
    lastError: r.last_error as string | null,
    lastErrorKind: r.last_error_kind as Task['lastErrorKind'],
    failureStage: r.failure_stage as Task['failureStage'],
    callbackUrl: r.callback_url as string | null,
    fileToken: r.file_token as string,
    hdState: r.hd_state as Task['hdState'],
    uhdState: r.uhd_state as Task['uhdState'],
    uhdCallbackUrl: r.uhd_callback_url as string | null,
    progress: r.progress as number,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    completedAt: r.completed_at as number | null,
    deadlineAt: r.deadline_at as number,
    nextRunAt: at(r.next_run_at, off),
    routeIndex: r.route_index as number,
    submittedAt: r.submitted_at as number | null,
    fallback: r.fallback as boolean,
    resultUrl: r.result_url as string | null,
    cancelOutcome: r.cancel_outcome as Task['cancelOutcome'],
    deleteRequested: r.delete_requested as boolean,
    charge: (r.charge as Task['charge'] | undefined) ?? null,
  };
}

export function deliveryFromRow(r: Row, off: number): Delivery {
  return {
    id: r.id as number,
    taskId: r.task_id as string,
    tenantId: (r.tenant_id as string | null | undefined) ?? null,
    endpointId: (r.endpoint_id as string | null | undefined) ?? null,
    url: r.url as string,
    body: r.body as string,
    createdAt: r.created_at as number,
    status: r.status as Delivery['status'],
    attempts: r.attempts as number,
    nextAttemptAt: at(r.next_attempt_at, off),
    lastError: r.last_error as string | null,
    lastStatus: r.last_status as number | null,
    deliveredAt: r.delivered_at as number | null,
  };
}
