import type { Artifact, Attempt, TaskEvent } from '../../core/task.js';
import type { ApiKeyRow, CreditAccount, DashboardSession, DeliveryResult, LedgerEntry, TaskFilter, TaskPatch, WebhookEndpoint } from '../port.js';

type Row = Record<string, unknown>;

/**
 * What the SQL backends share about the `tasks` table: the column of each `Task` field a patch
 * may change, and the fields kept as JSON. The SQLite and PostgreSQL schemas name their columns
 * alike, so a step commit builds the same SET list on both.
 */
export const PATCH_COLUMNS: Record<keyof TaskPatch, string> = {
  state: 'state',
  spec: 'spec',
  images: 'images',
  upstreamId: 'upstream_id',
  attemptCount: 'attempt_count',
  retryCount: 'retry_count',
  lastError: 'last_error',
  lastErrorKind: 'last_error_kind',
  failureStage: 'failure_stage',
  hdState: 'hd_state',
  uhdState: 'uhd_state',
  progress: 'progress',
  completedAt: 'completed_at',
  nextRunAt: 'next_run_at',
  updatedAt: 'updated_at',
  provider: 'provider',
  routeIndex: 'route_index',
  submittedAt: 'submitted_at',
  fallback: 'fallback',
  resultUrl: 'result_url',
  cancelOutcome: 'cancel_outcome',
};

/** `last_error` of a canceled task. */
export const CANCELED_MESSAGE = 'Canceled by the client';

/**
 * `failure_stage` of a task canceled in the state its row (`row`, a prefix) holds, read before the cancel's SET:
 * where it stopped, as a failure's stage says it, so a door that knows only failures words it
 * alike. `upsample` means the provider had made the video already (it was being downloaded,
 * stored or upscaled); the cancel step reads it so.
 */
export const canceledStageSql = (row = '') => `CASE WHEN ${row}state IN ('queued', 'fetching') THEN 'input'
  WHEN ${row}state IN ('generated', 'upsampling') OR ${row}result_url IS NOT NULL THEN 'upsample' ELSE 'generation' END`;

/** Task fields stored as JSON text (SQLite `TEXT`, PostgreSQL `json`). */
export const JSON_FIELDS: ReadonlySet<string> = new Set(['images', 'spec', 'request']);

/*
 * Rows of the tables whose columns mean the same on both backends (no JSON, no boolean, no
 * schedule time on the database's clock): read alike. `tasks` and `deliveries` differ, and each
 * backend's rows.ts reads them.
 */

export function keyFromRow(r: Row): ApiKeyRow {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    hash: r.hash as string,
    prefix: r.prefix as string,
    name: r.name as string,
    source: r.source as ApiKeyRow['source'],
    createdAt: r.created_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}

export function attemptFromRow(r: Row): Attempt {
  return {
    taskId: r.task_id as string,
    n: r.n as number,
    step: r.step as Attempt['step'],
    provider: r.provider as string,
    upstreamId: (r.upstream_id as string | null) ?? null,
    startedAt: r.started_at as number,
    endedAt: (r.ended_at as number | null) ?? null,
    outcome: r.outcome as Attempt['outcome'],
    error: (r.error as string | null) ?? null,
  };
}

export function artifactFromRow(r: Row): Artifact {
  return {
    taskId: r.task_id as string,
    kind: r.kind as string,
    path: r.path as string,
    contentType: r.content_type as string,
    bytes: r.bytes as number,
    width: (r.width as number | null) ?? null,
    height: (r.height as number | null) ?? null,
    durationMs: (r.duration_ms as number | null) ?? null,
    codec: (r.codec as string | null) ?? null,
    createdAt: r.created_at as number,
  };
}

export function eventFromRow(r: Row): TaskEvent {
  const detail = r.detail;
  return {
    id: Number(r.id),
    taskId: r.task_id as string,
    at: Number(r.at),
    kind: r.kind as TaskEvent['kind'],
    actor: r.actor as TaskEvent['actor'],
    from: (r.from_state as TaskEvent['from']) ?? null,
    to: (r.to_state as TaskEvent['to']) ?? null,
    // SQLite keeps JSON as text; PostgreSQL's json comes back parsed.
    detail: typeof detail === 'string' ? (JSON.parse(detail) as TaskEvent['detail']) : ((detail as TaskEvent['detail']) ?? null),
  };
}

