import type { ApiError, ApiErrorKind } from '../../app/errors.js';
import type { Task } from '../../core/task.js';
import { fileIdOf } from './ids.js';

export const PREDICT_RESPONSE_TYPE = 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse';

/** google.rpc.Code numbers, as a failed operation's `error.code` carries them. */
export const RPC = { CANCELLED: 1, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, INTERNAL: 13 } as const;

/** Google's text for a filtered video, when the provider gave none. */
const FILTERED = 'Your prompt or input images conflicted with our safety policies. You will not be charged for this request.';

export interface GeneratedSample {
  video: { uri: string; encoding: 'video/mp4' };
}

/** google.longrunning.Operation, as the Gemini API answers a Veo operation. */
export interface Operation {
  name: string;
  done?: true;
  response?: {
    '@type': typeof PREDICT_RESPONSE_TYPE;
    generateVideoResponse: { generatedSamples?: GeneratedSample[]; raiMediaFilteredCount?: number; raiMediaFilteredReasons?: string[] };
  };
  error?: { code: number; message: string };
}

/** `models/{model}/operations/{id}`: the name the SDK polls verbatim as a path under `/v1beta/`. */
export function operationName(task: Pick<Task, 'model' | 'id'>): string {
  return `models/${encodeURIComponent(task.model)}/operations/${encodeURIComponent(task.id)}`;
}

/** The final video's URI: the file of the task (`fileIdOf`: lowercase `[a-z0-9]`, whichever door made it). */
export function fileUri(publicBase: string, task: Pick<Task, 'id'>): string {
  return `${publicBase}/v1beta/files/${fileIdOf(task.id)}:download?alt=media`;
}

/**
 * Any task of the tenant as an Operation: `{name}` while it runs (`done` left out, as Google
 * does); then the video's URI, or a content-policy failure as Google reports it (done, no
 * samples, `raiMediaFilteredCount` 1 and the reason), or `error` with a google.rpc code:
 * 3 INVALID_ARGUMENT for inputs that could not be used, 4 DEADLINE_EXCEEDED for a timeout, 13
 * INTERNAL for the rest. A canceled task is done with 1 CANCELLED, as Google's operation cancel
 * leaves an operation. An expired task is done with 5 NOT_FOUND, so a client's polling loop ends
 * rather than failing on a 404.
 */
export function toOperation(task: Task, publicBase: string, keptDays: number): Operation {
  const name = operationName(task);
  switch (task.state) {
    case 'succeeded':
      return { name, done: true, response: { '@type': PREDICT_RESPONSE_TYPE, generateVideoResponse: { generatedSamples: [{ video: { uri: fileUri(publicBase, task), encoding: 'video/mp4' } }] } } };
    case 'failed':
      if (task.lastErrorKind === 'content_policy') {
        return { name, done: true, response: { '@type': PREDICT_RESPONSE_TYPE, generateVideoResponse: { raiMediaFilteredCount: 1, raiMediaFilteredReasons: [task.lastError || FILTERED] } } };
      }
      return { name, done: true, error: { code: rpcCode(task), message: task.lastError || 'Video generation failed.' } };
    case 'canceled':
      return { name, done: true, error: { code: RPC.CANCELLED, message: 'Operation was cancelled.' } };
    case 'expired':
      return { name, done: true, error: { code: RPC.NOT_FOUND, message: `Operation ${name} has expired: results are kept ${keptDays} days` } };
    default:
      return { name };
  }
}

function rpcCode(task: Task): number {
  switch (task.lastErrorKind) {
    case 'canceled':
      return RPC.CANCELLED;
    case 'image_fetch':
      return RPC.INVALID_ARGUMENT;
    case 'timeout':
      return RPC.DEADLINE_EXCEEDED;
    default:
      return RPC.INTERNAL;
  }
}

/**
 * A File resource (`GET /v1beta/files/{id}`) for a task's video: ACTIVE once the video is there,
 * PROCESSING before, FAILED when the task failed. `sizeBytes` is an int64, a string in JSON.
 */
export function toFile(task: Task, publicBase: string, retentionMs: number, sizeBytes?: number) {
  const id = fileIdOf(task.id);
  const state = task.state === 'succeeded' ? 'ACTIVE' : task.state === 'failed' || task.state === 'canceled' ? 'FAILED' : 'PROCESSING';
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    name: `files/${id}`,
    mimeType: 'video/mp4',
    ...(sizeBytes !== undefined ? { sizeBytes: String(sizeBytes) } : {}),
    createTime: iso(task.createdAt),
    updateTime: iso(task.updatedAt),
    // Retention counts from the end of the task (the sweeper's rule); a running task has none yet.
    ...(task.completedAt !== null ? { expirationTime: iso(task.completedAt + retentionMs) } : {}),
    uri: `${publicBase}/v1beta/files/${id}`,
    downloadUri: fileUri(publicBase, task),
    state,
    source: 'GENERATED',
    ...(task.state === 'failed' || task.state === 'canceled' ? { error: { code: rpcCode(task), message: task.lastError || 'Video generation failed.' } } : {}),
  };
}

/**
 * HTTP status and google.rpc status name for every error a request can end in. Google answers
 * an oversized body with 400 INVALID_ARGUMENT, and so does Reelay; a request valid in itself but
 * at odds with a task's state (a file whose video is not made yet) is 400 FAILED_PRECONDITION.
 * `unauthorized` is special-cased in `googleError`: Google's answer depends on whether a key
 * was sent at all.
 */
export const GOOGLE_STATUS: Record<ApiErrorKind, [number, string]> = {
  unauthorized: [400, 'INVALID_ARGUMENT'],
  not_found: [404, 'NOT_FOUND'],
  validation: [400, 'INVALID_ARGUMENT'],
  too_large: [400, 'INVALID_ARGUMENT'],
  content_policy: [400, 'INVALID_ARGUMENT'],
  image_fetch: [400, 'INVALID_ARGUMENT'],
  expired: [404, 'NOT_FOUND'],
  not_ready: [400, 'FAILED_PRECONDITION'],
  conflict: [400, 'FAILED_PRECONDITION'],
  unsupported: [400, 'INVALID_ARGUMENT'],
  maintenance: [503, 'UNAVAILABLE'],
  // Google's code for a concurrency conflict, retried by clients; and a request refused as it is.
  in_progress: [409, 'ABORTED'],
  key_reused: [422, 'INVALID_ARGUMENT'],
  rate_limited: [429, 'RESOURCE_EXHAUSTED'],
  // Google's quota answer: what a project past its billing quota gets.
  insufficient_credits: [429, 'RESOURCE_EXHAUSTED'],
  internal: [500, 'INTERNAL'],
};

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: unknown[] };
}

/**
 * The google.rpc.Status envelope, `error.code` being the HTTP status. As Google does: a request
 * with no key at all is 403 PERMISSION_DENIED ("unregistered callers"); a key that is not valid
 * is 400 INVALID_ARGUMENT "API key not valid", with the ErrorInfo reason `API_KEY_INVALID`
 * clients look for.
 */
export function googleError(err: ApiError, keySent: boolean): { status: number; body: GoogleErrorBody } {
  if (err.kind === 'unauthorized') {
    if (!keySent) {
      const message = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";
      return { status: 403, body: { error: { code: 403, message, status: 'PERMISSION_DENIED' } } };
    }
    const details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }];
    return { status: 400, body: { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT', details } } };
  }
  const [status, name] = GOOGLE_STATUS[err.kind];
  return { status, body: { error: { code: status, message: err.message, status: name } } };
}
