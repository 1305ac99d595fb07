import type { FastifyRequest } from 'fastify';
import type { KeyCache } from '../auth/cache.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    tenantId: string;
  }
}

/** A preHandler that resolves the bearer key to its tenant or throws `unauthorized`. */
export function requireKey(keys: KeyCache) {
  return async (req: FastifyRequest): Promise<void> => {
    const tenant = await keys.tenantOf(req.headers.authorization);
    if (!tenant) throw new ApiError('unauthorized', 'Missing or invalid API key');
    req.tenantId = tenant;
  };
}
