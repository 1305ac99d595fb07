import { ApiError } from '../app/errors.js';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

/** Turns what Fastify or a route threw into an ApiError. Unknown errors become `internal`. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as FastifyLikeError;
  if (err?.validation?.length) {
    const v = err.validation[0]!;
    const field = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const missing = v.params?.missingProperty as string | undefined;
    const allowed = v.params?.allowedValues as unknown[] | undefined;
    const name = missing ?? field;
    if (!name && err.validationContext === 'body') {
      return new ApiError('validation', 'Request body must be a JSON object (Content-Type: application/json)');
    }
    let message = missing ? `${missing} is required` : `${field || err.validationContext || 'body'} ${v.message ?? 'is invalid'}`;
    if (allowed) message += `: ${allowed.map(String).join(', ')}`;
    return new ApiError('validation', message, name || undefined);
  }
  switch (err?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('too_large', 'Request body is too large');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('validation', 'Request body is empty; a JSON object is required');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('validation', 'Content-Type must be application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('validation', 'Request body is not valid JSON');
  }
  if (err instanceof SyntaxError || err?.statusCode === 400) {
    return new ApiError('validation', `Request body is not valid JSON: ${err.message}`);
  }
  if (err?.statusCode === 413) return new ApiError('too_large', 'Request body is too large');
  if (err?.statusCode === 415) return new ApiError('validation', 'Content-Type must be application/json');
  // The client gets a plain message; the log gets what was really thrown.
  const internal = new ApiError('internal', 'Internal Error, Please try again later.');
  internal.cause = e;
  return internal;
}

/**
 * Reads a single query parameter by hand (the polling routes skip schema validation: it is a
 * measurable part of their cost). A repeated parameter is a validation error.
 */
export function queryParam(query: unknown, name: string): string | undefined {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined || typeof v === 'string') return v;
  throw new ApiError('validation', `${name} must be given once, as a string`, name);
}
