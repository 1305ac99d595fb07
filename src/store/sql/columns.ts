import type { TaskPatch } from '../port.js';

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
};

/** Task fields stored as JSON text (SQLite `TEXT`, PostgreSQL `json`). */
export const JSON_FIELDS: ReadonlySet<string> = new Set(['images', 'spec', 'request']);
