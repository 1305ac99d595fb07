/**
 * The one error a request can end in. The application service and the dialects' request mappers
 * throw it, `http/errors.ts` turns what Fastify throws into it, and each dialect renders it in its
 * own envelope in one place (its error handler). It lives here, not in `http/`, so that `app/`
 * and the dialects need nothing from the transport to use it.
 */
export type ApiErrorKind =
  | 'unauthorized'
  | 'not_found'
  | 'validation'
  | 'too_large'
  | 'content_policy'
  | 'image_fetch'
  | 'expired'
  | 'not_ready'
  /** The request is valid but the task is not in a state that allows it (deleting a running video). */
  | 'conflict'
  /** Reelay does not offer this (an endpoint, or extending a video on a model whose providers cannot). */
  | 'unsupported'
  | 'maintenance'
  /**
   * An earlier request with the same `Idempotency-Key` is still being answered: retry shortly
   * (409, `Retry-After`), and the retry gets its answer.
   */
  | 'in_progress'
  /** The `Idempotency-Key` was used before for a different request (422): nothing was done. */
  | 'key_reused'
  /** The key made more creates than its rate allows (429, `Retry-After`): nothing was done. */
  | 'rate_limited'
  /** The key's credits do not cover the task's price (kie 402 "Insufficient Credits"): no task. */
  | 'insufficient_credits'
  | 'internal';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    /** The request field at fault, when there is one. */
    readonly param?: string,
    /** Sent as `Retry-After`: when a retry may succeed. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
