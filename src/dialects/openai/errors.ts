import type { FastifyReply } from 'fastify';
import { ApiError, type ApiErrorKind } from '../../app/errors.js';

/**
 * An ApiError with the OpenAI `code` to answer instead of its kind's (`video_not_found` for an
 * unknown video, `unknown_url` for an unknown path).
 */
export class OpenAIError extends ApiError {
  constructor(
    kind: ApiErrorKind,
    message: string,
    param: string | undefined,
    readonly code: string | null,
  ) {
    super(kind, message, param);
  }
}

/**
 * The OpenAI envelope of each error kind: status, `type`, `code`. A 401 is `invalid_request_error`
 * with `invalid_api_key`, as OpenAI answers a wrong key. "Not ready" (the content of a video still
 * being made) and "conflict" (deleting one) are 409: the request is right, the video's state is not.
 * An expired video is 410 Gone, like the kkiai door.
 */
const HTTP: Record<ApiErrorKind, [number, string, string | null]> = {
  unauthorized: [401, 'invalid_request_error', 'invalid_api_key'],
  not_found: [404, 'invalid_request_error', 'video_not_found'],
  validation: [400, 'invalid_request_error', 'invalid_value'],
  too_large: [413, 'invalid_request_error', 'request_too_large'],
  content_policy: [400, 'invalid_request_error', 'moderation_blocked'],
  image_fetch: [400, 'invalid_request_error', 'image_fetch_failed'],
  expired: [410, 'invalid_request_error', 'video_expired'],
  not_ready: [409, 'invalid_request_error', 'video_not_ready'],
  conflict: [409, 'invalid_request_error', 'video_in_progress'],
  unsupported: [400, 'invalid_request_error', 'unsupported'],
  maintenance: [503, 'server_error', 'maintenance'],
  in_progress: [409, 'invalid_request_error', 'idempotency_key_in_use'],
  key_reused: [422, 'invalid_request_error', 'idempotency_key_reused'],
  rate_limited: [429, 'requests', 'rate_limit_exceeded'],
  // OpenAI's answer to an account out of credit; the SDK is told not to retry it (x-should-retry).
  insufficient_credits: [429, 'insufficient_quota', 'insufficient_quota'],
  internal: [500, 'server_error', 'internal_error'],
};

export function openaiError(err: ApiError) {
  const [status, type, code] = HTTP[err.kind];
  return {
    status,
    body: { error: { message: err.message, type, param: err.param ?? null, code: err instanceof OpenAIError ? err.code : code } },
  };
}

/**
 * Sends an error in the OpenAI envelope, always as `application/json` (the SDK reads a body of any
 * other type as a string). Every 4xx says `x-should-retry: false`: the SDK retries 408, 409 and
 * 429 on its own (twice, backing off), but repeating the same request cannot make a running video
 * deletable at once or its content ready at once; the client's own polling loop is the retry.
 * 5xx (maintenance, internal) keep the SDK's retries, which can help, and so does a 409 for an
 * idempotency key whose first request is still running (`in_progress`).
 */
export function sendError(reply: FastifyReply, err: ApiError, log: { error: (o: object, m: string) => void }): FastifyReply {
  if (err.kind === 'internal') log.error({ err: err.cause ?? err }, 'internal error');
  const { status, body } = openaiError(err);
  // A key whose first request is still running: the SDK's own retry then gets its answer.
  if (status < 500) reply.header('x-should-retry', err.kind === 'in_progress' || err.kind === 'rate_limited' ? 'true' : 'false');
  return reply.status(status).type('application/json').send(body);
}
