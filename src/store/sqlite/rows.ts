import type { Task } from '../../core/task.js';
import type { Delivery } from '../port.js';
import { JSON_FIELDS } from '../sql/columns.js';

export function patchValue(field: string, value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return JSON_FIELDS.has(field) ? JSON.stringify(value) : value;
}

type Row = Record<string, unknown>;

export function taskFromRow(r: Row): Task {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    dialect: r.dialect as string,
    model: r.model as string,
    spec: JSON.parse(r.spec as string),
    request: JSON.parse(r.request as string),
    state: r.state as Task['state'],
    enhancedPrompt: r.enhanced_prompt as string,
    images: JSON.parse(r.images as string),
    provider: r.provider as string,
    upstreamId: (r.upstream_id as string | null) ?? null,
    attemptCount: r.attempt_count as number,
    retryCount: r.retry_count as number,
    maxRetries: r.max_retries as number,
    errorSleepMs: r.error_sleep_ms as number,
    lastError: (r.last_error as string | null) ?? null,
    lastErrorKind: (r.last_error_kind as Task['lastErrorKind']) ?? null,
    failureStage: (r.failure_stage as Task['failureStage']) ?? null,
    callbackUrl: (r.callback_url as string | null) ?? null,
    fileToken: r.file_token as string,
    hdState: r.hd_state as Task['hdState'],
    uhdState: (r.uhd_state as Task['uhdState'] | undefined) ?? 'none',
    uhdCallbackUrl: (r.uhd_callback_url as string | null | undefined) ?? null,
    progress: r.progress as number,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    completedAt: (r.completed_at as number | null) ?? null,
    deadlineAt: r.deadline_at as number,
    nextRunAt: (r.next_run_at as number | null) ?? null,
    routeIndex: r.route_index as number,
    submittedAt: (r.submitted_at as number | null) ?? null,
    fallback: r.fallback === 1,
    resultUrl: (r.result_url as string | null) ?? null,
    cancelOutcome: (r.cancel_outcome as Task['cancelOutcome'] | undefined) ?? null,
    deleteRequested: r.delete_requested === 1,
    charge: typeof r.charge === 'string' ? JSON.parse(r.charge) : null,
  };
}

export function taskToRow(t: Task): Row {
  return {
    id: t.id,
    tenant_id: t.tenantId,
    dialect: t.dialect,
    model: t.model,
    spec: JSON.stringify(t.spec),
    request: JSON.stringify(t.request),
    state: t.state,
    enhanced_prompt: t.enhancedPrompt,
    images: JSON.stringify(t.images),
    provider: t.provider,
    upstream_id: t.upstreamId,
    attempt_count: t.attemptCount,
    retry_count: t.retryCount,
    max_retries: t.maxRetries,
    error_sleep_ms: t.errorSleepMs,
    last_error: t.lastError,
    last_error_kind: t.lastErrorKind,
    failure_stage: t.failureStage,
    callback_url: t.callbackUrl,
    file_token: t.fileToken,
    hd_state: t.hdState,
    uhd_state: t.uhdState,
    uhd_callback_url: t.uhdCallbackUrl,
    progress: t.progress,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    completed_at: t.completedAt,
    deadline_at: t.deadlineAt,
    next_run_at: t.nextRunAt,
    route_index: t.routeIndex,
    submitted_at: t.submittedAt,
    fallback: t.fallback ? 1 : 0,
    result_url: t.resultUrl,
    cancel_outcome: t.cancelOutcome,
    delete_requested: t.deleteRequested ? 1 : 0,
    charge: t.charge === null ? null : JSON.stringify(t.charge),
  };
}

export function deliveryFromRow(r: Row): Delivery {
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
    nextAttemptAt: (r.next_attempt_at as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
    lastStatus: (r.last_status as number | null) ?? null,
    deliveredAt: (r.delivered_at as number | null) ?? null,
  };
}
