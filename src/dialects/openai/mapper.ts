import type { ErrorKind, TaskState } from '../../core/states.js';
import type { Task, TaskSpec } from '../../core/task.js';

/** The OpenAI `status` vocabulary; the SDK's typed union, so a client's polling loop knows every word. */
export const VIDEO_STATUSES = ['queued', 'in_progress', 'completed', 'failed'] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

/** The OpenAI video object (VideoResource): every key always present, nullable ones as null. */
export interface VideoObject {
  id: string;
  object: 'video';
  model: string;
  status: VideoStatus;
  progress: number;
  created_at: number;
  completed_at: number | null;
  expires_at: number | null;
  error: { code: string; message: string } | null;
  prompt: string | null;
  remixed_from_video_id: string | null;
  seconds: string;
  size: string;
}

const LIVE: Record<Exclude<TaskState, 'succeeded' | 'failed' | 'canceled' | 'expired'>, VideoStatus> = {
  queued: 'queued',
  fetching: 'queued',
  generating: 'in_progress',
  generated: 'in_progress',
  upsampling: 'in_progress',
};

/**
 * OpenAI `status` of any task. An expired task (a tombstone whose files are gone) keeps the word
 * it ended with: `completed`, with `expires_at` in the past, or `failed` with its error. OpenAI's
 * own videos work that way (assets expire, the job stays completed), and a client never sees a
 * word outside the four. A canceled task is `failed` with the error code `canceled`: the four
 * words have none for it, and a client's loop must end.
 */
export function videoStatus(task: Task): VideoStatus {
  switch (task.state) {
    case 'succeeded':
      return 'completed';
    case 'failed':
    case 'canceled':
      return 'failed';
    case 'expired':
      return task.failureStage === null ? 'completed' : 'failed';
    default:
      return LIVE[task.state];
  }
}

/** Where each state sits on the 0–100 scale; generation spreads its own progress between 10 and 90. */
const FETCHING = 5;
const GENERATION_FROM = 10;
const GENERATION_TO = 90;
const GENERATED = 90;
const UPSAMPLING = 95;

/**
 * The generation part of the progress. A resubmission (a retry or a failover) starts the
 * provider's progress again from 0, while `attemptCount` goes up by one: each submission gets its
 * own band, the first 10–70, the next 70–85, then a quarter of what is left each time, so the
 * number never goes down and stays below 90.
 */
function generationProgress(task: Task): number {
  const k = Math.max(1, task.attemptCount);
  const span = GENERATION_TO - GENERATION_FROM;
  const lo = GENERATION_TO - span / 4 ** (k - 1);
  const hi = GENERATION_TO - span / 4 ** k;
  const p = Math.min(100, Math.max(0, task.progress)) / 100;
  return Math.floor(lo + (hi - lo) * p);
}

/**
 * OpenAI `progress`: an integer 0–100 that never goes down along the state machine. A failed task
 * keeps the progress of the stage it failed in; a completed one (expired included) is 100.
 */
export function videoProgress(task: Task): number {
  switch (task.state) {
    case 'queued':
      return 0;
    case 'fetching':
      return FETCHING;
    case 'generating':
      return generationProgress(task);
    case 'generated':
      return GENERATED;
    case 'upsampling':
      return UPSAMPLING;
    case 'succeeded':
      return 100;
    case 'expired':
      if (task.failureStage === null) return 100;
      return failedProgress(task);
    case 'failed':
    case 'canceled':
      return failedProgress(task);
  }
}

function failedProgress(task: Task): number {
  return task.failureStage === 'input' ? FETCHING : task.failureStage === 'upsample' ? UPSAMPLING : generationProgress(task);
}

/**
 * OpenAI `size` ("WxH") of a spec: its exact frame when it has one (1024x1792), else the size its
 * aspect and final resolution give (as the local renderer sizes it), so tasks of every door render.
 * `auto` before the first image is read is 16:9, as the engine decides without images.
 */
export function videoSize(spec: Pick<TaskSpec, 'aspectRatio' | 'resolution' | 'upsample' | 'frame'>): string {
  if (spec.frame) return `${spec.frame.width}x${spec.frame.height}`;
  const [long, short] = !spec.upsample || spec.resolution === '720p' ? [1280, 720] : spec.resolution === '4k' ? [3840, 2160] : [1920, 1080];
  return spec.aspectRatio === '9:16' ? `${short}x${long}` : `${long}x${short}`;
}

/** Stored as `task.dialect`. */
export const OPENAI = 'openai';

/**
 * The key of `task.request` where this door keeps an extension's stitched total (the source's
 * seconds plus the new part), which OpenAI reports as `seconds`. The spec's `durationSeconds` is
 * the new part alone, as the engine needs it.
 */
export const STITCHED_SECONDS = 'stitched_seconds';
/** The key of `task.request` where a remix keeps its source's id. */
export const REMIXED_FROM = 'remixed_from_video_id';

/**
 * One of this door's notes in `task.request`. Only a task of this door has them: the request of a
 * kie or kkiai task is its client's body, which may hold any key. (This door's creates drop these
 * keys from what the client sent.)
 */
function note(task: Task, key: string): string | undefined {
  const v = task.dialect === OPENAI ? task.request[key] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * OpenAI `seconds`: the stitched total for an extension made through this door, else the spec's
 * duration. An extension made through another door shows the length of its new part, since the
 * source's length is not in the task.
 */
export function videoSeconds(task: Task): string {
  const stitched = note(task, STITCHED_SECONDS);
  return stitched !== undefined && /^\d+$/.test(stitched) ? stitched : String(task.spec.durationSeconds);
}

const ERROR_CODES: Record<ErrorKind, string> = {
  content_policy: 'moderation_blocked',
  image_fetch: 'image_fetch_failed',
  timeout: 'timeout',
  upstream: 'generation_failed',
  internal: 'internal_error',
  canceled: 'canceled',
};

const DEFAULT_MESSAGES: Record<ErrorKind, string> = {
  content_policy: 'Your request was blocked by the moderation system.',
  image_fetch: 'The input could not be fetched.',
  timeout: 'The video was not made in time.',
  upstream: 'The video could not be generated.',
  internal: 'Internal error while making the video.',
  canceled: 'The video was canceled.',
};

/** OpenAI `error` of a failed task, `{code, message}`; null otherwise (the last error of a success is not one). */
export function videoError(task: Task): VideoObject['error'] {
  if (videoStatus(task) !== 'failed') return null;
  const kind = task.lastErrorKind ?? (task.failureStage === 'upsample' ? 'internal' : 'upstream');
  return { code: ERROR_CODES[kind], message: task.lastError || DEFAULT_MESSAGES[kind] };
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/**
 * The video object of any task of the tenant, whichever door made it. `expires_at` is when the
 * retention sweeper removes a completed video's files (`completed_at` + retention); a failed
 * video has no files to expire.
 */
export function toVideo(task: Task, retentionMs: number): VideoObject {
  const status = videoStatus(task);
  return {
    id: task.id,
    object: 'video',
    model: task.model,
    status,
    progress: videoProgress(task),
    created_at: seconds(task.createdAt),
    completed_at: task.completedAt === null ? null : seconds(task.completedAt),
    expires_at: status === 'completed' && task.completedAt !== null ? seconds(task.completedAt + retentionMs) : null,
    error: videoError(task),
    prompt: task.spec.prompt,
    remixed_from_video_id: note(task, REMIXED_FROM) ?? null,
    seconds: videoSeconds(task),
    size: videoSize(task.spec),
  };
}
