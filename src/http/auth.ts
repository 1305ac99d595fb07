import type { FastifyRequest } from 'fastify';
import type { KeyCache } from '../auth/cache.js';
import { ApiError } from '../app/errors.js';

/**
 * Resolves the request's bearer key to its tenant or throws `unauthorized`. Called at the top of
 * every dialect handler (a plain call, not a hook: this runs on every poll, and a key seen within
 * the last second costs neither a promise nor a store read).
 */
export function tenantOf(keys: KeyCache, req: FastifyRequest): string | Promise<string> {
  const header = req.headers.authorization;
  const cached = keys.cachedTenant(header);
  if (cached) return cached;
  return keys.tenantOf(header).then((tenant) => {
    if (!tenant) throw new ApiError('unauthorized', 'Missing or invalid API key');
    return tenant;
  });
}
