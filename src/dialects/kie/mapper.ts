import type { Task } from '../../core/task.js';
import type { TaskUrls } from '../../results/files.js';
import type { ApiErrorKind } from '../../app/errors.js';

/** The kie envelope: `{code, msg, data}` on every answer. */
export interface KieEnvelope<T = unknown> {
  code: number;
  msg: string;
  data: T | null;
}

/**
 * Body `code` for each error. HTTP status choice (kie documents its error codes inside HTTP-200
 * responses and tells clients to check `code`): every answer is HTTP 200 with the code in the body,
 * except `internal`, which is HTTP 500 with `{code:500}` as kie documents a separate HTTP-500 answer.
 */
export const KIE_CODES: Record<ApiErrorKind, number> = {
  unauthorized: 401,
  not_found: 404,
  validation: 422,
  too_large: 422,
  expired: 422,
  content_policy: 400,
  not_ready: 400,
  conflict: 422,
  unsupported: 422,
  image_fetch: 451,
  maintenance: 455,
  in_progress: 409,
  key_reused: 422,
  rate_limited: 429,
  insufficient_credits: 402,
  internal: 500,
};

export const KIE_MESSAGES = {
  unauthorized: 'You do not have access permissions',
  insufficientCredits: 'Insufficient Credits',
  expired: 'Temporarily supports records within 14 days',
  contentPolicy: 'Your prompt was flagged by Website as violating content policies.',
  imageFetch: 'Failed to fetch the image. Kindly verify any access limits set by you or your service provider.',
  notSuccess: 'record status is not success',
  hdProcessing: '1080P is processing. It should be ready in 1-2 minutes. Please check back shortly.',
  maintenance: 'Service Unavailable - System is currently undergoing maintenance',
  success: 'success',
  callbackOk: 'Veo3.1 video generated successfully.',
  extendOk: 'Veo3.1 video extension successful.',
  uhdProcessing: '4k is processing. It should be ready in 5-10 minutes. Please check back shortly.',
  uhdDone: 'The video has been generated successfully',
  uhdOk: '4K Video generated successfully.',
  uhdFailed: 'The 4K version of this video is unavailable. Please try a different video.',
  canceled: 'The task was canceled by the client.',
} as const;

/**
 * `successFlag`: 0 generating, 1 success, 2 failed before completion (inputs could not be
 * fetched, or the client canceled it: kie has no word of its own for that), 3 generation failed
 * (the provider took the task and failed, or it timed out there).
 */
export function successFlag(task: Task): 0 | 1 | 2 | 3 {
  if (task.state === 'succeeded') return 1;
  if (task.state === 'canceled') return 2;
  if (task.state === 'failed') return task.failureStage === 'input' ? 2 : 3;
  return 0;
}

/**
 * `errorCode` of a task that ended without a video, as kie's record and callback tables give
 * them: 400 content policy, unusable images and a cancel (the client's doing, not to be retried
 * as it is), 500 timeout and internal errors, 501 the generation failed.
 */
export function errorCode(task: Task): number | null {
  if (task.state !== 'failed' && task.state !== 'canceled') return null;
  switch (task.lastErrorKind) {
    case 'content_policy':
    case 'image_fetch':
    case 'canceled':
      return 400;
    case 'timeout':
    case 'internal':
      return 500;
    default:
      return 501;
  }
}

export function errorMessage(task: Task): string {
  if (task.state === 'canceled') return KIE_MESSAGES.canceled;
  if (task.state !== 'failed') return '';
  if (task.lastErrorKind === 'content_policy') return KIE_MESSAGES.contentPolicy;
  return task.lastError ?? 'Generation failed';
}

/** kie's time format: `YYYY-MM-DD HH:mm:ss` (UTC). */
export function kieTime(ms: number | null): string | null {
  if (ms === null) return null;
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function resolutionLabel(task: Task): string {
  return task.spec.upsample ? task.spec.resolution : '720p';
}

export interface KieRecord {
  taskId: string;
  paramJson: string;
  completeTime: string | null;
  response: { taskId: string; resultUrls: string[]; originUrls: string[] | null; fullResultUrls?: string[]; resolution: string } | null;
  successFlag: 0 | 1 | 2 | 3;
  errorCode: number | null;
  errorMessage: string;
  createTime: string;
  fallbackFlag: boolean;
}

/** record-info's `data` for any task of the tenant, whichever dialect created it. */
export function toRecord(task: Task, urls: TaskUrls): KieRecord {
  return {
    taskId: task.id,
    paramJson: JSON.stringify(task.request),
    completeTime: kieTime(task.completedAt),
    response:
      task.state === 'succeeded' && urls.final
        ? {
            taskId: task.id,
            resultUrls: [urls.final],
            originUrls: null,
            // An extension's video is the source followed by the new part: the whole of it.
            ...(task.spec.video !== undefined ? { fullResultUrls: [urls.final] } : {}),
            resolution: resolutionLabel(task),
          }
        : null,
    successFlag: successFlag(task),
    errorCode: errorCode(task),
    errorMessage: errorMessage(task),
    createTime: kieTime(task.createdAt)!,
    fallbackFlag: task.fallback,
  };
}

/** The callback body kie sends on success and on failure (reference §1.6). */
export function toCallback(task: Task, urls: TaskUrls): KieEnvelope {
  if (task.state === 'succeeded' && urls.final) {
    return {
      code: 200,
      msg: task.spec.video !== undefined ? KIE_MESSAGES.extendOk : KIE_MESSAGES.callbackOk,
      data: { taskId: task.id, info: { resultUrls: [urls.final], originUrls: null, resolution: resolutionLabel(task) }, fallbackFlag: task.fallback },
    };
  }
  return { code: errorCode(task) ?? 500, msg: errorMessage(task), data: { taskId: task.id, fallbackFlag: task.fallback } };
}

/** get-4k-video's `data`: the task, and its 4k video and thumbnail once they are stored. */
export function uhdData(task: Task, urls: TaskUrls): { taskId: string; resultUrls: string[] | null; imageUrls: string[] | null } {
  const ready = task.uhdState === 'ready' && urls.uhd && urls.uhdThumbnail;
  return { taskId: task.id, resultUrls: ready ? [urls.uhd!] : null, imageUrls: ready ? [urls.uhdThumbnail!] : null };
}

/** The callback of a get-4k-video request (reference §1.6, "4K callback"). */
export function toUhdCallback(task: Task, urls: TaskUrls): KieEnvelope {
  if (task.uhdState === 'ready' && urls.uhd) {
    return { code: 200, msg: KIE_MESSAGES.uhdOk, data: { taskId: task.id, info: { resultUrls: [urls.uhd], imageUrls: urls.uhdThumbnail ? [urls.uhdThumbnail] : [] } } };
  }
  return { code: 500, msg: KIE_MESSAGES.uhdFailed, data: { taskId: task.id } };
}
