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
  | 'maintenance'
  | 'internal';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    /** The request field at fault, when there is one. */
    readonly param?: string,
  ) {
    super(message);
  }
}
