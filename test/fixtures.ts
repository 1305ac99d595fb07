import type { Task, TaskSpec } from '../src/core/task.js';

/** A task in any state, for mapper and store tests. */
export function makeTask(over: Partial<Task> = {}, spec: Partial<TaskSpec> = {}): Task {
  const now = 1_770_350_082_099;
  return {
    id: 'veo3.1-fast:1770350082-trii1OXZc3',
    tenantId: 't_a',
    dialect: 'kkiai',
    model: 'veo3.1-fast',
    spec: {
      prompt: 'make animate',
      images: [],
      mode: 'text',
      aspectRatio: '16:9',
      resolution: '720p',
      upsample: false,
      seed: 12345,
      durationSeconds: 8,
      enhancePrompt: false,
      ...spec,
    },
    request: { model: 'veo3.1-fast', prompt: 'make animate' },
    state: 'queued',
    enhancedPrompt: 'make animate',
    images: [],
    provider: 'local',
    upstreamId: null,
    attemptCount: 0,
    retryCount: 0,
    maxRetries: 3,
    errorSleepMs: 5000,
    lastError: null,
    lastErrorKind: null,
    failureStage: null,
    callbackUrl: null,
    fileToken: 'tok123',
    hdState: 'none',
    uhdState: 'none',
    uhdCallbackUrl: null,
    progress: 0,
    routeIndex: 0,
    submittedAt: null,
    resultUrl: null,
    fallback: false,
    cancelOutcome: null,
    deleteRequested: false,
    charge: null,
    createdAt: now,
    updatedAt: now,
    completedAt: null,
    deadlineAt: now + 1_800_000,
    nextRunAt: now,
    ...over,
  };
}

/** The kkiai seed's query example: each field and its JSON type (detail fields under `detail.`). */
export const KKIAI_SEED_TYPES: Record<string, string> = {
  id: 'string',
  status: 'string',
  video_url: 'string',
  enhanced_prompt: 'string',
  status_update_time: 'number',
  detail: 'object',
  'detail.id': 'string',
  'detail.req': 'object',
  'detail.images': 'array',
  'detail.status': 'string',
  'detail.running': 'boolean',
  'detail.video_url': 'string',
  'detail.created_at': 'number',
  'detail.error_sleep': 'number',
  'detail.max_retries': 'number',
  'detail.retry_count': 'number',
  'detail.completed_at': 'number',
  'detail.error_message': 'string',
  'detail.video_media_id': 'string',
  'detail.enhanced_prompt': 'string',
  'detail.upsample_status': 'string',
  'detail.startImageMediaId': 'string',
  'detail.status_update_time': 'number',
  'detail.upsample_video_url': 'string',
  'detail.video_generation_id': 'string',
  'detail.veo3StartImageMediaId': 'string',
  'detail.needs_safe_enhancement': 'boolean',
  'detail.upsample_generation_id': 'string',
  'detail.video_generation_error': 'string',
  'detail.video_generation_status': 'string',
};

/** The kie seed's record-info example: each `data` field and its JSON type. */
export const KIE_SEED_TYPES: Record<string, string> = {
  taskId: 'string',
  paramJson: 'string',
  completeTime: 'string',
  response: 'object',
  'response.taskId': 'string',
  'response.resultUrls': 'array',
  'response.originUrls': 'array|null',
  'response.resolution': 'string',
  successFlag: 'number',
  errorCode: 'null',
  errorMessage: 'string',
  createTime: 'string',
  fallbackFlag: 'boolean',
};

export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Checks each listed path of `obj` has the listed type ("a|b" allows either); returns the mismatches. */
export function typesOf(obj: Record<string, unknown>, spec: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [path, want] of Object.entries(spec)) {
    let cur: unknown = obj;
    let found = true;
    for (const part of path.split('.')) {
      if (cur === null || typeof cur !== 'object' || !(part in (cur as object))) {
        found = false;
        break;
      }
      cur = (cur as Record<string, unknown>)[part];
    }
    const got = found ? jsonType(cur) : 'missing';
    if (!want.split('|').includes(got)) problems.push(`${path}: want ${want}, got ${got}`);
  }
  return problems;
}

/** A small seeded PRNG (mulberry32): faults drawn from it come in the same order every run. */
export function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
