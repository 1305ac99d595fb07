import type { FastifyRequest } from 'fastify';
import { authenticate } from '../auth/keys.js';
import type { Store } from '../store/port.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    tenantId: string;
  }
}

/** A preHandler that resolves the bearer key to its tenant or throws `unauthorized`. */
export function requireKey(store: Store) {
  return async (req: FastifyRequest): Promise<void> => {
    const tenant = await authenticate(store, req.headers.authorization);
    if (!tenant) throw new ApiError('unauthorized', 'Missing or invalid API key');
    req.tenantId = tenant;
  };
}
