import { createHash } from 'node:crypto';
import { type TaskState, isTerminal } from '../../core/states.js';
import type { Task } from '../../core/task.js';
import type { TaskUrls } from '../../results/files.js';

/** The kkiai status vocabulary (the published Go constants). */
export const KKIAI_STATUSES = [
  'pending',
  'image_downloading',
  'video_generating',
  'video_generation_completed',
  'video_generation_failed',
  'video_upsampling',
  'video_upsampling_completed',
  'video_upsampling_failed',
  'completed',
  'failed',
  'error',
] as const;
export type KkiaiStatus = (typeof KKIAI_STATUSES)[number];

const LIVE: Record<Exclude<TaskState, 'succeeded' | 'failed' | 'canceled' | 'expired'>, KkiaiStatus> = {
  queued: 'pending',
  fetching: 'image_downloading',
  generating: 'video_generating',
  generated: 'video_generation_completed',
  upsampling: 'video_upsampling',
};

/**
 * kkiai `status` of any task. Failures say where they happened: `video_generation_failed` (the
 * provider failed or rejected it), `video_upsampling_failed`, or `failed` (inputs, or a deadline
 * before generation). A canceled task is `failed`, the vocabulary's word for an end without a
 * video, with `error_message` saying it was canceled. Expired tasks are not rendered (the route
 * answers an error).
 */
export function kkiaiStatus(task: Task): KkiaiStatus {
  switch (task.state) {
    case 'succeeded':
      return 'completed';
    case 'canceled':
      return 'failed';
    case 'failed':
      return task.failureStage === 'generation' ? 'video_generation_failed' : task.failureStage === 'upsample' ? 'video_upsampling_failed' : 'failed';
    case 'expired':
      return 'error';
    default:
      return LIVE[task.state];
  }
}

type MediaStatus = 'MEDIA_GENERATION_STATUS_PENDING' | 'MEDIA_GENERATION_STATUS_ACTIVE' | 'MEDIA_GENERATION_STATUS_SUCCESSFUL' | 'MEDIA_GENERATION_STATUS_FAILED';

function generationStatus(task: Task): MediaStatus {
  if (task.state === 'queued' || task.state === 'fetching') return 'MEDIA_GENERATION_STATUS_PENDING';
  if (task.state === 'generating') return 'MEDIA_GENERATION_STATUS_ACTIVE';
  if ((task.state === 'failed' || task.state === 'canceled') && task.failureStage !== 'upsample') return 'MEDIA_GENERATION_STATUS_FAILED';
  return 'MEDIA_GENERATION_STATUS_SUCCESSFUL';
}

function upsampleStatus(task: Task): MediaStatus | '' {
  if (!task.spec.upsample) return '';
  if (task.state === 'succeeded') return 'MEDIA_GENERATION_STATUS_SUCCESSFUL';
  if (task.state === 'upsampling') return 'MEDIA_GENERATION_STATUS_ACTIVE';
  if (task.state === 'failed' || task.state === 'canceled') return task.failureStage === 'upsample' ? 'MEDIA_GENERATION_STATUS_FAILED' : '';
  return 'MEDIA_GENERATION_STATUS_PENDING';
}

/** A stable media id for one of a task's files (derived, so nothing extra is stored). */
function mediaIdOf(task: Task, kind: string): string {
  return `CAUS${createHash('sha256').update(`${task.fileToken}/${kind}`).digest('base64url')}`;
}

/** `video_generation_error`: the last error if it came from generation (kept after a later success). */
function generationError(task: Task): string {
  return task.lastErrorKind === 'content_policy' || task.lastErrorKind === 'upstream' ? task.lastError ?? '' : '';
}

/** The create answer: `{id, status, status_update_time, enhanced_prompt}`. */
export function toCreated(task: Task) {
  return { id: task.id, status: kkiaiStatus(task), status_update_time: task.updatedAt, enhanced_prompt: task.enhancedPrompt };
}

/** The query answer, with every field of the seed example and the same types. */
export function toQuery(task: Task, urls: TaskUrls) {
  const status = kkiaiStatus(task);
  const startImage = task.images[0]?.mediaId ?? '';
  const generationId = task.upstreamId ?? '';
  const videoUrl = urls.final;
  return {
    id: task.id,
    detail: {
      id: task.id,
      req: task.request,
      images: task.images.map((i) => ({ url: i.url, status: i.status, mediaId: i.mediaId })),
      status,
      running: !isTerminal(task.state),
      video_url: urls.video,
      created_at: task.createdAt,
      error_sleep: task.errorSleepMs,
      max_retries: task.maxRetries,
      retry_count: task.retryCount,
      completed_at: task.completedAt,
      error_message: task.lastError ?? '',
      video_media_id: urls.video ? mediaIdOf(task, 'video') : '',
      enhanced_prompt: task.enhancedPrompt,
      upsample_status: upsampleStatus(task),
      startImageMediaId: startImage,
      status_update_time: task.updatedAt,
      upsample_video_url: urls.upsampled,
      video_generation_id: generationId,
      veo3StartImageMediaId: startImage,
      needs_safe_enhancement: task.lastErrorKind === 'content_policy',
      upsample_generation_id: task.spec.upsample && generationId ? `${generationId}_upsampled` : '',
      video_generation_error: generationError(task),
      video_generation_status: generationStatus(task),
      // Not in the seed: true when a fallback route (another upstream) made the video.
      fallback: task.fallback,
    },
    status,
    video_url: videoUrl,
    enhanced_prompt: task.enhancedPrompt,
    status_update_time: task.updatedAt,
  };
}
