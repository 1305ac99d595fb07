import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { KeyCache } from '../auth/cache.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    tenantId: string;
  }
}

/**
 * A preHandler that resolves the bearer key to its tenant or fails with `unauthorized`. Callback
 * style, so a key seen in the last second costs no promise (this runs on every poll).
 */
export function requireKey(keys: KeyCache) {
  return (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const cached = keys.cachedTenant(req.headers.authorization);
    if (cached) {
      req.tenantId = cached;
      return done();
    }
    keys.tenantOf(req.headers.authorization).then(
      (tenant) => {
        if (!tenant) return done(new ApiError('unauthorized', 'Missing or invalid API key'));
        req.tenantId = tenant;
        done();
      },
      (e: Error) => done(e),
    );
  };
}