/** The error of a delivery not sent because its endpoint was disabled (a 410 answer). */
export const ENDPOINT_DISABLED = 'not sent: the endpoint was disabled';

/** What a ledger entry of a task puts in its audit trail (`ledger` events). */
export function ledgerDetail(e: { kind: string; item: string; amount: number; charged?: number | null; balance?: number | null; reason?: string | null }): Record<string, unknown> {
  return { entry: e.kind, item: e.item, amount: e.amount, ...(e.charged != null ? { charged: e.charged } : {}), ...(e.balance != null ? { balance: e.balance } : {}), ...(e.reason ? { reason: e.reason } : {}) };
}

export function ledgerFromRow(r: Row): LedgerEntry {
  return {
    id: Number(r.id),
    tenantId: r.tenant_id as string,
    taskId: (r.task_id as string | null) ?? null,
    item: (r.item as string | null) ?? null,
    kind: r.kind as LedgerEntry['kind'],
    amount: Number(r.amount),
    charged: r.charged === null || r.charged === undefined ? null : Number(r.charged),
    at: Number(r.at),
    note: (r.note as string | null) ?? null,
  };
}

export function accountFromRow(r: Row): CreditAccount {
  return { tenantId: r.tenant_id as string, balance: Number(r.balance), createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) };
}

/** What a callback try puts in the audit trail. */
export function deliveryDetail(r: DeliveryResult): Record<string, unknown> {
  return { delivery: r.id, try: r.attempts, status: r.lastStatus, error: r.status === 'delivered' ? null : r.lastError, outcome: r.status, ...(r.ms !== undefined ? { ms: Math.round(r.ms) } : {}) };
}

/**
 * A backend's test that a task's prompt (`row` its table's prefix) holds `needle` (a parameter,
 * lower-cased), ignoring ASCII case: SQLite `instr(lower(json_extract(…)))`, PostgreSQL `strpos(lower(spec->>'prompt'))`.
 */
export type SearchSql = (row: string, needle: string) => string;

/**
 * The SQL conditions of a filter, for either backend: `param(value)` adds a parameter and gives
 * its placeholder; `row` prefixes the columns. Column names are fixed here, never taken from the request;
 * `search` is the backend's prompt test.
 */
export function filterSql(f: TaskFilter | undefined, param: (v: unknown, type: string) => string, search: SearchSql, row = ''): string {
  if (!f) return '';
  const where: string[] = [];
  if (f.states?.length) where.push(`${row}state IN (${f.states.map((s) => param(s, 'text')).join(', ')})`);
  if (f.model !== undefined) where.push(`${row}model = ${param(f.model, 'text')}`);
  if (f.provider !== undefined) where.push(`${row}provider = ${param(f.provider, 'text')}`);
  if (f.dialect !== undefined) where.push(`${row}dialect = ${param(f.dialect, 'text')}`);
  if (f.createdFrom !== undefined) where.push(`${row}created_at >= ${param(f.createdFrom, 'bigint')}`);
  if (f.createdTo !== undefined) where.push(`${row}created_at <= ${param(f.createdTo, 'bigint')}`);
  if (f.search !== undefined) {
    // A position test, not LIKE: the text is matched as it is (no `%` or `_` to escape).
    where.push(`(${row}id = ${param(f.search, 'text')} OR ${search(row, param(asciiLower(f.search), 'text'))})`);
  }
  return where.map((w) => ` AND ${w}`).join('');
}

/**
 * Lower case for the search, A–Z only: what SQLite's `lower()` does (and PostgreSQL's under the C
 * locale), so the text searched for is cased as the prompt it is matched against.
 */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

export function endpointFromRow(r: Row): WebhookEndpoint {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    url: r.url as string,
    events: typeof r.events === 'string' ? (JSON.parse(r.events) as string[]) : (r.events as string[]),
    createdAt: Number(r.created_at),
    disabledAt: r.disabled_at === null || r.disabled_at === undefined ? null : Number(r.disabled_at),
    disabledReason: (r.disabled_reason as string | null) ?? null,
  };
}

export function sessionFromRow(r: Row): DashboardSession {
  return {
    tokenHash: r.token_hash as string,
    keyId: r.key_id as string,
    tenantId: r.tenant_id as string,
    createdAt: Number(r.created_at),
    idleUntil: Number(r.idle_until),
    expiresAt: Number(r.expires_at),
  };
}
