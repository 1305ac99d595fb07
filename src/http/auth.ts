import type { FastifyRequest } from 'fastify';
import type { KeyCache } from '../auth/cache.js';
import { ApiError } from '../app/errors.js';
import { type Credentials, bearer } from './credentials.js';

/**
 * Resolves the request's key (read by the dialect's `credentials`; Bearer by default) to its
 * tenant or throws `unauthorized`. Called at the top of
 * every dialect handler (a plain call, not a hook: this runs on every poll, and a key seen within
 * the last second costs neither a promise nor a store read).
 */
export function tenantOf(keys: KeyCache, req: FastifyRequest, credentials: Credentials = bearer): string | Promise<string> {
  const token = credentials(req);
  const cached = keys.cachedTenant(token);
  if (cached) return cached;
  return keys.tenantOf(token).then((tenant) => {
    if (!tenant) throw new ApiError('unauthorized', 'Missing or invalid API key');
    return tenant;
  });
}
